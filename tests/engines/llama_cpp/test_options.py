"""The multi-device settings (split_mode, tensor_split, main_gpu, devices): refused in one
line when unknown, swept as axes, spelled as each engine's flags and taken by the real
llama.cpp: in process, llama-bench and llama-server on this machine's CPU build (no GPU
here: what a device name not in the build gets is a refusal naming the setting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.engines import engine_class
from benchkit.engines.base import ModelFile, Plan
from benchkit.engines.llama_cpp.native import LlamaModel
from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.engines.llama_cpp.server import Options as ServerOptions, server_argv
from benchkit.run.suite import load_suite
from benchkit.workloads.tokens import TokensWorkload
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, run_benchkit

SUITE = """\
name: multi-device
models:
  - package: {package}/{file}
engine:
  n_threads: 2
{settings}
workloads:
  - pp: 16
warmup: 0
iterations: 1
"""


def _suite(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(package=SMOLLM2_PACKAGE, file=SMOLLM2_FILE,
                                 settings=settings), encoding="utf-8")
    return path


@pytest.mark.parametrize("settings, field, message", [
    ("  split_mode: rows", "engine.split_mode",
     "must be one of none, layer, row, tensor (llama.cpp's split modes)"),
    ("  tensor_split: [0, 0]", "engine.tensor_split", "not all 0"),
    ("  tensor_split: '3,1'", "engine.tensor_split", "proportions >= 0"),
    ("  main_gpu: -1", "engine.main_gpu", "must be a device index from 0 to 15"),
    ("  devices: ['CUDA 0']", "engine.devices", "llama.cpp device names"),
    ("  devices: [CUDA0, CUDA0]", "engine.devices", "distinct"),
])
def test_unknown_values_are_one_line_naming_the_setting(tmp_path: Path, settings: str,
                                                       field: str, message: str) -> None:
    proc = run_benchkit("run", str(_suite(tmp_path, settings)), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"[{field}" in lines[0] and message in lines[0] and "suite.yaml" in lines[0]


def test_list_settings_sweep_only_as_lists_of_lists(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path, "  split_mode: [layer, row]\n"
                                        "  tensor_split: [[1, 1], [3, 1]]\n"
                                        "  devices: [CUDA0, CUDA1]\n  main_gpu: 1"))
    configs = [e.settings() for e in suite.engines]
    assert len(configs) == 4
    assert {(c["split_mode"], c["tensor_split"]) for c in configs} == {
        ("layer", (1.0, 1.0)), ("layer", (3.0, 1.0)), ("row", (1.0, 1.0)), ("row", (3.0, 1.0))}
    assert all(c["devices"] == ("CUDA0", "CUDA1") and c["main_gpu"] == 1 for c in configs)
    one = load_suite(_suite(tmp_path, "  tensor_split: [3, 1]"))
    assert [e.settings()["tensor_split"] for e in one.engines] == [(3.0, 1.0)]


def test_flags_of_each_engine() -> None:
    o = LlamaCppOptions(split_mode="row", tensor_split=[3, 1], main_gpu=1,
                        devices=["CUDA0", "CUDA1"])
    assert o.multi_device_flags(sep="/") == ["-sm", "row", "-ts", "3/1", "-mg", "1",
                                             "-dev", "CUDA0/CUDA1"]
    assert o.multi_device_flags(sep=",", long=True) == [
        "--split-mode", "row", "--tensor-split", "3,1", "--main-gpu", "1",
        "--device", "CUDA0,CUDA1"]
    assert LlamaCppOptions().multi_device_flags(sep="/") == []     # llama.cpp's defaults
    argv = server_argv("llama-server", "m.gguf", ServerOptions(
        split_mode="none", main_gpu=2, n_threads=2).resolved(), 512, 8080)
    assert argv[argv.index("--split-mode") + 1] == "none"
    assert argv[argv.index("--main-gpu") + 1] == "2" and "--device" not in argv
    assert o.split_asked() == {"split_mode": "row", "main_gpu": 1, "tensor_split": [3.0, 1.0],
                               "devices_requested": ["CUDA0", "CUDA1"]}


def test_in_process_takes_the_settings_and_reports_per_device(smollm2_model: Path) -> None:
    settings = LlamaCppOptions(n_threads=2, split_mode="row", tensor_split=[1], main_gpu=0)
    with LlamaModel(smollm2_model, settings) as eng:
        eng.new_context(64)
        p = eng.placement.to_dict()
    assert (p["split_mode"], p["tensor_split"], p["main_gpu"]) == ("row", [1.0], 0)
    cpu = next(d for d in p["per_device"] if d["device"] == "CPU")
    # every layer (30 and the output) went to the CPU, as llama.cpp's debug lines say
    assert cpu["layers"] == p["layers_total"] == 31 and cpu["output_layer"] is True
    assert cpu["model_mib"] == sum(b["mib"] for b in p["buffers"]
                                   if b["device"] == "CPU" and b["kind"] == "model")


def test_in_process_refuses_a_device_the_build_lacks(smollm2_model: Path) -> None:
    with pytest.raises(BenchkitError) as err:
        LlamaModel(smollm2_model, LlamaCppOptions(n_threads=2, devices=["CUDA0"]))
    assert err.value.field == "engine.devices"
    assert err.value.message == ("no device CUDA0 in this llama.cpp (its devices: none "
                                 "besides the CPU)")


def test_llama_bench_takes_the_flags(smollm2_model: Path, llama_tools: dict[str, Path]) -> None:
    engine = engine_class("llama-bench").from_settings(
        {"n_threads": 2, "split_mode": "none", "tensor_split": [1], "main_gpu": 0})
    with engine.open(ModelFile(path=str(smollm2_model), label="test")) as s:
        its = s.measure(TokensWorkload("pp", 16, 0, 0), Plan(warmup=0, iterations=1))
        cmd = s.command
        assert cmd[cmd.index("-sm") + 1] == "none" and cmd[cmd.index("-ts") + 1] == "1"
        assert len(its) == 1 and s.facts()["split_mode"] == "none"  # llama-bench's own report
    bad = engine_class("llama-bench").from_settings({"n_threads": 2, "devices": ["CUDA0"]})
    with bad.open(ModelFile(path=str(smollm2_model), label="test")) as s:
        with pytest.raises(BenchkitError, match="invalid device: CUDA0"):
            s.measure(TokensWorkload("pp", 16, 0, 0), Plan(warmup=0, iterations=1))


def test_llama_server_placement_from_its_log(smollm2_model: Path,
                                             llama_tools: dict[str, Path]) -> None:
    """The real llama-server: at verbosity 4 its log has llama.cpp's buffer lines, read per
    device as in process; at its default verbosity it has none, and the placement says so."""
    from benchkit.engines.llama_cpp.server import LlamaServer

    model = ModelFile(path=str(smollm2_model), label="test")
    server = LlamaServer(ServerOptions(binary=str(llama_tools["llama-server"]), n_threads=2,
                                       n_gpu_layers=0, n_ctx=256, args=["-lv", "4"]))
    with server.open(model) as s:
        p = s.placement()
    cpu = next(d for d in p["per_device"] if d["device"] == "CPU")
    assert cpu["model_mib"] and cpu["kv_mib"] and p["note"].startswith("from llama-server's log")
    assert p["split_mode"] == "layer" and p["n_ctx"] >= 256
    quiet = LlamaServer(ServerOptions(binary=str(llama_tools["llama-server"]), n_threads=2,
                                      n_gpu_layers=0, n_ctx=256))
    with quiet.open(model) as s:
        p = s.placement()
    assert "per_device" not in p and "default verbosity" in p["note"]


def test_the_default_thread_count_comes_from_the_variable_where_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """n_threads left unset resolves to BENCHKIT_THREADS, else the physical cores; a
    setting written in the suite wins over both."""
    import psutil

    monkeypatch.delenv("BENCHKIT_THREADS", raising=False)
    assert LlamaCppOptions().resolved().n_threads == psutil.cpu_count(logical=False)
    monkeypatch.setenv("BENCHKIT_THREADS", "3")
    assert LlamaCppOptions().resolved().n_threads == 3
    assert LlamaCppOptions(n_threads=2).resolved().n_threads == 2
    argv = server_argv("llama-server", "m.gguf", ServerOptions().resolved(), 64, 8080)
    assert argv[argv.index("-t") + 1] == "3"

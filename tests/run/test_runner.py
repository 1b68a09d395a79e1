"""`benchkit run` end to end on the real SmolLM2 model: the result file, the table, Ctrl-C,
failed cases. Timings are never asserted (the machine is shared); their consistency is."""

from __future__ import annotations

import hashlib
import json
import math
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from benchkit.formats.table import format_table
from benchkit.results.io import read_result, summarize
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, benchkit_cmd, run_benchkit


@pytest.fixture(scope="module")
def doc(smollm2_result: Path) -> dict:
    return read_result(smollm2_result)  # also validates against the JSON Schema


def test_run_exits_zero_and_writes_one_complete_file(smollm2_run, doc) -> None:
    assert smollm2_run.returncode == 0, smollm2_run.stderr
    assert "Traceback" not in smollm2_run.stderr
    assert doc["status"] == "complete" and doc["partial"] is False
    assert doc["schema_version"] == 2 and doc["format"] == "benchkit-result"
    assert doc["finished_at"] >= doc["started_at"]
    assert doc["run_id"].split("-")[1:3] == ["smollm2", "test"]


def test_cases_are_the_product_of_configurations_and_workloads(doc) -> None:
    got = [(c["engine"]["n_gpu_layers"], c["test"]) for c in doc["cases"]]
    assert got == [(0, "pp64"), (0, "tg16"), (0, "chat"), (-1, "pp64"), (-1, "tg16"),
                   (-1, "chat")]
    assert [c["index"] for c in doc["cases"]] == list(range(6))
    assert all(c["status"] == "ok" and c["error"] is None for c in doc["cases"])


def test_model_fields_come_from_the_file(doc, smollm2_model: Path) -> None:
    digest = hashlib.sha256(smollm2_model.read_bytes()).hexdigest()
    for case in doc["cases"]:
        m = case["model"]
        assert m["name"] == SMOLLM2_FILE
        assert m["source"] == {"package": f"{SMOLLM2_PACKAGE}/{SMOLLM2_FILE}"}
        assert m["size_bytes"] == smollm2_model.stat().st_size
        assert m["sha256"] == digest
        assert (m["architecture"], m["quantization"], m["n_layers"]) == ("llama", "Q4_1", 30)
        assert 120e6 < m["n_params"] < 150e6
        assert m["synthetic"] is False


def test_iterations_and_summary_are_consistent(doc) -> None:
    for case in doc["cases"]:
        its = case["iterations"]
        assert len(its) == 3 and case["warmup"] == 1
        for it in its:
            assert it["seconds"] > 0 and it["tps"] > 0
            assert math.isclose(it["tps"], it["tokens"] / it["seconds"], rel_tol=1e-9)
        expected_tokens = {"pp64": 64, "tg16": 16, "chat": 15}[case["test"]]
        assert all(it["tokens"] == expected_tokens for it in its)
        recomputed = summarize([it["tps"] for it in its])
        for key, value in recomputed.items():
            assert math.isclose(case["summary"][key], value, rel_tol=1e-9), key
        assert case["summary"]["tps_ci95_low"] <= case["summary"]["tps_mean"] \
            <= case["summary"]["tps_ci95_high"]


def test_chat_records_what_a_user_feels(doc) -> None:
    chats = [c for c in doc["cases"] if c["test"] == "chat"]
    assert len(chats) == 2
    for case in chats:
        assert case["workload"]["prompt"] == "Explain quantum computing in simple terms."
        for it in case["iterations"]:
            assert it["n_generated"] == 16 and it["n_prompt"] > 3
            assert len(it["token_latencies_s"]) == 15
            assert 0 < it["ttft_s"] < it["total_s"]
            assert math.isclose(sum(it["token_latencies_s"]), it["total_s"] - it["ttft_s"],
                                rel_tol=1e-6)
            assert math.isclose(it["decode_tps"], 15 / (it["total_s"] - it["ttft_s"]),
                                rel_tol=1e-6)
        assert case["summary"]["ttft_median_s"] > 0


def test_load_and_placement_are_read_from_llama_cpp(doc) -> None:
    for case in doc["cases"]:
        assert case["load"]["seconds"] > 0
        assert case["load"]["peak_rss_bytes"] >= case["load"]["rss_after_load_bytes"] > 0
        p = case["placement"]
        assert p["n_gpu_layers_requested"] == case["engine"]["n_gpu_layers"]
        assert p["layers_total"] == 31          # 30 blocks + the output layer
        kinds = {b["kind"] for b in p["buffers"]}
        assert {"model", "kv", "compute"} <= kinds
        model_mib = sum(b["mib"] for b in p["buffers"] if b["kind"] == "model")
        assert abs(model_mib - case["model"]["size_bytes"] / 2**20) < 5
        assert any("model buffer size" in line for line in p["log"])
        assert p["flash_attn"] in (True, False)
        if not p["gpu_offload_supported"]:
            assert p["layers_offloaded"] == 0 and p["device_kind"] == "cpu"
            assert "no GPU backend" in p["note"]
        assert case["engine"]["n_ctx"] <= p["n_ctx"]


def test_environment_says_what_the_machine_is_without_naming_it(doc, smollm2_result) -> None:
    env = doc["environment"]
    assert env["os"]["system"] and env["cpu"]["cores_logical"] >= 1
    assert env["memory_bytes"] > 2**30
    assert env["backend"] in ("cpu", "cuda", "metal", "vulkan", "hip", "sycl")
    assert "CPU" in env["llama_cpp_system_info"]
    assert env["versions"]["llama_cpp_python"] == "0.3.36"
    assert env["chip"]["kind"] in ("cpu", "apple", "nvidia", "amd", "other")
    text = Path(smollm2_result).read_text()
    assert socket.gethostname() not in text
    home = str(Path.home())
    if home not in ("/", ""):
        assert home + "/" not in text


def test_suite_as_run_is_recorded(doc) -> None:
    s = doc["suite"]
    assert s["name"] == "smollm2-test" and s["iterations"] == 3 and s["warmup"] == 1
    assert s["engine"] == {"n_gpu_layers": [0, -1]}
    assert s["tests"] == ["pp64", "tg16", "chat"]
    assert doc["command"][:2] == ["benchkit", "run"]


def test_stdout_is_the_llama_bench_style_table(smollm2_run, doc) -> None:
    out = smollm2_run.stdout.splitlines()
    header = [cell.strip() for cell in out[0].strip("|").split("|")]
    assert header[:8] == ["model", "size", "params", "engine", "backend", "ngl", "threads",
                          "test"]
    assert "t/s (mean ± sd)" in header and "n" in header
    assert len(out) == 2 + 6
    first = doc["cases"][0]["summary"]
    assert f"{first['tps_mean']:.2f} ± {first['tps_stdev']:.2f}" in out[2]
    assert "wrote " in smollm2_run.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_table_formats(doc, fmt: str) -> None:
    text = format_table(doc, fmt)
    if fmt == "json":
        rows = json.loads(text)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6
    assert [r["test"] for r in rows] == [c["test"] for c in doc["cases"]]
    assert math.isclose(float(rows[0]["tps_mean"]), doc["cases"][0]["summary"]["tps_mean"])


def _tiny_suite(tmp_path: Path, body: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


TINY = f"""\
name: tiny
models:
  - package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}
engine: {{n_gpu_layers: 0}}
workloads:
  - {{pp: 16, tg: 4}}
warmup: 0
iterations: 1
"""


def test_format_json_and_overrides_on_the_command_line(tmp_path: Path) -> None:
    suite = _tiny_suite(tmp_path, TINY)
    proc = run_benchkit("run", str(suite), "--iterations", "2", "--warmup", "1",
                        "--format", "json", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)                 # stdout is nothing but the table
    assert [r["test"] for r in rows] == ["pp16+tg4"] and rows[0]["n"] == 2
    doc = read_result(next((tmp_path / "out").glob("*.json")))
    case = doc["cases"][0]
    assert case["warmup"] == 1 and len(case["iterations"]) == 2
    assert case["workload"] == {"kind": "pp+tg", "n_prompt": 16, "n_gen": 4}
    assert all(it["tokens"] == 20 for it in case["iterations"])


def test_llama_bench_rows_print_no_escape_sequence(tmp_path: Path, smollm2_model: Path) -> None:
    """A model file named with terminal escape sequences: the llama-bench csv rows printed
    at the end (their model_filename) name it without them; the result keeps the name."""
    hostile = tmp_path / "sm\x1b]0;owned\x07\x1b[2Jx.gguf"
    hostile.symlink_to(smollm2_model)
    suite = _tiny_suite(tmp_path, TINY.replace(f"package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}",
                                               f"path: {json.dumps(str(hostile))}"))
    proc = run_benchkit("run", str(suite), "--format", "llama-bench-csv",
                        "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "smx.gguf" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    doc = read_result(next((tmp_path / "out").glob("*.json")))
    assert "\x1b" in doc["cases"][0]["model"]["name"]


def _broken_gguf(path: Path) -> Path:
    """A GGUF whose header parses but which llama.cpp refuses to load (no hparams)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_context_length(128)
    writer.add_tensor("token_embd.weight", np.zeros((32, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_model_that_fails_to_load_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    _broken_gguf(tmp_path / "broken.gguf")
    suite = _tiny_suite(tmp_path, TINY.replace(
        "models:\n", "models:\n  - path: broken.gguf\n"))
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "tiny.yaml:3 [models.0.path]" in errors[0]
    assert "could not load the model" in errors[0] and "1 of 2 cases failed" in errors[0]
    doc = read_result(next((tmp_path / "out").glob("*.json")))
    assert doc["status"] == "complete" and doc["partial"] is False
    failed, ok = doc["cases"]
    assert failed["status"] == "failed" and "could not load" in failed["error"]
    assert failed["iterations"] == [] and failed["summary"]["n"] == 0
    assert ok["status"] == "ok" and ok["model"]["name"] == SMOLLM2_FILE
    assert "FAILED" in proc.stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                       (signal.SIGHUP, 129)])
def test_a_signal_keeps_every_finished_case(tmp_path: Path, sig: int, code: int) -> None:
    suite = _tiny_suite(tmp_path, TINY.replace("  - {pp: 16, tg: 4}\n",
                                               "  - pp: 16\n  - tg: 4000\n  - tg: 4000\n"))
    out = tmp_path / "out"
    # A shell that starts pytest in the background ignores SIGINT, and children inherit
    # that; restore the default so that the child's Python installs its Ctrl-C handler.
    # --progress draws each case's bar on stderr when it starts: the signal is sent once the
    # second case's bar is there (a state, not a time), so that a case is in progress.
    proc = subprocess.Popen([*benchkit_cmd(), "run", str(suite), "-o", str(out), "--progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:      # the first case on disk, the second started
            files = list(out.glob("*.json")) if out.exists() else []
            if files and json.loads(files[0].read_text())["cases"] and "tg4000" in "".join(err):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the second case never started")
        assert json.loads(files[0].read_text())["partial"] is True
        proc.send_signal(sig)
        proc.wait(timeout=120)
        reader.join(timeout=10)
        stderr = "".join(err)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert "Traceback" not in stderr
    doc = read_result(files[0])
    name = signal.Signals(sig).name
    assert doc["status"] == "interrupted" and doc["partial"] is True
    assert doc["interrupted_by"] == name and doc["finished_at"]
    first, cut = doc["cases"]
    assert first["test"] == "pp16" and first["status"] == "ok"
    # the case in progress is kept, marked partial, with the iterations it finished
    assert cut["test"] == "tg4000" and cut["status"] == "partial"
    assert f"interrupted by {name}" in cut["error"]
    assert cut["summary"]["n"] == len(cut["iterations"])

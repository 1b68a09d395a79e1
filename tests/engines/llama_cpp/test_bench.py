"""The llama-bench engine on the real llama-bench binary and the real SmolLM2 model.

Runs through `benchkit run` as a user would (a suite with both llama.cpp engines), and
through the engine API for the flag mapping and the warmup plan. Failures are real
llama-bench failures: a flag it rejects (non-zero exit), an output that is not its JSON
(`-o md` given last wins), an abort from llama.cpp's own argument checks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchkit.engines import engine_class
from benchkit.engines.base import ModelFile, Plan
from benchkit.engines.llama_cpp.build import tool_version
from benchkit.core.errors import BenchkitError
from benchkit.workloads.tokens import TokensWorkload
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, run_benchkit

SUITE = """\
name: llama-bench-engine
models:
  - package: {package}/{file}
engine:
  n_threads: 1
engines:
{engines}
workloads:
  - pp: 16
  - tg: 8
  - {{pp: 16, tg: 8}}
  - {{tg: 8, depth: 16}}
  - chat: {{prompt: "Hi", max_tokens: 4}}
warmup: 1
iterations: 2
"""


def _suite(tmp_path: Path, engines: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SUITE.format(package=SMOLLM2_PACKAGE, file=SMOLLM2_FILE, engines=engines),
                    encoding="utf-8")
    return path


def _result(out: Path) -> dict:
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def _session(model: Path, **settings):
    cls = engine_class("llama-bench")
    engine = cls.from_settings({"n_threads": 1, **settings})
    return engine.open(ModelFile(path=str(model), label="test"))


@pytest.fixture(scope="module")
def both_engines(llama_tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("both")
    suite = _suite(tmp, "  - llama-cpp-python\n  - llama-bench\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp / "results"))
    return proc, _result(tmp / "results")


def test_run_writes_both_engines(both_engines, llama_tools: dict[str, Path]) -> None:
    proc, doc = both_engines
    assert proc.returncode == 0, proc.stderr
    by_engine: dict[str, dict[str, dict]] = {}
    for case in doc["cases"]:
        by_engine.setdefault(case["engine"]["kind"], {})[case["test"]] = case
    tests = ["pp16", "tg8", "pp16+tg8", "tg8 @ d16"]
    assert set(by_engine["llama-bench"]) == {*tests, "chat"}
    assert set(by_engine["llama-cpp-python"]) == {*tests, "chat"}
    chat = by_engine["llama-bench"]["chat"]
    assert chat["status"] == "unsupported" and "does not run chat" in chat["error"]
    version = tool_version(llama_tools["llama-bench"])
    for test in tests:
        lb, inproc = by_engine["llama-bench"][test], by_engine["llama-cpp-python"][test]
        assert lb["status"] == "ok" and inproc["status"] == "ok", (lb["error"], inproc["error"])
        its = lb["iterations"]
        assert len(its) == 2 and {it["clock"] for it in its} == {"tool"}
        w = lb["workload"]
        assert {it["tokens"] for it in its} == {w["n_prompt"] + w["n_gen"]}
        assert all(it["seconds"] == it["tool_ns"] / 1e9 and it["tps"] > 0 for it in its)
        assert lb["summary"]["n"] == 2
        info = lb["engine_info"]
        assert info["layer"] == "C++ benchmark tool, same llama.cpp backend"
        assert info["build_commit"] == version["build_commit"]
        assert info["build_number"] == version["build_number"]
        assert info["backends"] == "CPU" and info["n_threads"] == 1
        assert info["model_type"].startswith("llama ") and info["cpu_info"]
        assert "llama-bench's own warmup" in info["warmup"]
        assert "--no-warmup" not in info["command"]
        assert lb["engine"]["n_ctx"] == w.get("depth", 0) + w["n_prompt"] + w["n_gen"]
        assert lb["placement"]["device_kind"] == "cpu"
    depth_cmd = by_engine["llama-bench"]["tg8 @ d16"]["engine_info"]["command"]
    assert depth_cmd[depth_cmd.index("-d") + 1] == "16"
    pg_cmd = by_engine["llama-bench"]["pp16+tg8"]["engine_info"]["command"]
    assert pg_cmd[pg_cmd.index("-pg") + 1] == "16,8"


def test_every_setting_is_a_flag(smollm2_model: Path, llama_tools: dict[str, Path]) -> None:
    s = _session(smollm2_model, n_gpu_layers=0, n_batch=64, n_ubatch=32, flash_attn="off",
                 type_k="q8_0", type_v="f16", use_mmap=False, op_offload=False,
                 args=["--poll", "0"])
    w = TokensWorkload("pp", 16, 0, 8)
    cmd = s.command_for(w, 3, no_warmup=False)
    flags = dict(zip(cmd[1::2], cmd[2::2]))
    assert cmd[0] == str(llama_tools["llama-bench"])
    assert flags["-m"] == str(smollm2_model) and flags["-o"] == "json" and flags["-r"] == "3"
    assert (flags["-p"], flags["-n"], flags["-d"]) == ("16", "0", "8")
    assert (flags["-ngl"], flags["-b"], flags["-ub"], flags["-t"]) == ("0", "64", "32", "1")
    assert (flags["-fa"], flags["-ctk"], flags["-ctv"]) == ("off", "q8_0", "f16")
    assert flags["-lm"] == "none" and flags["-nopo"] == "1"
    assert cmd[-2:] == ["--poll", "0"]
    its = s.measure(w, Plan(warmup=1, iterations=3))      # llama-bench accepts all of them
    assert len(its) == 3
    row = s.facts()
    assert row["n_threads"] == 1


def test_warmup_plan(smollm2_model: Path, llama_tools: dict[str, Path]) -> None:
    s = _session(smollm2_model)
    w = TokensWorkload("tg", 0, 4, 0)
    seen: list[float | None] = []
    its = s.measure(w, Plan(warmup=3, iterations=2, on_iteration=seen.append))
    assert len(its) == 2
    assert s.command[s.command.index("-r") + 1] == "4"       # 2 timed + 2 discarded
    assert seen[:2] == [None, None] and all(v and v > 0 for v in seen[2:]) and len(seen) == 4
    assert "then 2 repetition(s) run and discarded" in s.facts()["warmup"]
    its = s.measure(w, Plan(warmup=0, iterations=2))
    assert len(its) == 2 and "--no-warmup" in s.command
    assert s.facts()["warmup"] == "none (--no-warmup)"


def _one_failure_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_bad_binary_path(llama_tools: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no" / "llama-bench"
    suite = _suite(tmp_path, f"  - {{kind: llama-bench, binary: {json.dumps(str(missing))}}}\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "results"))
    line = _one_failure_line(proc)
    assert f"llama-bench binary not found: {missing}" in line
    doc = _result(tmp_path / "results")
    failed = [c for c in doc["cases"] if c["status"] == "failed"]
    assert len(failed) == 4 and all(f"binary not found: {missing}" in c["error"] for c in failed)


def test_failing_llama_bench_fails_its_cases_and_the_run_goes_on(
        llama_tools: dict[str, Path], tmp_path: Path) -> None:
    engines = ("  - {kind: llama-bench, args: [\"--no-such-flag\"]}\n"
               "  - {kind: llama-bench, args: [\"-o\", \"md\"]}\n"
               "  - {kind: llama-bench, n_ubatch: 8}\n")
    suite = _suite(tmp_path, engines)
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "results"))
    line = _one_failure_line(proc)
    assert "8 of 15 cases failed" in line
    cases = _result(tmp_path / "results")["cases"]
    rejected, not_json, fine = ([c for c in cases[i:i + 5] if c["test"] != "chat"]
                                for i in (0, 5, 10))
    assert all(c["status"] == "unsupported" for c in cases if c["test"] == "chat")
    for case in rejected:
        assert case["status"] == "failed"
        assert case["error"].startswith("llama-bench exited with status 1: ")
        assert "invalid parameter for argument: --no-such-flag" in case["error"]
        assert "\n" not in case["error"]
    for case in not_json:
        assert case["status"] == "failed"
        assert case["error"].startswith("llama-bench printed no valid JSON")
    assert [c["status"] for c in fine] == ["ok"] * 4
    assert {c["engine"]["args"] == ["--no-such-flag"] for c in rejected} == {True}


def test_killed_llama_bench_names_the_signal(smollm2_model: Path, llama_tools: dict[str, Path],
                                             tmp_path: Path) -> None:
    # the real binary, killed by SIGKILL a second into its measurement: what the engine sees
    # when the OOM killer or a user ends llama-bench mid-run (exec keeps the process id)
    wrapper = tmp_path / "llama-bench"
    wrapper.write_text("#!/bin/sh\n"
                       "case \" $* \" in *\" -r \"*) (sleep 1; kill -KILL $$) & ;; esac\n"
                       f"exec \"{llama_tools['llama-bench']}\" \"$@\"\n", encoding="utf-8")
    os.chmod(wrapper, 0o755)
    s = _session(smollm2_model, binary=str(wrapper))
    with pytest.raises(BenchkitError, match=r"^llama-bench was killed by SIGKILL"):
        s.measure(TokensWorkload("tg", 0, 64, 0), Plan(warmup=1, iterations=50))

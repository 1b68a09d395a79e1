"""Crashes and signals (the catalogue, tests/catalogue_support.py): llama.cpp runs
(SmolLM2, tg 4, one iteration, no warmup) that crash, abort or are interrupted fail their
own case only, and nothing measured is lost.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalogue_support import suite_text, write_suite
from catalogue_support import patched_models  # noqa: F401 (fixtures)
from conftest import benchkit_cmd, run_benchkit


# --- crashes and signals: llama.cpp runs (SmolLM2, tg 4, one iteration, no warmup) -----------


def _run_unchecked(suite: Path, out: Path, *extra: str,
                   timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`benchkit run` with the pre-measurement checks switched off, so that the input
    reaches llama.cpp and the worker process has a real crash to contain."""
    code = ("import sys\nimport benchkit.run.preflight as p\n"
            "p.check = lambda *a, **k: None\n"
            "from benchkit.cli.main import main\n"
            "sys.argv = ['benchkit', *sys.argv[1:]]\nmain()\n")
    return subprocess.run([sys.executable, "-c", code, "run", str(suite), "-o", str(out),
                           *extra], capture_output=True, text=True, timeout=timeout)


def _only_result(out: Path) -> dict:
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def _failed_one(proc: subprocess.CompletedProcess[str], doc: dict, failed: list[int],
                expect: str) -> None:
    """The run ended (complete), the listed cases failed with `expect`, the others measured;
    the CLI says so in one error line with exit code 1."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert doc["status"] == "complete" and doc["finished_at"], doc["status"]
    statuses = [c["status"] for c in doc["cases"]]
    assert [i for i, s in enumerate(statuses) if s != "ok"] == failed, statuses
    errors_ = [doc["cases"][i]["error"] or "" for i in failed]
    assert all(e and expect in e for e in errors_), errors_        # each failure says why
    assert all(doc["cases"][i]["iterations"] for i, s in enumerate(statuses) if s == "ok")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr


def test_crash_threads(tmp_path: Path, smollm2_model: Path) -> None:
    suite = write_suite(tmp_path, suite_text(
        extra="engines:\n  - {kind: llama-cpp-python, n_threads: [1, 100000]}"), smollm2_model)
    proc = _run_unchecked(suite, tmp_path / "out")
    _failed_one(proc, _only_result(tmp_path / "out"), [1], "")


def test_crash_block_count(tmp_path: Path, smollm2_model: Path, patched_models: dict) -> None:
    models = (f"  - {{path: {smollm2_model}, name: first}}\n"
              f"  - {{path: {patched_models['blocks:1000000']}, name: absurd}}\n"
              f"  - {{path: {smollm2_model}, name: third}}")
    suite = write_suite(tmp_path, suite_text(models=models), smollm2_model)
    proc = _run_unchecked(suite, tmp_path / "out")
    doc = _only_result(tmp_path / "out")
    _failed_one(proc, doc, [1], "")
    assert [c["model"]["name"] for c in doc["cases"]] == ["first", "absurd", "third"]


def test_crash_context(tmp_path: Path, smollm2_model: Path) -> None:
    suite = write_suite(tmp_path, suite_text(extra="engine:\n  n_ctx: [16, 2048]",
                                          workloads="  - pp: 64"), smollm2_model)
    proc = _run_unchecked(suite, tmp_path / "out")
    _failed_one(proc, _only_result(tmp_path / "out"), [0], "needs a context")


def test_chat_prompt_longer_than_the_context(tmp_path: Path, smollm2_model: Path) -> None:
    prompt = "Explain, in great detail and with many examples, " * 20
    suite = write_suite(tmp_path, suite_text(
        extra="engine:\n  n_ctx: 32",
        workloads=f"  - chat: {{prompt: '{prompt}', max_tokens: 4}}\n  - tg: 4"),
        smollm2_model)
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"))
    _failed_one(proc, _only_result(tmp_path / "out"), [0], "needs a context")


def _many_cases(tmp_path: Path, model: Path, n: int = 24) -> Path:
    counts = ", ".join(str(4 + i) for i in range(n))
    return write_suite(tmp_path, suite_text(workloads=f"  - tg: [{counts}]"), model)


def _interrupt(tmp_path: Path, model: Path, sig: int) -> tuple[Path, dict, subprocess.Popen]:
    """Start a run of many short cases, wait for the first case to be recorded, send `sig`."""
    suite = _many_cases(tmp_path, model)
    out = tmp_path / "out"
    proc = subprocess.Popen([*benchkit_cmd(), "run", str(suite), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        files = sorted(out.glob("*.json")) if out.exists() else []
        if files:
            try:
                if json.loads(files[0].read_text(encoding="utf-8"))["cases"]:
                    break
            except ValueError:
                pass
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    proc.communicate(timeout=300)
    return suite, _only_result(out), proc


def _interrupted(doc: dict, proc: subprocess.Popen, name: str) -> None:
    assert proc.returncode != 0
    assert doc["status"] == "interrupted" and doc["partial"] and doc["finished_at"]
    assert doc.get("interrupted_by") == name
    assert doc["cases"] and all(c["status"] in ("ok", "partial") for c in doc["cases"])
    assert all(c["iterations"] for c in doc["cases"] if c["status"] == "ok")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_leaves_an_interrupted_run(sig: str, tmp_path: Path, smollm2_model: Path) -> None:
    _, doc, proc = _interrupt(tmp_path, smollm2_model, getattr(signal, sig))
    _interrupted(doc, proc, sig)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_resume_completes_an_interrupted_run(tmp_path: Path, smollm2_model: Path) -> None:
    suite, before, _ = _interrupt(tmp_path, smollm2_model, signal.SIGTERM)
    result = sorted((tmp_path / "out").glob("*.json"))[0]
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--resume", str(result))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    after = _only_result(tmp_path / "out")
    assert after["status"] == "complete" and after["run_id"] == before["run_id"]
    kept = [c for c in before["cases"] if c["status"] == "ok"]
    assert [c for c in after["cases"] if c["status"] == "ok"][:len(kept)] == kept
    assert sorted(c["test"] for c in after["cases"] if c["status"] == "ok") == \
        sorted(f"tg{4 + i}" for i in range(24))

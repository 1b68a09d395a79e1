"""Worker processes: a configuration that dies or hangs fails its case, never the run, and
an interrupted run resumes into the same file. Real processes, the real SmolLM2 model."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from benchkit.results.io import read_result
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, benchkit_cmd, run_benchkit

SUITE = f"""\
name: worker
models:
  - package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}
engine: {{n_gpu_layers: 0, n_threads: 1}}
workloads:
{{workloads}}
warmup: 0
iterations: 1
"""


def _suite(tmp_path: Path, workloads: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SUITE.replace("{workloads}", workloads), encoding="utf-8")
    return path


def _start(suite: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*benchkit_cmd(), "run", str(suite), "-o", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _worker_of(proc: subprocess.Popen, deadline_s: float = 300) -> psutil.Process:
    """The worker process measuring for `proc`, once it has started a case."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "benchkit.run.worker" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:          # a probe that just ended (nvidia-smi, sysctl)
                continue
        time.sleep(0.1)
    pytest.fail("no worker process appeared")


def _cases_on_disk(out: Path) -> list[dict]:
    files = list(out.glob("*.json")) if out.exists() else []
    return json.loads(files[0].read_text())["cases"] if files else []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
def test_a_worker_that_dies_fails_its_case_and_the_run_goes_on(tmp_path: Path, sig) -> None:
    """SIGKILL is what the out-of-memory killer sends; SIGSEGV and SIGABRT what a native
    crash and a GGML_ASSERT end a process with."""
    out = tmp_path / "out"
    suite = _suite(tmp_path, "  - tg: 100000\n  - pp: 8\n")
    proc = _start(suite, out)
    try:
        worker = _worker_of(proc)
        end = time.monotonic() + 300        # wait until the model is loaded and decoding
        while time.monotonic() < end and worker.cpu_times().user < 1.0:
            time.sleep(0.1)
        worker.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr           # a case failed; the run finished
    assert "Traceback" not in stderr
    doc = read_result(next(out.glob("*.json")))
    assert doc["status"] == "complete"
    dead, after = doc["cases"]
    assert dead["test"] == "tg100000" and dead["status"] == "failed"
    assert signal.Signals(sig).name in dead["error"]
    assert after["test"] == "pp8" and after["status"] == "ok"   # a fresh worker measured it
    assert after["summary"]["n"] == 1


def test_a_case_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    suite = _suite(tmp_path, "  - tg: 100000\n  - pp: 8\n")
    proc = run_benchkit("run", str(suite), "-o", str(out), "--case-timeout", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    doc = read_result(next(out.glob("*.json")))
    slow, after = doc["cases"]
    assert slow["status"] == "failed" and "time limit of 3 s" in slow["error"]
    assert after["status"] == "ok"
    assert not [p for p in psutil.process_iter(["cmdline"])
                if "benchkit.run.worker" in " ".join(p.info["cmdline"] or [])
                and str(out) in " ".join(p.info["cmdline"] or [])]


def test_resume_completes_an_interrupted_run_in_the_same_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    long = _suite(tmp_path, "  - pp: 8\n  - tg: 100000\n  - tg: 4\n")
    proc = _start(long, out)
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end and not _cases_on_disk(out):
            time.sleep(0.2)
        time.sleep(1.0)                   # into the long case (its start is not awaited)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    (path,) = out.glob("*.json")
    before = read_result(path)
    assert before["status"] == "interrupted" and before["interrupted_by"] == "SIGTERM"
    kept = before["cases"][0]
    assert kept["status"] == "ok"
    assert [c["status"] for c in before["cases"][1:]] in ([], ["partial"])

    # the same suite with the long case made short is another suite: refused
    other = _suite(tmp_path, "  - pp: 8\n  - tg: 4\n", "other.yaml")
    refused = run_benchkit("run", str(other), "--resume", str(path))
    assert refused.returncode == 2 and "suite.tests" in refused.stderr

    # the long test is cut short with --case-timeout so that the resumed run ends
    proc = run_benchkit("run", str(long), "--resume", str(path), "--case-timeout", "2")
    assert "Traceback" not in proc.stderr
    after = read_result(path)
    assert after["run_id"] == before["run_id"] and after["status"] == "complete"
    assert [c["test"] for c in after["cases"]] == ["pp8", "tg100000", "tg4"]
    assert after["cases"][0] == kept                 # a finished case is not measured again
    assert after["cases"][2]["status"] == "ok"
    assert len(after["resumed"]) == 1
    assert run_benchkit("run", str(long), "--resume", str(path)).returncode == 2  # complete

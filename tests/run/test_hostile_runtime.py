"""The catalogue's run-time part (tests/catalogue/run.py): a case that cannot start fails in
one line and no case goes missing; the worker and the servers end with benchkit, even on
SIGKILL, and the run resumes; --resume refuses a file another run writes; two workloads
under one test name are refused; a FIFO given to `project` is refused without blocking.

Real processes throughout: `benchkit run` in a subprocess, its worker, and llama.cpp's
tools played by tests/tool_fakes.py (real servers on loopback that lie on request). Every
signal waits for a state (a request begun, a process gone), never for a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from benchkit.results.io import read_result
from catalogue_support import HANG_TIMEOUT, cli, part, refused
from conftest import benchkit_cmd, run_benchkit
from http_fakes import OllamaFake, ollama_show
from tool_fakes import make_tool

RUN = part("run")
ENTRY = {e.id: e for e in RUN.ENTRIES}
WAIT_S = 120                   # a state that does not come by then is a failure


def _suite(tmp_path: Path, model: Path, engines: str, workloads: str,
           name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"name: hostile-run\nmodels:\n  - path: {model}\nengines:\n{engines}"
                    f"workloads:\n{workloads}warmup: 0\niterations: 1\n", encoding="utf-8")
    return path


def _fake_server(tmp_path: Path, mode: str, state: Path | None = None) -> str:
    binary = make_tool(tmp_path / "bin", "llama-server")
    extra = f', "--fake-state", "{state}"' if state else ""
    return (f'  - {{kind: llama-server, binary: "{binary}", '
            f'args: ["--fake", "{mode}"{extra}]}}\n')


def _error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _cases(out: Path) -> list[dict]:
    return read_result(next(out.glob("*.json")))["cases"]


# --- a case that cannot start ---------------------------------------------------------------


@pytest.mark.parametrize("entry, mode", [("prepare-tokenize-list", "tokenize-list"),
                                         ("measure-raises", "timings-list")])
def test_a_case_that_raises_fails_in_one_line_and_the_next_is_measured(
        tmp_path: Path, smollm2_model: Path, entry: str, mode: str) -> None:
    suite = _suite(tmp_path, smollm2_model, _fake_server(tmp_path, mode),
                   "  - chat: {max_tokens: 4}\n  - tg: 4\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    line = _error_line(proc, 1)
    assert ENTRY[entry].expect in line
    chat, tg = _cases(tmp_path / "out")
    assert chat["status"] == "failed" and ENTRY[entry].expect in chat["error"]
    assert "\n" not in chat["error"]
    assert tg["test"] == "tg4" and tg["status"] == "ok", (tg.get("error"), proc.stderr)


def test_a_worker_killed_before_its_case_starts_leaves_no_case_missing(
        tmp_path: Path, smollm2_model: Path) -> None:
    """/tokenize (chat's preparation) kills the worker: before, the parent took the
    worker's end for the end of its work and the remaining cases were never measured."""
    suite = _suite(tmp_path, smollm2_model, _fake_server(tmp_path, "kill-parent"),
                   "  - tg: 4\n  - chat: {max_tokens: 4}\n  - tg: 8\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert ENTRY["worker-dies-before-case"].expect in _error_line(proc, 1)
    cases = _cases(tmp_path / "out")
    assert [(c["test"], c["status"]) for c in cases] == [
        ("tg4", "ok"), ("chat", "failed"), ("tg8", "ok")]
    assert "SIGKILL" in cases[1]["error"]


def test_an_engine_that_raises_while_opening_fails_every_case(
        tmp_path: Path, smollm2_model: Path) -> None:
    show = {**ollama_show(family="llama", n_params=1, quant="Q4_1", sha256=None),
            "details": "not a mapping"}
    with OllamaFake("smollm2", show) as fake:
        suite = _suite(tmp_path, smollm2_model,
                       f"  - {{kind: ollama, url: \"{fake.url}\", model: smollm2}}\n",
                       "  - tg: 4\n  - pp: 8\n")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert ENTRY["open-raises"].expect in _error_line(proc, 1)
    cases = _cases(tmp_path / "out")
    assert [c["status"] for c in cases] == ["failed", "failed"]
    assert all(ENTRY["open-raises"].expect in c["error"] for c in cases)


@pytest.mark.slow
def test_a_truncated_reference_cache_fails_its_case(tmp_path: Path,
                                                    smollm2_model: Path) -> None:
    env = {**os.environ, "BENCHKIT_CACHE": str(tmp_path / "cache")}
    suite = _suite(tmp_path, smollm2_model, "  - llama-cpp-python\n",
                   "  - ppl: {n_ctx: 128, chunks: 1, kld: {reference: {n_batch: 64}}}\n"
                   "  - tg: 4\n")
    first = run_benchkit("run", str(suite), "-o", str(tmp_path / "one"), "--no-progress",
                         env=env)
    assert first.returncode == 0, first.stderr
    (cache,) = (tmp_path / "cache" / "logits").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "two"), "--no-progress",
                        env=env)
    assert ENTRY["truncated-logits-cache"].expect in _error_line(proc, 1)
    ppl, tg = _cases(tmp_path / "two")
    assert ppl["status"] == "failed" and tg["status"] == "ok"


# --- processes that end with benchkit, and resuming -----------------------------------------


def _wait(what: str, done, timeout_s: float = WAIT_S) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < end, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigkill_of_benchkit_ends_its_worker_and_server_and_the_run_resumes(
        tmp_path: Path, smollm2_model: Path) -> None:
    """Covers `sigkill-benchkit` and `resume-live-writer`."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "slow").write_text("")          # tokens a second apart while this exists
    suite = _suite(tmp_path, smollm2_model, _fake_server(tmp_path, "ok", state),
                   "  - serve: {concurrency: 1, requests: 2, prompt_tokens: 8, "
                   "max_tokens: 30}\n  - tg: 4\n")
    out = tmp_path / "out"
    run = subprocess.Popen([*benchkit_cmd(), "run", str(suite), "-o", str(out),
                            "--no-progress"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        _wait("a serve request begun", lambda: (state / "requests").exists())
        (path,) = out.glob("*.json")
        busy = run_benchkit("run", str(suite), "--resume", str(path))
        line = refused(busy, path, ENTRY["resume-live-writer"].expect)
        assert line.startswith("error:")
        children = _descendants(run.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "benchkit.run.worker" in names and "llama-server" in names, names
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=WAIT_S)
        for child in children:
            _wait(f"{child.pid} ended with benchkit", lambda c=child: _gone(c))
    finally:
        if run.poll() is None:
            run.kill()
    doc = read_result(path)
    assert doc["status"] == "running" and doc["partial"] is True
    (state / "slow").unlink()
    resumed = run_benchkit("run", str(suite), "--resume", str(path), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    after = read_result(path)
    assert after["status"] == "complete"
    assert [(c["test"], c["status"]) for c in after["cases"]] == [("serve-c1", "ok"),
                                                                  ("tg4", "ok")]


# --- one name, one workload -----------------------------------------------------------------


@pytest.mark.parametrize("entry, first, second", [
    ("serve-same-name", "serve: {concurrency: 1, prompt_tokens: 128}",
     "serve: {concurrency: 1, prompt_tokens: 512}"),
    ("chat-same-name", "chat: {prompt: one}", "chat: {prompt: two}"),
    ("ppl-same-name", "ppl: {chunks: 2}", "ppl: {chunks: 3}"),
])
def test_two_workloads_under_one_test_name_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, first: str,
        second: str) -> None:
    suite = tmp_path / "names.yaml"
    suite.write_text(f"name: names\nmodels:\n  - path: {tmp_path / 'm.gguf'}\nworkloads:\n"
                     f"  - {first}\n  - {second}\n", encoding="utf-8")
    e = ENTRY[entry]
    line = refused(cli(capsys, "run", str(suite), "-o", str(tmp_path / "out")), suite.name,
                   e.expect, e.field)
    assert "test name" in line
    assert not (tmp_path / "out").exists()


# --- files that must not block --------------------------------------------------------------


@pytest.mark.parametrize("entry, option", [("chip-spec-fifo", "--chip-spec"),
                                           ("gguf-fifo", "--gguf")])
def test_project_refuses_a_fifo_without_blocking(tmp_path: Path, entry: str,
                                                 option: str) -> None:
    fifo = tmp_path / "spec.input"
    os.mkfifo(fifo)
    proc = subprocess.run([*benchkit_cmd(), "project", "--anchor", "h100", "--tg", "100",
                           "--model-gb", "1", option, str(fifo)], capture_output=True,
                          text=True, timeout=HANG_TIMEOUT)
    refused(proc, fifo, ENTRY[entry].expect)


def test_every_entry_of_this_part_has_a_test() -> None:
    tested = {"prepare-tokenize-list", "measure-raises", "worker-dies-before-case",
              "open-raises", "truncated-logits-cache", "sigkill-benchkit",
              "resume-live-writer", "serve-same-name", "chat-same-name", "ppl-same-name",
              "chip-spec-fifo", "gguf-fifo"}
    assert set(ENTRY) == tested
    assert json.dumps(sorted(ENTRY))        # ids are plain text

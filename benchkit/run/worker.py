"""Measure one engine configuration, in this process or in a worker process.

`execute` is the one measuring path: open the model with the engine, then for each
workload prepare, measure and report what happened as events (plain dicts) to a sink.
The runner records events into the result file; it does not care where they came from.

By default the runner isolates each configuration in a worker process, as pyperf does:
`python -m benchkit.run.worker` gets the job (engine, model, workloads, plan) pickled on its
standard input, runs `execute`, and streams the events as JSON lines on a pipe. A crash
inside a native library (a segfault, a GGML_ASSERT abort, the out-of-memory killer) then
ends the worker, not the run: the parent marks the case in progress failed with the
signal or exit status and the tail of the worker's stderr (where llama.cpp writes its
asserts), keeps that case's finished iterations, and starts a fresh worker for the rest
of the configuration's workloads. A case that exceeds its time limit is ended the same
way. The worker runs in its own session, so that Ctrl-C in a terminal reaches the parent
alone, which stops the worker and records the case in progress as partial.

Events: opened {load_seconds, facts, rss_after_load_bytes} | open_failed {error} |
case_start {i, placement, warnings, n_ctx} | iteration {i, it, warmup} |
case_done {i, facts, warmups_used, first_iteration, peak_rss_bytes} | case_failed {i, error}.
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

from benchkit.engines.base import Engine, Iteration, ModelFile, Plan
from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC
from benchkit.workloads.base import Workload

Sink = Callable[[dict[str, Any]], None]
STDERR_TAIL = 12          # lines of a dead worker's stderr kept in the error


@dataclass(frozen=True)
class Job:
    """What a worker measures: one engine configuration on one model, its workloads."""

    engine: Engine
    model: ModelFile | None
    workloads: tuple[Workload, ...]
    warmup: int | str
    iterations: int
    first: int = 0        # index of workloads[0] among the configuration's workloads


def execute(job: Job, sink: Sink) -> None:
    """Open, then measure every workload of `job`, telling `sink` what happens."""
    try:
        session = job.engine.open(job.model)
    except BenchkitError as exc:
        sink({"type": "open_failed", "error": str(exc)})
        return
    try:
        sink({"type": "opened", "load_seconds": session.load_seconds,
              "facts": session.facts(), "rss_after_load_bytes": _rss(), "pid": os.getpid()})
        for k, workload in enumerate(job.workloads):
            _measure_one(session, workload, job, job.first + k, sink)
    finally:
        session.close()


def _measure_one(session: Any, workload: Workload, job: Job, i: int, sink: Sink) -> None:
    try:
        warnings = session.prepare(workload)
        sink({"type": "case_start", "i": i, "placement": session.placement(),
              "warnings": warnings, "n_ctx": getattr(session, "n_ctx", None)})

        timed = session.measure(workload, streaming_plan(job, sink, i))
        first = session.first_iteration
        sink({"type": "case_done", "i": i, "facts": session.facts(),
              "iterations": [it.to_dict() for it in timed],
              "warmups_used": session.warmups_used,
              "warnings": getattr(session, "take_warnings", list)(),
              "first_iteration": first.to_dict() if first is not None else None,
              "peak_rss_bytes": _peak_rss()})
    except BenchkitError as exc:
        sink({"type": "case_failed", "i": i, "error": str(exc)})


def streaming_plan(job: Job, sink: Sink, i: int) -> Plan:
    """The job's plan, telling `sink` of every iteration as it finishes (the whole
    iteration when the engine gives it, so that a crash or an interruption keeps it)."""

    def on_iteration(it: Any) -> None:
        if it is None:
            sink({"type": "iteration", "i": i, "warmup": True})
        elif isinstance(it, Iteration):
            sink({"type": "iteration", "i": i, "warmup": False, "it": it.to_dict()})
        else:
            sink({"type": "iteration", "i": i, "warmup": False, "tps": float(it)})

    return Plan(warmup=job.warmup, iterations=job.iterations, on_iteration=on_iteration)


# --- the parent's side ------------------------------------------------------------------


def run_isolated(job: Job, sink: Sink, *, case_timeout_s: float | None = None) -> None:
    """Run `job` in worker processes; a dead or timed-out worker fails its case and a
    fresh one continues with the next workload."""
    remaining = list(range(len(job.workloads)))
    while remaining:
        sub = Job(job.engine, job.model, tuple(job.workloads[k] for k in remaining),
                  job.warmup, job.iterations, job.first + remaining[0])
        done = _one_worker(sub, sink, case_timeout_s)
        if done is None:              # the worker could not open the model: nothing to retry
            return
        remaining = [k for k in remaining if job.first + k > done]


def _one_worker(job: Job, sink: Sink, case_timeout_s: float | None) -> int | None:
    """One worker process for `job`. Returns the index of the last case it settled (done,
    failed or killed), or None when it never opened the model."""
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchkit.run.worker", str(write_fd)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(write_fd,),
            start_new_session=True, env=_worker_env())
        os.close(write_fd)
        try:
            proc.stdin.write(pickle.dumps(job))   # type: ignore[union-attr]
            proc.stdin.close()                     # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        watch = _Watch(proc, read_fd, sink, case_timeout_s)
        try:
            watch.follow()
        except BaseException:
            _stop(proc)
            raise
        finally:
            os.close(read_fd)
        code = proc.wait()
        if watch.current is not None or (not watch.opened and not watch.open_failed):
            reason = _death(code, watch.timed_out, case_timeout_s, _tail(stderr))
            if not watch.opened:
                for k in range(len(job.workloads)):
                    sink({"type": "case_failed", "i": job.first + k, "error": reason})
                return None
            sink({"type": "case_failed", "i": watch.current, "error": reason})
            return watch.current
    return None if watch.open_failed else job.first + len(job.workloads) - 1


def _worker_env() -> dict[str, str]:
    """The parent's environment, with ggml's crash backtrace off: on a fatal error ggml
    attaches gdb to print a stack, which fills the stderr tail a failed case keeps with
    debugger noise instead of ggml's own message (and can hang where ptrace is allowed)."""
    return {**os.environ, "GGML_NO_BACKTRACE": os.environ.get("GGML_NO_BACKTRACE", "1")}


class _Watch:
    """Reads a worker's events, forwards them, and notices death, time-outs and signals."""

    def __init__(self, proc: subprocess.Popen, fd: int, sink: Sink,
                 case_timeout_s: float | None) -> None:
        self.proc, self.fd, self.sink, self.limit = proc, fd, sink, case_timeout_s
        self.current: int | None = None
        self.opened = self.open_failed = self.timed_out = False
        self.started = time.monotonic()

    def follow(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ)
        buf = b""
        while True:
            CtrlC.check()
            if self._over_time():
                _stop(self.proc)
                self.timed_out = True
                return
            if not sel.select(timeout=0.2):
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._event(json.loads(line))

    def _over_time(self) -> bool:
        return (self.limit is not None and self.current is not None
                and time.monotonic() - self.started > self.limit)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "opened":
            self.opened = True
        elif kind == "open_failed":
            self.open_failed = True
        elif kind == "case_start":
            self.current, self.started = event["i"], time.monotonic()
        elif kind in ("case_done", "case_failed"):
            self.current = None
        self.sink(event)


def _stop(proc: subprocess.Popen) -> None:
    """End the worker and everything it started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _death(code: int, timed_out: bool, limit: float | None, tail: list[str]) -> str:
    """One line: how the worker ended, and what llama.cpp said last."""
    if timed_out:
        how = f"the case ran past its time limit of {limit:g} s and was stopped"
    elif code < 0:
        sig = signal.Signals(-code)
        how = f"the worker process died of {sig.name} ({signal.strsignal(sig) or sig.name})"
    else:
        how = f"the worker process exited with status {code}"
    said = " | ".join(tail)
    return f"{how}; its stderr ends: {said}" if said else how


def _tail(stderr: Any) -> list[str]:
    """The last lines of the worker's stderr that say something."""
    stderr.seek(0)
    lines = stderr.read()[-65536:].decode("utf-8", errors="replace").splitlines()
    keep = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("Traceback")]
    return keep[-STDERR_TAIL:]


def _rss() -> int | None:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int | None:
    """This process's peak resident set (ru_maxrss: KiB on Linux, bytes on macOS); in a
    worker that is the configuration's own peak, not the whole run's."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0)) or None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --- the worker's side ------------------------------------------------------------------


def _child(fd: int) -> None:
    """Read the job from stdin, run it, write events to `fd` as JSON lines."""
    try:
        import benchkit.engines.llama_cpp.native  # noqa: F401  llama.cpp before numpy (see there)
    except ImportError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the parent decides when to stop
    job = pickle.loads(sys.stdin.buffer.read())
    out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def sink(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, allow_nan=False) + "\n")

    execute(job, sink)
    out.flush()


if __name__ == "__main__":
    _child(int(sys.argv[1]))

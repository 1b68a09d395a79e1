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
of the configuration's workloads. Any exception while a case is prepared or measured
fails that case in one line, and a worker that ends with cases it never settled fails
the first of them with how it ended: no case goes missing. A case that exceeds its time
limit, and a run interrupted, stop the worker with SIGTERM, which it acts on at its next
safe point: what it finished (a serve level's finished requests) is read from the pipe
before it is killed. The worker runs in its own session, so that Ctrl-C in a terminal
reaches the parent alone, which stops the worker and records the case in progress as
partial; and it dies with the parent however the parent ends (benchkit.core.lifetime).

Events: opened {load_seconds, facts, rss_after_load_bytes} | open_failed {error} |
case_start {i, placement, warnings, n_ctx} | iteration {i, it, warmup} |
case_done {i, facts, warmups_used, first_iteration, peak_rss_bytes} |
case_failed {i, error, stopped (the parent stopped it at its time limit)}.
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
from benchkit.core import lifetime
from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC, Interrupted, interrupt_guard
from benchkit.core.streamlines import LineSplitter
from benchkit.workloads.base import Workload

Sink = Callable[[dict[str, Any]], None]
STDERR_TAIL = 12          # lines of a dead worker's stderr kept in the error
STOP_GRACE_S = 10.0       # a stopped worker's time to hand over what it finished


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
    """Open, then measure every workload of `job`, telling `sink` what happens.

    Every exception but an interruption becomes an event: a model that cannot be opened
    fails every case (`open_failed`), a case that cannot be prepared or measured fails
    that case (`case_failed`) and the next one is measured. No case is left unsaid."""
    session = None
    try:
        session = job.engine.open(job.model)
        opened = {"type": "opened", "load_seconds": session.load_seconds,
                  "facts": session.facts(), "rss_after_load_bytes": _rss(), "pid": os.getpid()}
    except Exception as exc:  # noqa: BLE001 - any failure to open fails the cases, in one line
        if session is not None:
            _close(session)
        sink({"type": "open_failed", "error": one_line(exc, "opening the model")})
        return
    try:
        sink(opened)
        for k, workload in enumerate(job.workloads):
            _measure_one(session, workload, job, job.first + k, sink)
    finally:
        _close(session)


def _measure_one(session: Any, workload: Workload, job: Job, i: int, sink: Sink) -> None:
    step = "preparing the case"
    try:
        warnings = session.prepare(workload)
        sink({"type": "case_start", "i": i, "placement": session.placement(),
              "warnings": warnings, "n_ctx": getattr(session, "n_ctx", None)})
        step = "measuring"
        timed = session.measure(workload, streaming_plan(job, sink, i))
        first = session.first_iteration
        sink({"type": "case_done", "i": i, "facts": session.facts(),
              "iterations": [it.to_dict() for it in timed],
              "warmups_used": session.warmups_used,
              "warnings": getattr(session, "take_warnings", list)(),
              "first_iteration": first.to_dict() if first is not None else None,
              "peak_rss_bytes": _peak_rss()})
    except Exception as exc:  # noqa: BLE001 - every failure is the case's, in one line
        sink({"type": "case_failed", "i": i, "error": one_line(exc, step)})


def one_line(exc: BaseException, step: str) -> str:
    """A case's error: benchkit's own line as it is; any other exception (a server's
    answer of an unexpected shape, a damaged cache file) with its kind and `step`."""
    if isinstance(exc, BenchkitError):
        return " ".join(str(exc).split())
    said = " ".join(str(exc).split())[:300]
    return f"unexpected {type(exc).__name__} while {step}" + (f": {said}" if said else "")


def _close(session: Any) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - the cases are recorded; closing must not undo that
        pass


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
            [sys.executable, "-m", "benchkit.run.worker", str(write_fd), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
            pass_fds=(write_fd,), start_new_session=True, env=_worker_env())
        os.close(write_fd)
        try:
            proc.stdin.write(pickle.dumps(job))   # type: ignore[union-attr]
            proc.stdin.close()                     # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        watch = _Watch(proc, read_fd, sink, case_timeout_s)
        try:
            watch.follow()
        except BaseException:         # interrupted: what the worker finished is kept first
            watch.wind_down()
            raise
        finally:
            os.close(read_fd)
        return watch.settle(job, proc.wait(), _tail(stderr))


def _worker_env() -> dict[str, str]:
    """The parent's environment, with ggml's crash backtrace off: on a fatal error ggml
    attaches gdb to print a stack, which fills the stderr tail a failed case keeps with
    debugger noise instead of ggml's own message (and can hang where ptrace is allowed)."""
    return {**os.environ, "GGML_NO_BACKTRACE": os.environ.get("GGML_NO_BACKTRACE", "1")}


class _Watch:
    """Reads a worker's events, forwards them, and notices death, time-outs and signals.

    Which cases the worker settled (done or failed) is kept: when the worker ends, a case
    it did not settle is failed with how it ended, never taken as done."""

    def __init__(self, proc: subprocess.Popen, fd: int, sink: Sink,
                 case_timeout_s: float | None) -> None:
        self.proc, self.fd, self.sink, self.limit = proc, fd, sink, case_timeout_s
        self.current: int | None = None
        self.settled: set[int] = set()
        self.opened = self.open_failed = self.timed_out = False
        self.started = time.monotonic()
        self.lines = LineSplitter()
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def follow(self) -> None:
        while True:
            CtrlC.check()
            if self._over_time():
                self.timed_out = True
                self.wind_down()
                return
            if not self._read(0.2):
                return

    def _read(self, timeout_s: float) -> bool:
        """Forward the events that arrive within `timeout_s`; False at the pipe's end."""
        if not self.selector.select(timeout=timeout_s):
            return True
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return False
        for line in self.lines.feed(chunk):
            self._event(json.loads(line))
        return True

    def wind_down(self) -> None:
        """Stop the worker and keep what it finished: SIGTERM is noted at the worker's next
        safe point (a serve level then hands over its finished requests, a decode loop stops
        after the current decode), its last events are forwarded while it ends, and after
        STOP_GRACE_S it and its process group are killed."""
        _signal(self.proc, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_S
        try:
            while time.monotonic() < end and self._read(min(0.2, max(end - time.monotonic(),
                                                                      0.0))):
                pass
        finally:
            _stop(self.proc)

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
            self.settled.add(event["i"])
        self.sink(event)

    def settle(self, job: Job, code: int, tail: list[str]) -> int | None:
        """After the worker ended: fail the case it was in (or the first it never
        reached) with how it ended. The index of the last case settled, None when the
        model was never opened."""
        if self.open_failed:
            return None
        indexes = [job.first + k for k in range(len(job.workloads))]
        unsettled = [i for i in indexes if i not in self.settled]
        if not unsettled:
            return indexes[-1]
        reason = _death(code, self.timed_out, self.limit, tail,
                        started=self.current is not None)
        if not self.opened:
            for i in unsettled:
                self.sink({"type": "case_failed", "i": i, "error": reason})
            return None
        i = self.current if self.current is not None else unsettled[0]
        self.sink({"type": "case_failed", "i": i, "error": reason, "stopped": self.timed_out})
        return i


def _signal(proc: subprocess.Popen, sig: int) -> None:
    """`sig` to the worker's process group: the worker, and a tool it runs (llama-bench)
    that would otherwise finish its work first. A server it started is in a group of its
    own: the worker stops it as it ends."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


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


def _death(code: int, timed_out: bool, limit: float | None, tail: list[str], *,
           started: bool = True) -> str:
    """One line: how the worker ended, and what llama.cpp said last."""
    if timed_out:
        how = f"the case ran past its time limit of {limit:g} s and was stopped"
    elif code < 0:
        sig = signal.Signals(-code)
        how = f"the worker process died of {sig.name} ({signal.strsignal(sig) or sig.name})"
    else:
        how = f"the worker process exited with status {code}"
    if not started and not timed_out:
        how += " before the case started"
    said = " | ".join(tail) if not timed_out else ""   # a stopped worker's tail is ours
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


def _child(fd: int, parent: int) -> None:
    """Read the job from stdin, run it, write events to `fd` as JSON lines.

    The worker dies with benchkit (benchkit.core.lifetime: the kernel's parent-death
    signal, else a watchdog), so that a SIGKILL of benchkit leaves no worker measuring.
    SIGTERM, SIGINT and SIGHUP are noted (benchkit.core.interrupts) and acted on at the
    next safe point: the parent sends SIGTERM to stop a case (a time limit, Ctrl-C) and
    reads what the worker finished before it ends."""
    lifetime.die_with_parent(parent)
    try:
        import benchkit.engines.llama_cpp.native  # noqa: F401  llama.cpp before numpy (see there)
    except ImportError:
        pass
    job = pickle.loads(sys.stdin.buffer.read())
    out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def sink(event: dict[str, Any]) -> None:
        # NaN and Infinity pass as JSON's extensions: the parent judges every figure
        # (benchkit.results.io.case_problem) and fails the case in one line
        out.write(json.dumps(event) + "\n")

    try:
        with interrupt_guard():
            execute(job, sink)
    except Interrupted:
        pass                      # stopped by the parent, which records the case
    out.flush()


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]))

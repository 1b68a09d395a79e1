"""The sampling loop: a background thread reads every source, and `finish` summarises the
window of the timed iterations into `case.telemetry`."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from benchkit.run.telemetry.nvidia import NvidiaSource, gpu_memory
from benchkit.run.telemetry.powermetrics import PowermetricsSource
from benchkit.run.telemetry.process import ProcessSource
from benchkit.run.telemetry.rapl import RAPL_ROOT, RaplSource
from benchkit.run.telemetry.span import Off, Span

DEFAULT_INTERVAL_S = 0.1
CLOCK = "time.perf_counter (benchkit process)"
TIMED = "timed iterations"          # the window: from the last warmup's end
WHOLE = "whole measurement"         # the window: from before the first warmup


# --------------------------------------------------------------------------- sampler

class Sampler:
    """Samples the sources in a background thread between `start` and `stop`.

    Use as a context manager around the measurement, pass `on_iteration(progress)` as
    the plan's callback, then call `finish(tokens=, seconds=)` for `case.telemetry`.
    `pid` is the process that runs the case (default: this one; a worker's pid when
    measurement runs in a worker). `rapl_root` is where the powercap zones are.
    """

    def __init__(self, pid: int | None = None, *, interval_s: float = DEFAULT_INTERVAL_S,
                 rapl_root: str | os.PathLike[str] = RAPL_ROOT, nvidia: bool = True,
                 powermetrics: bool = True, reset_peak_rss: bool = True) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.pid = os.getpid() if pid is None else pid
        self.interval_s = interval_s
        self.process = ProcessSource(self.pid, reset_peak=reset_peak_rss)
        self.sources: dict[str, Any] = {
            "process": self.process,
            "nvidia": NvidiaSource(self.process.pids) if nvidia else Off("not asked for"),
            "rapl": RaplSource(rapl_root),
            "powermetrics": (PowermetricsSource(interval_s) if powermetrics
                             else Off("not asked for")),
        }
        self.readings: list[tuple[float, dict[str, Any]]] = []
        self.t_start = self.t_timed = self.t_end = None
        self.thread_cpu_s = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Sampler:
        """Open the sources, take the first reading, start the thread."""
        for source in self.sources.values():
            source.open()
        self.t_start = self._read(mark=True)
        self._thread = threading.Thread(target=self._run, name="benchkit-telemetry",
                                        daemon=True)
        self._thread.start()
        return self

    def begin_timed(self) -> None:
        """The timed iterations start now: the window starts here (call between iterations)."""
        self.t_timed = self._read(mark=True)

    def on_iteration(self, then: Callable[[float | None], None] = lambda tps: None
                     ) -> Callable[[float | None], None]:
        """A Plan.on_iteration that calls `then` and, after each warmup (tps None),
        moves the window's start there; with warmup auto the last one wins."""
        def callback(tps: float | None) -> None:
            then(tps)
            if tps is None:
                self.begin_timed()
        return callback

    def stop(self) -> None:
        """Take the last reading and stop the thread and the sources; safe to call twice."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.t_end = self._read()
        for source in self.sources.values():
            source.close(self.t_end)

    def finish(self, *, tokens: int | None = None, seconds: float | None = None
               ) -> dict[str, Any]:
        """`case.telemetry`: what each source measured over the window, or why not.

        `tokens` and `seconds` are the case's timed tokens and seconds (summed over its
        iterations): they give the per-token energy figures and check the window."""
        self.stop()
        if self.t_start is None or self.t_end is None:
            raise RuntimeError("finish() before start()")
        t0, window = self._window(seconds)
        t1 = self.t_end
        rows = [(t, r) for t, r in self.readings if t0 <= t <= t1]
        out: dict[str, Any] = {
            "interval_s": self.interval_s, "clock": CLOCK, "window": window,
            "window_s": t1 - t0, "samples": len(rows), "tokens": tokens, "seconds": seconds,
            "sampler": {"cpu_seconds": self.thread_cpu_s, "in_process": self.pid == os.getpid(),
                        "note": "CPU time of the sampling thread over the whole measurement; "
                                + ("counted in the cpu figures (the sampler runs in the "
                                   "measured process)" if self.pid == os.getpid() else
                                   "not counted in the cpu figures (it runs in another "
                                   "process)")},
        }
        span = Span(t0, t1, rows, self.readings[0][1], tokens)
        for name, source in self.sources.items():
            out.update(source.summarize(span) if name == "process"
                       else {name: source.summarize(span)})
        out["memory"]["gpu"] = gpu_memory(out.get("nvidia"), span)
        return out

    def _window(self, seconds: float | None) -> tuple[float, str]:
        """From the last warmup's end when that boundary is believable, else from the start."""
        if self.t_timed is None:
            return self.t_start, (f"{WHOLE}: no warmup was reported before the timed "
                                  "iterations (a warmup the engine runs by itself is inside)")
        if seconds is not None and (self.t_end - self.t_timed) < 0.9 * seconds:
            return self.t_start, (f"{WHOLE}: the engine reported its iterations after "
                                  "running them all, so the warmup is inside")
        return self.t_timed, TIMED

    def _read(self, mark: bool = False) -> float:
        """One reading of every source, stored with its time; returns the time. `mark`:
        a window starts here, so the peak RSS is reset right after this reading (under the
        lock, so that no sample falls between the two)."""
        with self._lock:
            t = time.perf_counter()
            reading = {name: s.read() for name, s in self.sources.items()}
            self.readings.append((t, reading))
            if mark:
                self.process.mark()
        return t

    def _run(self) -> None:
        cpu0 = time.thread_time()
        while not self._stop.wait(self.interval_s):
            self._read()
        self.thread_cpu_s = time.thread_time() - cpu0

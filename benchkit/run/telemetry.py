"""Telemetry of one case: memory, CPU, power and energy while its timed iterations run.

A `Sampler` reads its sources in a background thread (10 Hz by default), never inside
the timed loop: the thread sleeps between samples, and the few readings taken on the
caller's thread (at the start, at the end, and where the timed iterations begin) happen
between iterations. What it measures, for the case's window:

- memory: the peak resident set of the benchmark process over the window (Linux: the
  kernel's exact high-water mark, reset at the window's start through
  /proc/PID/clear_refs; elsewhere the peak of the samples), the summed RSS of the process
  and its children (a server or tool it started), and on an NVIDIA GPU the peak device
  memory: NVML's per-process figure where the driver gives it, else the device's used
  memory and its rise from before the case, labelled as such;
- CPU: utilisation of the process and its children (CPU seconds / wall seconds);
- NVIDIA GPUs through NVML (nvidia-ml-py): utilisation, memory, SM clock, power,
  temperature, the clock event ("throttle") reasons, and energy from the board's
  counter (nvmlDeviceGetTotalEnergyConsumption, mJ) read at both ends of the window;
- Linux CPUs through RAPL (powercap energy_uj counters, wraparound handled);
- Apple Silicon through `powermetrics` (needs root).

A source that cannot be read says why (`{"unavailable": reason}`), never a guess. With
the case's tokens and seconds, `finish` adds joules per token and tokens per joule.
`warnings` turns dropped clocks and reported throttling into the case's warnings.

The window is the timed iterations: `on_iteration` wraps the plan's progress callback
and moves the window's start to the end of each warmup. An engine that reports its
iterations only after running them all (llama-bench) gives no usable boundary, and one
that reports no warmup may have run its own; the window is then the whole measurement
and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

DEFAULT_INTERVAL_S = 0.1
RAPL_ROOT = "/sys/class/powercap"
CLOCK_DROP_SHARE = 0.9          # SM clock below 90% of its window maximum: a warning
CHILDREN_EVERY_S = 1.0          # how often the process tree is re-listed
CLOCK = "time.perf_counter (benchkit process)"
TIMED = "timed iterations"          # the window: from the last warmup's end
WHOLE = "whole measurement"         # the window: from before the first warmup

# Clock event ("throttle") reason bits, nvml.h nvmlClocksEventReason* (names as there).
THROTTLE_REASONS = {
    0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x4: "SwPowerCap", 0x8: "HwSlowdown",
    0x10: "SyncBoost", 0x20: "SwThermalSlowdown", 0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown", 0x100: "DisplayClockSetting",
}
# The reasons that mean the chip slowed itself down (the others are idle or settings).
THROTTLING = frozenset({"SwPowerCap", "HwSlowdown", "SwThermalSlowdown",
                        "HwThermalSlowdown", "HwPowerBrakeSlowdown"})


def decode_reasons(mask: int) -> list[str]:
    """A clock event reason bitmask as names; unknown bits as hex."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"0x{rest:x}"] if rest else [])


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


class Span:
    """The window one summary covers: its readings and the case's tokens."""

    def __init__(self, t0: float, t1: float, rows: list[tuple[float, dict[str, Any]]],
                 before: dict[str, Any], tokens: int | None) -> None:
        self.t0, self.t1, self.rows, self.before, self.tokens = t0, t1, rows, before, tokens

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    def of(self, source: str) -> list[Any]:
        """That source's readings in the window (those it could take)."""
        return [r[source] for _, r in self.rows if r.get(source) is not None]

    def per_token(self, joules: float | None) -> dict[str, Any]:
        """Energy figures: J, mean W, J/token and tokens/J where there are tokens."""
        if joules is None:
            return {"energy_j": None}
        out = {"energy_j": joules, "power_w_mean": joules / self.seconds if self.seconds else None}
        if self.tokens and joules > 0:
            out.update(joules_per_token=joules / self.tokens, tokens_per_joule=self.tokens / joules)
        return out


class Off:
    """A source that is not read, with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open(self) -> None: ...

    def read(self) -> None:
        return None

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        return {"unavailable": self.reason}


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


# --------------------------------------------------------------------------- process

class ProcessSource:
    """RSS and CPU time of the benchmark process and its children (psutil)."""

    def __init__(self, pid: int, *, reset_peak: bool = True) -> None:
        self.pid, self.reset_peak = pid, reset_peak
        self.proc: Any = None
        self.children: list[Any] = []
        self.listed_at = -1e9
        self.hwm_method: str | None = None
        self.hwm_error: str | None = None
        self.error: str | None = None

    def open(self) -> None:
        """Find the process and list its children (the NVIDIA source looks for them)."""
        import psutil

        try:
            self.proc = psutil.Process(self.pid)
        except psutil.Error as exc:
            self.error = f"process {self.pid}: {exc}"
            return
        self._children()

    def pids(self) -> set[int]:
        """The process and its children as last listed."""
        return {self.pid, *(c.pid for c in self.children)}

    def mark(self) -> None:
        """Reset the kernel's peak RSS (Linux >= 4.0: clear_refs 5) so the next high-water
        mark is this window's."""
        if not self.reset_peak or self.proc is None:
            return
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.hwm_method = "kernel high-water mark (VmHWM), reset at the window start"
        except OSError as exc:
            self.hwm_method = None
            self.hwm_error = f"cannot reset the peak RSS: {exc.strerror or exc}"

    def read(self) -> dict[str, Any] | None:
        import psutil

        if self.proc is None:
            return None
        try:
            with self.proc.oneshot():
                rss = self.proc.memory_info().rss
                t = self.proc.cpu_times()
            cpu = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return None
        tree_rss, tree_cpu = rss, cpu
        for child in self._children():
            try:
                ct = child.cpu_times()
                tree_rss += child.memory_info().rss
                tree_cpu += ct.user + ct.system
            except psutil.Error:
                continue
        return {"t": time.perf_counter(), "rss": rss, "tree_rss": tree_rss, "cpu_s": tree_cpu,
                "hwm": _vm_hwm(self.pid), "children": len(self.children)}

    def _children(self) -> list[Any]:
        import psutil

        now = time.perf_counter()
        if now - self.listed_at >= CHILDREN_EVERY_S:
            self.listed_at = now
            try:
                self.children = self.proc.children(recursive=True)
            except psutil.Error:
                self.children = []
        return self.children

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        rows = span.of("process")
        if self.error or len(rows) < 2:
            why = self.error or "the process could not be read (it exited?)"
            return {"memory": {"unavailable": why}, "cpu": {"unavailable": why}}
        return {"memory": self._memory(rows), "cpu": self._cpu(rows)}

    def _memory(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Peak RSS over the window. The window's first reading is taken just before
        its peak is reset, so its high-water mark belongs to what came before."""
        sampled = max(r["rss"] for r in rows)
        marks = [r["hwm"] for r in rows[1:] if r["hwm"] is not None]
        hwm = max(marks) if self.hwm_method and marks else None
        out = {"pid": self.pid, "rss_start_bytes": rows[0]["rss"], "rss_end_bytes": rows[-1]["rss"],
               "peak_rss_bytes": max(sampled, hwm or 0),
               "peak_rss_method": self.hwm_method if hwm else
               "peak of the samples (a lower bound: a peak between samples is missed)",
               "peak_tree_rss_bytes": max(r["tree_rss"] for r in rows),
               "children": max(r["children"] for r in rows)}
        if not hwm and self.hwm_error:
            out["missing"] = {"kernel_peak": self.hwm_error}
        return out

    def _cpu(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """CPU seconds over wall seconds between the first and last reading that found
        the process (a process that exits early is measured while it lived)."""
        import psutil

        cpu_s = rows[-1]["cpu_s"] - rows[0]["cpu_s"]
        wall = rows[-1]["t"] - rows[0]["t"]
        return {"cpu_seconds": cpu_s, "wall_seconds": wall,
                "percent": 100 * cpu_s / wall if wall > 0 else None,
                "logical_cores": psutil.cpu_count() or 1,
                "note": "process and its children; 100% = one logical core busy"}


def _vm_hwm(pid: int) -> int | None:
    """VmHWM of /proc/PID/status in bytes (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# --------------------------------------------------------------------------- NVIDIA

class NvidiaSource:
    """NVIDIA GPUs through NVML (nvidia-ml-py, imported only here)."""

    FIELDS = ("util", "mem_util", "mem_used", "sm_clock", "power_mw", "temp", "reasons",
              "energy_mj", "proc_mem")

    def __init__(self, pids: Callable[[], set[int]]) -> None:
        self.pids = pids
        self.nvml: Any = None
        self.devices: list[dict[str, Any]] = []
        self.missing: dict[str, str] = {}
        self.selection = ""
        self.reason: str | None = None

    def open(self) -> None:
        try:
            import pynvml
        except ImportError:
            self.reason = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            self.reason = f"NVML did not start ({exc}): no NVIDIA driver or GPU"
            return
        if not count:
            self.reason = "NVML found no NVIDIA GPU"
            return
        self.nvml = pynvml
        self.devices = self._select([self._device(i) for i in range(count)])

    def _device(self, index: int) -> dict[str, Any]:
        nv = self.nvml
        h = nv.nvmlDeviceGetHandleByIndex(index)
        dev = {"index": index, "handle": h, "name": self._get("name", nv.nvmlDeviceGetName, h),
               "uuid": self._get("uuid", nv.nvmlDeviceGetUUID, h)}
        dev["max_sm_clock_mhz"] = self._get("max_sm_clock", nv.nvmlDeviceGetMaxClockInfo, h,
                                            nv.NVML_CLOCK_SM)
        dev["power_limit_w"] = _scale(self._get("power_limit", nv.nvmlDeviceGetEnforcedPowerLimit,
                                                h), 1e-3)
        return dev

    def _select(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The devices running the benchmark process, else all of them (said so)."""
        pids = self.pids()
        mine = [d for d in devices if self._proc_mem(d["handle"], pids) is not None]
        if mine:
            self.selection = "devices where NVML lists the benchmark process"
            return mine
        self.selection = ("every device: NVML does not list the benchmark process on any "
                          "(CPU-only case, or another PID namespace)")
        return devices

    def _get(self, field: str, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args), or None with the reason kept once per field."""
        if field in self.missing:
            return None
        try:
            return fn(*args)
        except self.nvml.NVMLError as exc:
            self.missing[field] = str(exc)
            return None

    def _proc_mem(self, handle: Any, pids: set[int]) -> int | None:
        """Device memory of the benchmark processes on this device; None if not listed."""
        procs = self._get("proc_mem", self.nvml.nvmlDeviceGetComputeRunningProcesses, handle)
        ours = [p for p in procs or [] if p.pid in pids]
        if not ours:
            return None
        used = [p.usedGpuMemory for p in ours]
        return sum(used) if all(u is not None for u in used) else -1   # -1: listed, no figure

    def read(self) -> list[dict[str, Any]] | None:
        if self.nvml is None:
            return None
        return [self._read_device(d) for d in self.devices]

    def _read_device(self, d: dict[str, Any]) -> dict[str, Any]:
        nv, h = self.nvml, d["handle"]
        util = self._get("util", nv.nvmlDeviceGetUtilizationRates, h)
        mem = self._get("mem_used", nv.nvmlDeviceGetMemoryInfo, h)
        return {
            "util": util.gpu if util else None, "mem_util": util.memory if util else None,
            "mem_used": mem.used if mem else None,
            "sm_clock": self._get("sm_clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            "power_mw": self._get("power_mw", nv.nvmlDeviceGetPowerUsage, h),
            "temp": self._get("temp", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            "reasons": self._reasons(h),
            "energy_mj": self._get("energy_mj", nv.nvmlDeviceGetTotalEnergyConsumption, h),
            "proc_mem": self._proc_mem(h, self.pids()),
        }

    def _reasons(self, h: Any) -> int | None:
        """Clock event reasons (driver >= 535) or, on older drivers, throttle reasons."""
        if "reasons_v2" not in self.missing:
            v = self._get("reasons_v2", self.nvml.nvmlDeviceGetCurrentClocksEventReasons, h)
            if v is not None:
                return v
        return self._get("reasons", self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons, h)

    def close(self, t: float) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except self.nvml.NVMLError:
                pass

    def summarize(self, span: Span) -> dict[str, Any]:
        if self.reason:
            return {"unavailable": self.reason}
        rows = span.of("nvidia")
        if len(rows) < 2:
            return {"unavailable": "fewer than two NVML readings in the window"}
        devices = [self._device_summary(d, [r[i] for r in rows], span)
                   for i, d in enumerate(self.devices)]
        energy = [d["energy_j"] for d in devices]
        total = sum(energy) if all(e is not None for e in energy) else None
        missing = {k: v for k, v in self.missing.items() if k != "reasons_v2" or
                   "reasons" in self.missing}
        return {"devices": devices, "selection": self.selection, **span.per_token(total),
                "missing": missing}

    def _device_summary(self, d: dict[str, Any], rows: list[dict[str, Any]],
                        span: Span) -> dict[str, Any]:
        col = {f: [r[f] for r in rows if r[f] is not None] for f in self.FIELDS}
        busy = [r["sm_clock"] for r in rows if r["sm_clock"] is not None
                and not (r["reasons"] or 0) & 0x1 and (r["util"] or 0) > 0]
        seen: dict[str, int] = {}
        for mask in col["reasons"]:
            for name in decode_reasons(mask):
                seen[name] = seen.get(name, 0) + 1
        joules, method = _gpu_energy(col["energy_mj"], rows, span)
        return {
            "index": d["index"], "name": d["name"], "uuid": d["uuid"],
            "util_percent": _stats(col["util"]), "memory_util_percent": _stats(col["mem_util"]),
            "memory_used_bytes": _stats(col["mem_used"]),
            "sm_clock_mhz": _stats(col["sm_clock"]), "sm_clock_busy_mhz": _stats(busy),
            "max_sm_clock_mhz": d["max_sm_clock_mhz"], "power_limit_w": d["power_limit_w"],
            "power_w": _stats([p / 1000 for p in col["power_mw"]]),
            "temperature_c": _stats(col["temp"]),
            "clock_event_reasons": seen, "samples": len(rows),
            "process_memory_bytes": max(col["proc_mem"], default=None),
            "energy_j": joules, "energy_method": method,
        }


def _gpu_energy(counter: list[int], rows: list[dict[str, Any]], span: Span
                ) -> tuple[float | None, str]:
    """Joules from the board's energy counter, else from the power samples."""
    if len(counter) == len(rows) and len(counter) >= 2:
        return (counter[-1] - counter[0]) / 1000, "board energy counter (NVML, mJ)"
    power = [r["power_mw"] for r in rows if r["power_mw"] is not None]
    if len(power) >= 2:
        return (sum(power) / len(power) / 1000 * span.seconds,
                "mean of the power samples x window (no energy counter)")
    return None, "no energy counter and no power samples"


def gpu_memory(nvidia: dict[str, Any] | None, span: Span) -> dict[str, Any]:
    """Peak device memory of the case: per process where NVML gives it, else the device's
    used memory and its rise from the reading before the case (all processes)."""
    if not nvidia or "unavailable" in nvidia:
        return {"unavailable": (nvidia or {}).get("unavailable", "no GPU source")}
    devices = nvidia["devices"]
    per_proc = [d["process_memory_bytes"] for d in devices]
    if per_proc and all(p is not None and p >= 0 for p in per_proc):
        return {"peak_bytes": sum(per_proc),
                "method": "NVML per-process used memory, peak of the samples"}
    before = span.before.get("nvidia") or []
    used_before = sum(r["mem_used"] or 0 for r in before)
    peak = sum((d["memory_used_bytes"] or {}).get("max", 0) for d in devices)
    return {"peak_bytes": peak, "before_bytes": used_before, "delta_bytes": peak - used_before,
            "method": "device used memory (all processes on the device), peak of the "
                      "samples; delta from the reading before the case"}


def _scale(v: float | None, k: float) -> float | None:
    return None if v is None else v * k


# --------------------------------------------------------------------------- RAPL

class RaplSource:
    """Linux powercap RAPL zones: cumulative energy counters, unwrapped at each reading."""

    def __init__(self, root: str | os.PathLike[str] = RAPL_ROOT) -> None:
        self.root = Path(root)
        self.zones: list[dict[str, Any]] = []
        self.reason: str | None = None
        self._last: dict[str, int] = {}
        self._offset: dict[str, int] = {}

    def open(self) -> None:
        self.zones, self.reason = rapl_zones(self.root)

    def read(self) -> dict[str, int] | None:
        if self.reason:
            return None
        out = {}
        for z in self.zones:
            try:
                raw = int((z["path"] / "energy_uj").read_text())
            except (OSError, ValueError):
                return None
            out[z["id"]] = self._unwrap(z, raw)
        return out

    def _unwrap(self, z: dict[str, Any], raw: int) -> int:
        """The counter made monotonic: a smaller value than the last one has wrapped at
        max_energy_range_uj (readings come far faster than a wrap: a 262 kJ range lasts
        over 40 minutes at 100 W)."""
        key = z["id"]
        last = self._last.get(key)
        if last is not None and raw < last and z["max_range_uj"]:
            self._offset[key] = self._offset.get(key, 0) + z["max_range_uj"]
        self._last[key] = raw
        return raw + self._offset.get(key, 0)

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        if self.reason:
            return {"unavailable": self.reason}
        rows = span.of("rapl")
        if len(rows) < 2:
            return {"unavailable": "fewer than two RAPL readings in the window"}
        zones = [{"zone": z["id"], "name": z["name"],
                  "energy_j": (rows[-1][z["id"]] - rows[0][z["id"]]) / 1e6}
                 for z in self.zones]
        packages = [z["energy_j"] for z, info in zip(zones, self.zones) if info["package"]]
        return {"zones": zones, "counted": "package zones (core and uncore are inside them; "
                "dram and psys are listed, not added)",
                **span.per_token(sum(packages) if packages else None)}


def rapl_zones(root: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The readable intel-rapl zones under `root` (a /sys/class/powercap tree), or why none."""
    dirs = sorted(p for p in root.glob("intel-rapl:*") if (p / "energy_uj").exists())
    if not dirs:
        return [], f"absent: no intel-rapl:* zone with energy_uj under {root}"
    zones = []
    for d in dirs:
        try:
            int((d / "energy_uj").read_text())
        except PermissionError:
            return [], (f"not readable: permission denied on {d / 'energy_uj'} (root only "
                        "on current kernels; run as root or make it readable)")
        except (OSError, ValueError) as exc:
            return [], f"not readable: {d / 'energy_uj'}: {exc}"
        name = _read_text(d / "name") or d.name
        zones.append({"id": d.name, "path": d, "name": name,
                      "package": d.name.count(":") == 1 and name.startswith("package"),
                      "max_range_uj": _read_int(d / "max_energy_range_uj")})
    return zones, None


def _read_text(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def _read_int(p: Path) -> int | None:
    text = _read_text(p)
    return int(text) if text and text.isdigit() else None


# --------------------------------------------------------------------------- powermetrics

class PowermetricsSource:
    """Apple Silicon power through `powermetrics` (root only), in plist format."""

    def __init__(self, interval_s: float) -> None:
        self.interval_ms = max(int(interval_s * 1000), 10)
        self.reason: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self._reader: threading.Thread | None = None

    def open(self) -> None:
        self.reason = powermetrics_unavailable()
        if self.reason:
            return
        cmd = ["powermetrics", "--samplers", "cpu_power,gpu_power", "-i",
               str(self.interval_ms), "-f", "plist"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read_stream, daemon=True)
        self._reader.start()

    def _read_stream(self) -> None:
        """powermetrics writes one plist per sample, separated by NUL bytes."""
        assert self.proc is not None and self.proc.stdout is not None
        pending = b""
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            docs, pending = split_plist_stream(pending + chunk)
            for doc in docs:
                sample = parse_powermetrics_plist(doc)
                if sample:
                    self.samples.append((time.perf_counter(), sample))

    def read(self) -> None:
        return None

    def close(self, t: float) -> None:
        """Wait (up to three intervals) for the sample that covers `t`, then stop."""
        if self.proc is None:
            return
        deadline = time.perf_counter() + 3 * self.interval_ms / 1000
        while time.perf_counter() < deadline and not any(ts >= t for ts, _ in self.samples):
            time.sleep(self.interval_ms / 4000)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def summarize(self, span: Span) -> dict[str, Any]:
        if self.reason:
            return {"unavailable": self.reason}
        joules = powermetrics_energy(self.samples, span.t0, span.t1)
        if joules is None:
            return {"unavailable": "powermetrics gave no sample covering the window"}
        out = {"energy_by_unit_j": joules, "counted": "combined (CPU + GPU + ANE)"}
        return {**out, **span.per_token(joules.get("combined"))}


def powermetrics_unavailable() -> str | None:
    """Why powermetrics cannot be run here, or None."""
    if sys.platform != "darwin":
        return f"not macOS ({sys.platform}): powermetrics is Apple's tool"
    if shutil.which("powermetrics") is None:
        return "powermetrics not found on PATH"
    if os.geteuid() != 0:
        return "powermetrics needs root: run benchkit with sudo to measure Apple Silicon power"
    return None


def split_plist_stream(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete plist documents of a powermetrics stream, and the unfinished rest."""
    *docs, rest = data.split(b"\x00")
    return [d.strip() for d in docs if d.strip()], rest


_POWER_KEYS = {"cpu": "cpu_power", "gpu": "gpu_power", "ane": "ane_power",
               "combined": "combined_power"}


def parse_powermetrics_plist(doc: bytes) -> dict[str, Any] | None:
    """One sample: its elapsed seconds and power in W per unit (CPU, GPU, ANE, combined).

    Apple Silicon's plist puts cpu_power / gpu_power / ane_power / combined_power (mW)
    in `processor`; gpu_power may also be in `gpu`. combined is summed when absent.
    """
    import plistlib

    try:
        d = plistlib.loads(doc)
    except Exception:  # noqa: BLE001 - plistlib raises several types on a broken document
        return None
    proc, gpu = d.get("processor") or {}, d.get("gpu") or {}
    watts = {}
    for unit, key in _POWER_KEYS.items():
        v = proc.get(key, gpu.get(key) if unit == "gpu" else None)
        if isinstance(v, (int, float)):
            watts[unit] = v / 1000
    if "combined" not in watts and watts:
        watts["combined"] = sum(watts.get(u, 0.0) for u in ("cpu", "gpu", "ane"))
    elapsed = d.get("elapsed_ns")
    if not watts or not isinstance(elapsed, int):
        return None
    return {"elapsed_s": elapsed / 1e9, "watts": watts}


_TEXT_SAMPLE = re.compile(r"\*\*\* Sampled system activity .*?\(([\d.]+)\s*ms elapsed\)")
_TEXT_POWER = re.compile(r"^(CPU|GPU|ANE|Combined) Power(?: \([^)]*\))?:\s*([\d.]+)\s*mW",
                         re.MULTILINE)


def parse_powermetrics_text(text: str) -> list[dict[str, Any]]:
    """Samples of powermetrics' default text output (same shape as the plist parser's);
    a unit's first power line in a sample counts (GPU Power is printed twice)."""
    heads = list(_TEXT_SAMPLE.finditer(text))
    out = []
    for i, head in enumerate(heads):
        body = text[head.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        watts: dict[str, float] = {}
        for unit, mw in _TEXT_POWER.findall(body):
            watts.setdefault(unit.lower(), float(mw) / 1000)
        if watts:
            out.append({"elapsed_s": float(head.group(1)) / 1000, "watts": watts})
    return out


def powermetrics_energy(samples: list[tuple[float, dict[str, Any]]], t0: float,
                        t1: float) -> dict[str, float] | None:
    """Joules per unit in [t0, t1]: each sample's power times the part of its interval
    (ending at its arrival time) that lies in the window."""
    joules: dict[str, float] = {}
    covered = 0.0
    for t, s in samples:
        overlap = min(t, t1) - max(t - s["elapsed_s"], t0)
        if overlap <= 0:
            continue
        covered += overlap
        for unit, w in s["watts"].items():
            joules[unit] = joules.get(unit, 0.0) + w * overlap
    return joules if covered > 0 else None


# --------------------------------------------------------------------------- warnings

def warnings(telemetry: dict[str, Any] | None) -> list[str]:
    """Dropped SM clocks (busy samples below 90% of the window's maximum) and reported
    throttling, one line per GPU and kind."""
    nv = (telemetry or {}).get("nvidia") or {}
    out = []
    for d in nv.get("devices") or []:
        who = f"GPU {d['index']} ({d.get('name') or '?'})"
        clock = d.get("sm_clock_busy_mhz")
        if clock and clock["max"] and clock["min"] < CLOCK_DROP_SHARE * clock["max"]:
            out.append(f"{who}: SM clock dropped to {clock['min']:,.0f} MHz from "
                       f"{clock['max']:,.0f} MHz during the case (below "
                       f"{CLOCK_DROP_SHARE:.0%} of its maximum, busy samples)")
        hits = {k: n for k, n in (d.get("clock_event_reasons") or {}).items() if k in THROTTLING}
        if hits:
            listed = ", ".join(f"{k} ({n} of {d['samples']} samples)" for k, n in hits.items())
            out.append(f"{who}: throttling reported during the case: {listed}")
    return out

"""The NVIDIA source (NVML): utilisation, memory, clocks, power, temperature, throttling
and board energy per GPU; the GPU memory summary; the warnings of dropped clocks and
reported throttling."""

from __future__ import annotations

from typing import Any, Callable

from benchkit.run.telemetry.span import Span

CLOCK_DROP_SHARE = 0.9          # SM clock below 90% of its window maximum: a warning

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


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


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
                "total": summed(devices, rows, total), "missing": missing}

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


def summed(devices: list[dict[str, Any]], rows: list[list[dict[str, Any]]],
           total_j: float | None) -> dict[str, Any]:
    """The GPUs together: power and used memory summed sample by sample (a sample counts
    where every GPU gave the figure), the energy, and each GPU's share of it (also set on
    each device as `energy_share`)."""
    def per_sample(key: str, scale: float) -> list[float]:
        return [sum(d[key] for d in r) * scale for r in rows
                if all(d.get(key) is not None for d in r)]

    for d in devices:
        e = d.get("energy_j")
        d["energy_share"] = e / total_j if e is not None and total_j else None
    return {"gpus": len(devices), "power_w": _stats(per_sample("power_mw", 1e-3)),
            "memory_used_bytes": _stats(per_sample("mem_used", 1)),
            "energy_j": total_j, "sum": "per sample, over the GPUs listed in devices"}


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

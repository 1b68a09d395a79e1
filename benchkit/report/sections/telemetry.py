"""Report section: power, energy per token, utilisation and memory of each case.

From `case.telemetry` (benchkit.run.telemetry), beside each figure: the mean power and the
energy per token of the GPU (NVML) and of the CPU (RAPL or powermetrics), the share of
the chip's peak memory bandwidth the decode figure reached (the core report's
`bandwidth()`, reused), utilisation, clocks, temperatures and peak memory; sources that
could not be read are listed once with their reason, and dropped clocks or throttling
are warned about.
"""

from __future__ import annotations

from typing import Any

from benchkit.report.sections import section

NAME = "telemetry"
WHOLE = "whole measurement"     # telemetry.sampler.WHOLE, kept here so reading needs no sampler

SOURCES = {"nvidia": "NVIDIA GPU (NVML)", "rapl": "CPU energy (RAPL)",
           "powermetrics": "Apple Silicon power (powermetrics)"}


@section(NAME, order=30)
def context(df: Any, docs: dict, configs: list) -> dict[str, Any] | None:
    """Rows per configuration and test with telemetry; None when no case has any."""
    from benchkit.run import telemetry
    from benchkit.report.chip_figures import bandwidth
    from benchkit.report.context import case

    shares = {(b["label"], b["test"]): b for b in (bandwidth(configs) or {}).get("rows", [])}
    rows, missing, warned = [], {}, []
    intervals: set[float] = set()
    for c in configs:
        for test, row in c.rows.items():
            tel = case(docs, row).get("telemetry")
            if not isinstance(tel, dict):
                continue
            intervals.add(float(tel.get("interval_s") or 0))
            rows.append(_row(c.label, test, row, tel, shares.get((c.label, test))))
            for key, what in SOURCES.items():
                reason = (tel.get(key) or {}).get("unavailable")
                if reason:
                    missing.setdefault(what, {}).setdefault(str(reason), []).append(
                        f"{c.label}, {test}")
            warned += [{"what": f"{c.label}, {test}", "detail": w}
                       for w in telemetry.warnings(tel)]
    if not rows:
        return None
    return {"rows": rows, "warnings": warned,
            "interval": " / ".join(f"{i * 1000:.0f} ms" for i in sorted(intervals)),
            "unavailable": [{"source": s, "reason": r, "cases": len(cases)}
                            for s, reasons in missing.items() for r, cases in reasons.items()],
            "any_partial_window": any(r["window_note"] for r in rows)}


def _row(label: str, test: str, row: Any, tel: dict[str, Any],
         bw: dict[str, Any] | None) -> dict[str, Any]:
    from benchkit.core.units import fmt_bytes, fmt_tps
    from benchkit.report.context import num

    nv, cpu_energy = tel.get("nvidia") or {}, _cpu_energy(tel)
    devices = nv.get("devices") or []
    mem = tel.get("memory") or {}
    gpu_mem = mem.get("gpu") or {}
    return {
        "label": label, "test": test, "tps": fmt_tps(num(row.get("tps_median"))),
        "gpu_power": _watts(nv.get("power_w_mean")), "gpu_energy": _per_token(nv),
        "cpu_power": _watts(cpu_energy.get("power_w_mean")),
        "cpu_energy": _per_token(cpu_energy), "cpu_source": cpu_energy.get("source", ""),
        "share": bw["share"] if bw and bw.get("peak_gbs") else "—",
        "cpu_util": _pct((tel.get("cpu") or {}).get("percent")),
        "gpu_util": _device_range(devices, "util_percent", "{:.0f}%", "mean"),
        "sm_clock": _device_range(devices, "sm_clock_busy_mhz", "{:,.0f} MHz"),
        "temperature": _device_range(devices, "temperature_c", "{:.0f} °C", "max"),
        "peak_rss": fmt_bytes(mem.get("peak_rss_bytes")) if mem.get("peak_rss_bytes") else "—",
        "peak_gpu": fmt_bytes(gpu_mem.get("peak_bytes")) if gpu_mem.get("peak_bytes") else "—",
        "gpu_mem_note": "device, all processes" if "delta_bytes" in gpu_mem else "",
        "window_note": str(tel.get("window", "")).startswith(WHOLE),
        "seconds": f"{tel.get('window_s') or 0:.1f} s", "samples": tel.get("samples"),
    }


def _cpu_energy(tel: dict[str, Any]) -> dict[str, Any]:
    """The CPU's energy figures: RAPL's package zones, else powermetrics' combined."""
    for key, source in (("rapl", "RAPL"), ("powermetrics", "powermetrics")):
        data = tel.get(key) or {}
        if data.get("energy_j") is not None:
            return {**data, "source": source}
    return {}


def _watts(w: float | None) -> str:
    return "—" if w is None else f"{w:,.1f} W"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}%"


def _per_token(data: dict[str, Any]) -> str:
    """'0.47 J/token (2.1 tokens/J)'."""
    jpt, tpj = data.get("joules_per_token"), data.get("tokens_per_joule")
    if jpt is None:
        return "—"
    return f"{jpt:.3g} J/token ({tpj:,.3g} tokens/J)"


def _device_range(devices: list[dict[str, Any]], key: str, fmt: str,
                  which: str | None = None) -> str:
    """One figure (`which`) or min–max of a per-device statistic; GPUs joined by ' · '."""
    parts = []
    for d in devices:
        s = d.get(key)
        if not s:
            continue
        if which:
            parts.append(fmt.format(s[which]))
        elif round(s["min"]) == round(s["max"]):
            parts.append(fmt.format(s["max"]))
        else:
            parts.append(fmt.format(s["min"]).split(" ")[0] + "–" + fmt.format(s["max"]))
    return " · ".join(parts) or "—"

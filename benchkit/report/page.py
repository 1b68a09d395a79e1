"""The core page's own sections: summary, metrics table, per-workload detail, memory and
placement, environment, methodology, problems.

Each function turns the configurations (`benchkit.report.context`) and the raw result
documents into the rows one part of `templates/report.*.j2` prints; the figures that need
the chip database (achieved bandwidth, projections) are in `benchkit.report.chip_figures`,
the sections beyond the core page in `benchkit.report.sections`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchkit.core.stats import percentile
from benchkit.core.units import fmt_bytes, fmt_mib, fmt_ms, fmt_params, fmt_tps
from benchkit.report.context import (Config, case, clean, common_settings, figure, num, ratio,
                                      spread_text)


def performance(configs: list[Config]) -> list[dict[str, Any]]:
    """Rows of the metrics table: decode and prompt tok/s with spread, speedup."""
    rows = []
    for c in configs:
        base = c.baseline
        dec_x = ratio(c.decode, base.decode if base else None)
        pp_x = ratio(c.prompt, base.prompt if base else None)
        rows.append({
            "label": c.label, "backend": c.backend or "—", "layers": c.layers_text,
            "decode": figure(c.decode, c.synthetic), "prompt": figure(c.prompt, c.synthetic),
            "is_baseline": base is c,
            "speedup_decode": None if dec_x is None else f"{dec_x:.2f}×",
            "speedup_prompt": None if pp_x is None else f"{pp_x:.2f}×",
        })
    return rows


def summary(configs: list[Config], df) -> dict[str, Any]:
    """The headline: the best decode figure, and its speedup over the CPU-only run."""
    with_decode = [c for c in configs if c.decode is not None]
    pool = with_decode or configs
    def headline(c: Config) -> Any:      # rows are pandas Series: no `or` between them
        if with_decode:
            return c.decode
        return c.prompt if c.prompt is not None else next(iter(c.rows.values()))

    best = max(pool, key=lambda c: num(headline(c)["tps_median"]) or 0)
    best_row = headline(best)
    base = best.baseline
    speedup = None
    if base is not None and base is not best and not (best.is_cpu_only and base.is_cpu_only):
        times = ratio(best_row, base.rows.get(best_row["test"]))
        if times is not None:
            speedup = {"ratio": f"{times:.1f}×", "over": base.label,
                       "cpu_only": base.is_cpu_only}
    models = []
    for sha, group in df[df["status"] == "ok"].groupby("model_sha256", sort=False, dropna=False):
        first = group.iloc[0]
        models.append({
            "name": first["model_name"], "quant": clean(first.get("model_quant")) or "—",
            "size": fmt_bytes(num(first.get("model_size_bytes"))),
            "params": fmt_params(num(first.get("model_params"))),
            "arch": clean(first.get("model_arch")) or "—",
            "synthetic": bool(clean(first.get("model_synthetic"))),
            "sha256": clean(sha)})
    devices = list(dict.fromkeys(_hardware_text(r) for _, r in df.iterrows()))
    tests = list(dict.fromkeys(df[df["status"] == "ok"]["test"]))
    return {"best": best.label, "figure": figure(best_row, best.synthetic),
            "on": _hardware_text(best_row), "common": common_settings(configs),
            "baseline": _one_baseline(configs),
            "kind": "decode" if with_decode else "throughput", "speedup": speedup,
            "all_cpu": all(c.is_cpu_only for c in configs),
            "models": models, "hardware": devices, "tests": tests,
            "n_configs": len(configs), "suites": list(dict.fromkeys(df["suite"]))}


def _one_baseline(configs: list[Config]) -> str | None:
    """The label of the configuration every other one is compared with, when there is one."""
    bases = {id(c.baseline): c.baseline for c in configs if c.baseline is not None}
    return next(iter(bases.values())).label if len(bases) == 1 else None


def _hardware_text(row: Any) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda)' or the CPU model for a CPU-only machine."""
    chip = clean(row.get("env_chip_name")) or clean(row.get("env_cpu_model")) or "unknown"
    cores = clean(row.get("env_chip_gpu_cores"))
    backend = clean(row.get("env_backend"))
    text = f"{chip}, {int(cores)} GPU cores" if cores else chip
    return f"{text} ({backend} backend)" if backend else text


def detail(configs: list[Config], docs: dict) -> list[dict[str, Any]]:
    """Per configuration, per test: totals, throughput, latency percentiles, TTFT."""
    out = []
    for c in configs:
        columns = []
        for test, row in c.rows.items():
            raw = case(docs, row)
            its = raw.get("iterations") or []
            tokens = sum(int(i.get("tokens") or 0) for i in its)
            seconds = sum(float(i.get("seconds") or 0.0) for i in its)
            lat = [float(x) for i in its for x in (i.get("token_latencies_s") or [])]
            ttft = [float(i["ttft_s"]) for i in its if i.get("ttft_s") is not None]
            n = len(its)
            columns.append({
                "test": test, "kind": row["workload_kind"], "synthetic": c.synthetic,
                "iterations": n, "warmup": _warmup_text(row),
                "total_tokens": f"{tokens:,}",
                "total_time": f"{seconds:,.3f} s",
                "throughput": fmt_tps(tokens / seconds if seconds else None),
                "median": fmt_tps(num(row.get("tps_median"))),
                "spread": spread_text(row),
                "ci95": _ci_text(row),
                "range": (f"{fmt_tps(num(row.get('tps_min')))} – "
                          f"{fmt_tps(num(row.get('tps_max')))}"),
                "avg_latency": fmt_ms(seconds / tokens if tokens else None),
                "p50": fmt_ms(percentile(lat, 50)), "p90": fmt_ms(percentile(lat, 90)),
                "p99": fmt_ms(percentile(lat, 99)), "latency_tokens": len(lat),
                "ttft": fmt_ms(percentile(ttft, 50)) if ttft else "—",
                "ttft_p90": fmt_ms(percentile(ttft, 90)) if ttft else "—",
                "load": (f"{num(row.get('load_seconds')):.2f} s"
                         if num(row.get("load_seconds")) is not None else "—"),
                "peak_rss": fmt_bytes(num(row.get("peak_rss_bytes"))),
                "warnings": list(raw.get("warnings") or []),
            })
        out.append({"label": c.label, "synthetic": c.synthetic, "columns": columns,
                    "model": c.model_name})
    return out


def _warmup_text(row: Any) -> Any:
    """The warmup as asked, and for `auto` how many it took."""
    asked, used = clean(row.get("warmup")), clean(row.get("warmup_used"))
    if asked == "auto":
        return f"auto, {int(used)} used" if used is not None else "auto"
    return asked


def _ci_text(row: Any) -> str:
    """The 95% CI of the mean; a throughput cannot be negative, so the bound stops at 0."""
    low, high = num(row.get("tps_ci95_low")), num(row.get("tps_ci95_high"))
    if low is None or high is None:
        return "—"
    return f"{fmt_tps(max(low, 0.0))} – {fmt_tps(high)}"


def resources(configs: list[Config], docs: dict) -> list[dict[str, Any]]:
    """Buffers per device and layer placement, as llama.cpp reported them."""
    out = []
    for c in configs:
        placement = None
        for row in c.rows.values():
            placement = case(docs, row).get("placement")
            if placement:
                break
        if not placement:
            continue
        per_device: dict[str, dict[str, float]] = {}
        for buf in placement.get("buffers") or []:
            dev = per_device.setdefault(str(buf.get("device") or "?"), {})
            kind = str(buf.get("kind") or "other")
            dev[kind] = dev.get(kind, 0.0) + float(buf.get("mib") or 0.0)
        devices = [{"device": name, "model": fmt_mib(b.get("model")), "kv": fmt_mib(b.get("kv")),
                    "compute": fmt_mib(b.get("compute")),
                    "total": fmt_mib(sum(b.values()))} for name, b in per_device.items()]
        fa = placement.get("flash_attn")
        out.append({
            "label": c.label, "devices": devices,
            "total": fmt_mib(sum(sum(b.values()) for b in per_device.values()))
            if per_device else None,
            "layers": c.layers_text, "device_list": ", ".join(placement.get("devices") or [])
            or "—",
            "requested": placement.get("n_gpu_layers_requested",
                                       c.engine.get("n_gpu_layers")),
            "flash_attn": "on" if fa is True else "off" if fa is False else "—",
            "device_kind": placement.get("device_kind") or c.device_kind,
            "note": placement.get("note"),
        })
    return out


def placement_notes(configs: list[Config], docs: dict) -> list[str]:
    """What the engine said about placement (e.g. a build without a GPU backend), once each."""
    notes: list[str] = []
    for c in configs:
        for row in c.rows.values():
            note = (case(docs, row).get("placement") or {}).get("note")
            if note and note not in notes:
                notes.append(str(note))
    return notes


def environments(docs: dict) -> list[dict[str, Any]]:
    """One column per run: the machine and the software that produced the figures."""
    out = []
    for file, doc in docs.items():
        env = doc.get("environment") or {}
        chip, cpu, osinfo = env.get("chip") or {}, env.get("cpu") or {}, env.get("os") or {}
        versions = env.get("versions") or {}
        gpus = [f"{g.get('name')}" + (f", {fmt_bytes(g['memory_bytes'])}" if g.get("memory_bytes")
                                      else "") + (f", driver {g['driver']}" if g.get("driver")
                                                  else "") for g in env.get("gpus") or []]
        out.append({
            "run_id": doc.get("run_id"), "file": Path(file).name,
            "chip": f"{chip.get('name') or '—'} ({chip.get('kind') or '?'}"
                    + (f", id {chip['id']})" if chip.get("id") else ")"),
            "gpu_cores": chip.get("gpu_cores") or "—",
            "gpus": "; ".join(gpus) or "none",
            "memory": fmt_bytes(env.get("memory_bytes")),
            "cpu": f"{cpu.get('model') or '—'} ({cpu.get('cores_physical') or '?'} physical / "
                   f"{cpu.get('cores_logical') or '?'} logical cores)",
            "os": " ".join(str(x) for x in (osinfo.get("system"), osinfo.get("release"),
                                            osinfo.get("machine")) if x),
            "backend": env.get("backend") or "—",
            "python": env.get("python") or "—",
            "benchkit": versions.get("benchkit") or doc.get("benchkit_version") or "—",
            "llama_cpp_python": versions.get("llama_cpp_python") or "—",
            "system_info": env.get("llama_cpp_system_info") or "",
            "status": doc.get("status"), "partial": bool(doc.get("partial")),
            "started_at": doc.get("started_at"), "finished_at": doc.get("finished_at"),
            "suite": (doc.get("suite") or {}).get("name"),
            "suite_description": (doc.get("suite") or {}).get("description"),
            "suite_file": (doc.get("suite") or {}).get("file"),
            "command": " ".join(doc.get("command") or []),
        })
    return out


def methodology(df) -> dict[str, Any]:
    """Warmup and iteration counts as run (they may differ between cases)."""
    ok = df[df["status"] == "ok"]
    asked = list(ok["warmup"].dropna()) if "warmup" in ok else []
    warm = sorted({int(w) for w in asked if w != "auto"})
    used = sorted({int(u) for u in ok["warmup_used"].dropna()}) if "warmup_used" in ok else []
    text = _range_text(warm)
    if "auto" in asked:      # warmup: auto, with the counts it took
        auto = f"auto (until the last 3 agreed within 2%; {_range_text(used)} used)"
        text = auto if not warm else f"{text}, or {auto}"
    iters = sorted({int(n) for n in ok["n"].dropna()})
    return {"warmup": text, "iterations": _range_text(iters)}


def _range_text(values: list[int]) -> str:
    if not values:
        return "—"
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def problems(df) -> list[dict[str, str]]:
    """Failed cases and run-level warnings: shown, never hidden."""
    out = []
    for _, row in df.iterrows():
        if row["status"] != "ok":
            out.append({"what": f"{row['test']} (case {row['case_index']}) failed",
                        "detail": str(clean(row.get("error")) or "no error recorded")})
        if clean(row.get("partial")) and row["case_index"] == 0:
            out.append({"what": f"run {row['run_id']} is partial",
                        "detail": f"status {row.get('run_status')}: not every case ran"})
    return out


def case_warnings(configs: list[Config], docs: dict) -> list[dict[str, str]]:
    """Warnings the runner recorded on a case (high spread, throttling), by configuration."""
    out = []
    for c in configs:
        for test, row in c.rows.items():
            for warning in case(docs, row).get("warnings") or []:
                out.append({"what": f"{c.label}, {test}", "detail": str(warning)})
    return out



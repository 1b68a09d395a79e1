"""Serving under load: per engine configuration, how throughput and latency respond as
concurrency (or the request rate) grows, the percentile table, goodput and the knee; what
the server did in each level (its prefix cache, its own metrics, speculative decoding);
and each SLO search with every level it tried.

One group per engine configuration, kind of load (closed loop or open loop) and kind of
traffic (single requests, or conversations), its levels in order of load. Levels whose
requests partly failed are shown with their error counts (their figures cover the
requests that succeeded); levels with no successful request show only the errors. The
knee follows benchkit.workloads.serve.saturation's rule, said under the table; a group
whose levels do not differ in load (conversations reusing and busting the cache at one
concurrency) has none. The server's figures are those of the level's summary
(benchkit.workloads.serve.sessions, .metrics, .speculative): a server without /metrics
says so in place of its figures.
"""

from __future__ import annotations

from typing import Any

from benchkit.workloads.serve import saturation
from benchkit.core.units import fmt_ms, fmt_pct, fmt_tps
from benchkit.report.context import Config, base_key, case, clean
from benchkit.report.sections import section
from benchkit.report import serve_detail

NAME = "serve"


@section(NAME, order=40)
def context(df: Any, docs: dict, configs: list[Config]) -> dict[str, Any] | None:
    """The section's groups and charts, or None when the results hold no serve case."""
    if df is None or len(df) == 0:
        return None
    rows = df[(df["workload_kind"] == "serve") & df["status"].isin(["ok", "failed"])]
    if len(rows) == 0:
        return None
    labels = {base_key(r): c.label for c in configs for r in c.rows.values()}
    groups: dict[tuple, dict[str, Any]] = {}
    searches: list[dict[str, Any]] = []
    for _, row in rows.iterrows():
        raw = case(docs, row)
        summary = raw.get("summary") or {}
        label = labels.get(base_key(row))
        if (raw.get("workload") or {}).get("search"):
            searches.append(serve_detail.search_block(row, raw, label, len(searches)))
            continue
        mode = "concurrency" if summary.get("concurrency") else "rate"
        turns = ((raw.get("workload") or {}).get("sessions") or {}).get("turns")
        key = (base_key(row), mode, turns)
        if key not in groups:
            groups[key] = _group(row, raw, mode, label)
        groups[key]["levels"].append(_level(row, raw, summary, mode))
    out = [_finish(g) for g in groups.values()]
    charts = _charts(out)
    for found in searches:
        charts.update(found.pop("charts"))
    return {"groups": out, "rule": saturation.RULE, "charts": charts, "searches": searches,
            "percentiles": _percentile_method(rows, docs)}


def _group(row: Any, case: dict[str, Any], mode: str, label: str | None) -> dict[str, Any]:
    w = case.get("workload") or {}
    slo = w.get("slo") or None
    engine = case.get("engine") or {}
    args = engine.get("args")
    name = " ".join([str(engine.get("kind") or "?"), *(str(a) for a in args or [])])
    talk = w.get("sessions") or {}
    return {"label": label or f"{name} · {row['model_name']}", "engine": name,
            "model": row["model_name"], "mode": mode,
            "traffic": (f"conversations of {talk['turns']} turns" if talk.get("turns")
                        else None),
            "synthetic": bool(clean(row.get("model_synthetic"))),
            "machine": clean(row.get("env_chip_name")) or clean(row.get("env_cpu_model")),
            "workload": {"prompt": _prompt_text(w), "max_tokens": w.get("max_tokens"),
                         "requests": w.get("requests"), "duration_s": w.get("duration_s"),
                         "bounds": _bounds_text(w),
                         "api": _api(case, w), "warmup": _warmup_text(case)},
            "slo": _slo_text(slo), "levels": []}


def _api(case: dict[str, Any], w: dict[str, Any]) -> str:
    """The API the requests went to, as recorded with them."""
    for it in case.get("iterations") or []:
        if it.get("api"):
            return str(it["api"])
    return f"{w.get('endpoint') or 'native'} endpoint"


def _bounds_text(w: dict[str, Any]) -> str:
    """A level's bounds: its requests, its duration, or both (whichever comes first)."""
    n, d = w.get("requests"), w.get("duration_s")
    parts = [f"{n} requests" if n else None, f"{d:g} s" if d else None]
    text = " or ".join(p for p in parts if p)
    return f"{text} (whichever comes first)" if n and d else text


def _warmup_text(case: dict[str, Any]) -> str:
    n = case.get("warmup_used", case.get("warmup"))
    return f"{n} warmup request{'' if n == 1 else 's'}"


def _prompt_text(w: dict[str, Any]) -> str:
    prompts = w.get("prompts")
    if prompts:
        return f"{prompts.get('count')} prompts from {prompts.get('file')}"
    return f"{w.get('prompt_tokens')}-token synthetic prompts"


def _slo_text(slo: dict[str, Any] | None) -> str | None:
    if not slo:
        return None
    parts = [f"TTFT ≤ {slo['ttft_ms']:g} ms" if "ttft_ms" in slo else None,
             f"TPOT ≤ {slo['tpot_ms']:g} ms" if "tpot_ms" in slo else None]
    return " and ".join(p for p in parts if p)


def _level(row: Any, case: dict[str, Any], s: dict[str, Any], mode: str) -> dict[str, Any]:
    load = s.get("concurrency") if mode == "concurrency" else s.get("rate")
    errors = s.get("errors") or {}
    goodput = s.get("goodput_rps")
    return {
        "load": float(load or 0), "test": row["test"], "status": row["status"],
        "requests": f"{s.get('requests_ok', 0)}/{s.get('requests', 0)}",
        "output_tps_value": s.get("output_tps"), "ttft_p99_value": s.get("ttft_p99_s"),
        "output_tps": fmt_tps(s.get("output_tps")), "input_tps": fmt_tps(s.get("input_tps")),
        "rps": _rate(s.get("requests_per_s")),
        **{k: fmt_ms(s.get(f"{k}_s")) for k in (
            "ttft_p50", "ttft_p90", "ttft_p99", "tpot_p50", "tpot_p99", "itl_p50", "itl_p99",
            "e2e_p50", "e2e_p99")},
        "wall": f"{s['level_s']:,.2f} s" if s.get("level_s") else "—",
        "error_rate": fmt_pct(s.get("error_rate")),
        "errors": ", ".join(f"{k} {n}" for k, n in errors.items()) or "none",
        "goodput": None if goodput is None else (
            f"{_rate(goodput)} ({s.get('slo_met', 0)}/{s.get('requests', 0)} requests)"),
        "bound": serve_detail.bound_text(s),
        "server": serve_detail.server_figures(s),
    }


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


def _finish(g: dict[str, Any]) -> dict[str, Any]:
    """Levels in order of load; the knee and the scaling from the lowest level named."""
    g["levels"].sort(key=lambda lv: lv["load"])
    measured = [saturation.Level(lv["load"], lv["output_tps_value"], lv["ttft_p99_value"])
                for lv in g["levels"] if lv["status"] == "ok"
                and lv["output_tps_value"] is not None and lv["ttft_p99_value"] is not None]
    distinct = len({lv.load for lv in measured}) == len(measured)
    k = saturation.knee(measured)
    g["knee"] = k.text(g["mode"]) if distinct else None
    g["knee_load"] = k.level.load if distinct and k.found and k.level else None
    g["scaling"] = _scaling(measured, g["mode"]) if distinct else None
    g["points"] = [(lv.load, lv.output_tps, lv.ttft_p99_s) for lv in measured]
    g["has_goodput"] = any(lv["goodput"] is not None for lv in g["levels"])
    g["has_server"] = any(lv["server"]["any"] for lv in g["levels"])
    g["server_notes"] = serve_detail.notes(g["levels"])
    return g


def _scaling(levels: list[saturation.Level], mode: str) -> str | None:
    """'output tok/s at c=4 is 2.41× c=1 (312.5 vs 129.6)': what more load bought."""
    if len(levels) < 2:
        return None
    lo, hi = sorted(levels, key=lambda lv: lv.load)[::len(levels) - 1]
    name = "c=" if mode == "concurrency" else "rate "
    if not lo.output_tps:
        return None
    ratio = hi.output_tps / lo.output_tps
    what = ("more requests share each decode step (continuous batching)" if ratio > 1.1
            else "more load bought no throughput")
    return (f"output tok/s at {name}{hi.load:g} is {ratio:.2f}× {name}{lo.load:g} "
            f"({fmt_tps(hi.output_tps)} vs {fmt_tps(lo.output_tps)} tok/s): {what}")


def _charts(groups: list[dict[str, Any]]) -> dict[str, Any]:
    from benchkit.report.charts import serve as charts_serve

    charts: dict[str, Any] = {}
    for mode in ("concurrency", "rate"):
        mine = [g for g in groups if g["mode"] == mode and g["points"]]
        if not mine:
            continue
        what = "concurrency" if mode == "concurrency" else "offered request rate"
        tp = charts_serve.throughput_vs_load(
            [{"label": g["label"], "points": [(p[0], p[1]) for p in g["points"]],
              "knee": g["knee_load"]} for g in mine], mode)
        lat = charts_serve.latency_vs_throughput(
            [{"label": g["label"], "points": g["points"]} for g in mine], mode)
        if tp:
            charts[f"serve-throughput-{mode}"] = {
                "title": f"Output tok/s vs {what}",
                "caption": "every output token of a level over the level's wall time, per "
                           "engine configuration; a ring marks the knee where one was found",
                "svg": tp}
        if lat:
            charts[f"serve-latency-{mode}"] = {
                "title": "p99 time to first token vs output tok/s",
                "caption": "each point is a level (labelled with its load): how much first-"
                           "token latency each gain in throughput costs",
                "svg": lat}
    return charts


def _percentile_method(rows: Any, docs: dict) -> str:
    for _, row in rows.iterrows():
        method = (case(docs, row).get("workload") or {}).get("percentiles")
        if method:
            return method
    return "linear interpolation between closest ranks"

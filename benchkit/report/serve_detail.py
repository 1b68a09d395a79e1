"""What the serve section shows beside its throughput table: the server's own figures per
level (its prefix cache and TTFT by turn, its /metrics, speculative decoding), the bound
that ended each level, and every SLO search with each level it tried and why it passed.

Every figure is one of the level's summary (benchkit.workloads.serve.workload
`level_summary`); what a server did not report is said, never left blank: "not reported"
for a figure its requests did not carry, "no metrics" (with the reason under the table)
for a server without a /metrics benchkit could read.
"""

from __future__ import annotations

from typing import Any

from benchkit.core.units import fmt_ms, fmt_pct, fmt_tps

NO_METRICS = "no metrics"


def server_figures(s: dict[str, Any]) -> dict[str, Any]:
    """One level's server figures as the table prints them."""
    note = s.get("server_metrics_note")
    scraped = not note and any(k.startswith("server_") and k != "server_metrics_note"
                               for k in s)
    out = {
        "cache": _share(s, "cache_hit_rate", "not reported"),
        "cache_turns": _pair(s, "cache_hit_rate_first_turn", "cache_hit_rate_later_turns",
                             fmt_pct),
        "ttft_turns": _pair(s, "ttft_p50_first_turn_s", "ttft_p50_later_turns_s", fmt_ms),
        "kv": _kv(s, note),
        "running": _peak(s, "server_requests_running_max", note),
        "waiting": _peak(s, "server_requests_deferred_max", note),
        "prompt_tokens": _count(s, "server_prompt_tokens", note),
        "cached_tokens": _count(s, "server_cached_prompt_tokens", note),
        "generated": _count(s, "server_generated_tokens", note),
        "acceptance": _share(s, "draft_acceptance", "—"),
        "speedup": _speedup(s),
        "note": note,
        "speculative_note": s.get("speculative_baseline_note"),
        "kv_source": s.get("server_kv_cache_source"),
        "samples": s.get("server_samples"), "period_s": s.get("server_sample_period_s"),
    }
    out["any"] = bool(scraped or note or s.get("cache_hit_rate") is not None
                      or s.get("draft_acceptance") is not None)
    return out


def _share(s: dict[str, Any], key: str, missing: str) -> str:
    return missing if s.get(key) is None else fmt_pct(s[key])


def _pair(s: dict[str, Any], first: str, later: str, fmt: Any) -> str:
    if first not in s and later not in s:
        return "—"
    return f"{fmt(s.get(first))} / {fmt(s.get(later))}"


def _kv(s: dict[str, Any], note: str | None) -> str:
    peak = s.get("server_kv_cache_usage_max")
    if peak is not None:
        return f"{fmt_pct(peak)} peak, {fmt_pct(s.get('server_kv_cache_usage_mean'))} mean"
    if s.get("server_kv_cache_usage") is not None:
        return f"{fmt_pct(s['server_kv_cache_usage'])} after"
    return NO_METRICS if note else "not reported"


def _peak(s: dict[str, Any], key: str, note: str | None) -> str:
    if s.get(key) is None:
        return NO_METRICS if note else "—"
    return f"{s[key]:,.0f}"


def _count(s: dict[str, Any], key: str, note: str | None) -> str:
    if s.get(key) is None:
        return NO_METRICS if note else "—"
    return f"{s[key]:,.0f}"


def _speedup(s: dict[str, Any]) -> str:
    x = s.get("speculative_speedup")
    if x is None:
        return "—"
    base = (s.get("speculative_baseline") or {}).get("output_tps")
    return f"{x:.2f}× ({fmt_tps(s.get('output_tps'))} vs {fmt_tps(base)} tok/s)"


def bound_text(s: dict[str, Any]) -> str | None:
    """How a level bounded by both requests and a duration ended, when its duration did."""
    if s.get("ended_by") != "duration" or not s.get("bound_requests"):
        return None
    return (f"its {s.get('bound_duration_s'):g} s duration ended it after "
            f"{s.get('requests') or 0} of {s['bound_requests']} requests")


def notes(levels: list[dict[str, Any]]) -> list[str]:
    """The lines under a group's server table: why a level has no metrics or no speedup,
    where the KV-cache figure came from, how the peaks were sampled, which bound ended
    a level."""
    out: list[str] = []
    for lv in levels:
        srv = lv["server"]
        if srv["note"]:
            out.append(f"{lv['test']}: {NO_METRICS}: {srv['note']}")
        if srv["speculative_note"]:
            out.append(f"{lv['test']}: {srv['speculative_note']}")
        if lv.get("bound"):
            out.append(f"{lv['test']}: {lv['bound']}")
    sources = {lv["server"]["kv_source"] for lv in levels} - {None}
    out += [f"KV cache use from {src}" for src in sorted(sources)]
    sampled = [lv["server"] for lv in levels if lv["server"]["samples"]]
    if sampled:
        n = [srv["samples"] for srv in sampled]
        out.append(f"Peaks and means: the server's gauges sampled every "
                   f"{sampled[0]['period_s']:g} s while the level ran ({min(n)} to {max(n)} "
                   "samples a level); token counts are its counters' change over the level")
    return out


# --------------------------------------------------------------------------- SLO search

def search_block(row: Any, raw: dict[str, Any], label: str | None, i: int) -> dict[str, Any]:
    """One SLO search: its plan, every level tried in order with why it passed or failed,
    the answer, and its chart."""
    s, w = raw.get("summary") or {}, raw.get("workload") or {}
    plan = w.get("search") or {}
    over = s.get("search_over") or plan.get("over") or "concurrency"
    slo = s.get("search_slo") or w.get("slo") or {}
    tried = s.get("search") or []
    answer = s.get("slo_max_load")
    name = f"serve-search-{i}"
    block = {
        "label": label or f"{(raw.get('engine') or {}).get('kind')} · {row['model_name']}",
        "test": row["test"], "status": row["status"], "over": over, "slo": slo_text(slo),
        "plan": (f"from {plan.get('start', 1):g}, doubled while a level passes up to "
                 f"{plan.get('max', 0):g}, then bisected; at most {plan.get('levels')} levels"),
        "levels": [_tried(k, lv, over) for k, lv in enumerate(tried)],
        "answer": (_load_text(answer, over) if answer is not None
                   else "none: " + str(s.get("slo_max_load_note") or "no level passed")),
        "chart": name, "charts": {},
    }
    from benchkit.report.charts import serve as charts_serve

    svg = charts_serve.search_levels(
        [(float(lv.get(over) or 0), lv.get("ttft_p99_s"), lv.get("tpot_p99_s"),
          bool(lv.get("passed"))) for lv in tried], slo, over, name)
    if svg:
        block["charts"][name] = {
            "title": f"SLO search {row['test']}: p99 latency of each level tried",
            "caption": "each level tried, numbered in the order it ran: a filled dot passed "
                       "the SLO, a cross failed it; the dashed line is the SLO's limit",
            "svg": svg}
    return block


def slo_text(slo: dict[str, Any]) -> str:
    parts = [f"TTFT p99 ≤ {slo['ttft_ms']:g} ms" if "ttft_ms" in slo else None,
             f"TPOT p99 ≤ {slo['tpot_ms']:g} ms" if "tpot_ms" in slo else None,
             f"error rate ≤ {fmt_pct(float(slo.get('error_rate', 0)))}"]
    return ", ".join(p for p in parts if p)


def _load_text(load: float, over: str) -> str:
    return f"concurrency {load:g}" if over == "concurrency" else f"{load:,.3g} requests/s"


def _tried(k: int, lv: dict[str, Any], over: str) -> dict[str, Any]:
    return {"n": k + 1, "load": _load_text(float(lv.get(over) or 0), over),
            "verdict": "pass" if lv.get("passed") else "fail", "why": lv.get("why") or "",
            "requests": f"{lv.get('requests_ok') or 0}/{lv.get('requests') or 0}",
            "ttft_p99": fmt_ms(lv.get("ttft_p99_s")), "tpot_p99": fmt_ms(lv.get("tpot_p99_s")),
            "error_rate": fmt_pct(lv.get("error_rate")),
            "output_tps": fmt_tps(lv.get("output_tps"))}

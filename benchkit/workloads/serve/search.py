"""The highest load that meets an SLO, for the `serve` workload.

```yaml
- serve:
    search: {over: concurrency, max: 16, levels: 6}   # or over: rate (requests/s), start: 0.5
    slo: {ttft_ms: 2000, tpot_ms: 200, error_rate: 0}
    requests: 8
```

One case (`serve-search-c16`, `serve-search-r8`) runs levels one after another: first a
bracket (the start load, 1 by default, then doubled while the level passes, up to
`max`), then a bisection between the highest load that passed and the lowest that failed,
until they are next to each other (concurrency: one apart; rate: within 10 %) or `levels`
levels (8 by default) have run. A level passes when its p99 TTFT and p99 TPOT are within
the SLO's `ttft_ms` / `tpot_ms` and its error rate is at most `error_rate` (0 by
default). The case's summary has `slo_max_load` (the highest load that passed; None when
none did, with the reason), `search` (every level tried, in order, with its figures and
why it passed or failed), and the figures of the answer's level.
"""

from __future__ import annotations

from typing import Any

RATE_PRECISION = 1.10      # bisection on a rate stops when failed / passed is below this
DEFAULT_LEVELS = 8

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["over", "max"],
    "properties": {
        "over": {"enum": ["concurrency", "rate"],
                 "x-error": "must be concurrency or rate: the load searched over"},
        "max": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6,
                "x-error": "must be a number > 0: the highest load tried"},
        "start": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6,
                  "x-error": "must be a number > 0: the first load tried"},
        "levels": {"type": "integer", "minimum": 1, "maximum": 64,
                   "x-error": "must be an integer >= 1: the most levels run"},
    },
    "x-error": "must be a mapping with over: (concurrency or rate) and max:",
}


def next_load(tried: list[tuple[float, bool]], over: str, start: float, maximum: float,
              levels: int) -> float | None:
    """The next load to try after `tried` (load, passed) in order; None when done."""
    if len(tried) >= levels:
        return None
    if not tried:
        return _clip(start, over, maximum)
    passed = [load for load, ok in tried if ok]
    failed = [load for load, ok in tried if not ok]
    lo = max(passed) if passed else None
    hi = min((f for f in failed if lo is None or f > lo), default=None)
    if lo is None:           # even the first load failed: nothing lower is tried
        return None
    if hi is None:           # bracket: double while passing
        if lo >= maximum:
            return None
        return _clip(lo * 2, over, maximum)
    if over == "concurrency":
        if hi - lo <= 1:
            return None
        return float((int(lo) + int(hi)) // 2)
    if hi / lo < RATE_PRECISION:
        return None
    return (lo * hi) ** 0.5      # geometric middle: loads span orders of magnitude


def _clip(load: float, over: str, maximum: float) -> float:
    load = min(load, maximum)
    return float(max(1, int(load))) if over == "concurrency" else load


def verdict(summary: dict[str, Any], slo: dict[str, float]) -> tuple[bool, list[str]]:
    """Whether a level's summary meets the SLO, and one reason per figure compared."""
    why, ok = [], True
    for key, name in (("ttft_ms", "ttft_p99_s"), ("tpot_ms", "tpot_p99_s")):
        if key not in slo:
            continue
        value = summary.get(name)
        if value is None:
            ok = False
            why.append(f"{name[:4].upper()} p99 unknown (no request measured it)")
            continue
        good = value * 1e3 <= slo[key]
        ok = ok and good
        why.append(f"{name[:4].upper()} p99 {value * 1e3:,.1f} ms {'≤' if good else '>'} "
                   f"{slo[key]:g} ms")
    limit = float(slo.get("error_rate", 0.0))
    rate = summary.get("error_rate")
    good = rate is not None and rate <= limit
    ok = ok and good
    why.append(f"error rate {rate if rate is not None else 'unknown'} "
               f"{'≤' if good else '>'} {limit:g}")
    return ok, why


def search_summary(levels: list[tuple[float, dict[str, Any]]], slo: dict[str, float],
                   over: str) -> dict[str, Any]:
    """The search case's own summary keys from its levels (load, level summary) in the
    order they ran."""
    tried, answer = [], None
    for load, summary in levels:
        ok, why = verdict(summary, slo)
        tried.append({over: load, "passed": ok, "why": "; ".join(why),
                      "requests": summary.get("requests"),
                      "requests_ok": summary.get("requests_ok"),
                      "ttft_p99_s": summary.get("ttft_p99_s"),
                      "tpot_p99_s": summary.get("tpot_p99_s"),
                      "error_rate": summary.get("error_rate"),
                      "output_tps": summary.get("output_tps")})
        if ok and (answer is None or load > answer):
            answer = load
    out: dict[str, Any] = {"search_over": over, "search": tried, "search_slo": slo,
                           "search_levels": len(tried),
                           "slo_max_load": int(answer) if answer is not None and
                           over == "concurrency" else answer}
    if answer is None:
        out["slo_max_load_note"] = ("no level tried met the SLO: " + tried[0]["why"]
                                    if tried else "no level ran")
    return out

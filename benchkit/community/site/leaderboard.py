"""The site's leaderboard: one row per measured test of every accepted result, with the
facts a visitor filters on (chip, vendor, model, quantization, engine, test).

The rows are printed into the page (it reads without JavaScript) and exported as
`data/leaderboard.json`; `site.js` sorts, filters and searches them in the browser.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchkit.community.site.entries import Entry, chip_name, short, tps

# The filters, in the order the page shows them: (row key, label).
FILTERS = (("chip", "Chip"), ("vendor", "Vendor"), ("model", "Model"), ("quant", "Quantization"),
           ("engine", "Engine"), ("test", "Test"))


def leaderboard(entries: list[Entry]) -> list[dict[str, Any]]:
    """Every ok case of every entry, fastest first within a test."""
    rows = [_row(e, case) for e in entries for case in e.doc["cases"]
            if case.get("status") == "ok" and case.get("iterations")]
    return sorted(rows, key=lambda r: (r["test"], -r["tps_value"], r["id"]))


def filters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each filter's choices: (value, label) pairs in label order."""
    out = []
    for key, label in FILTERS:
        seen = {r[key]: r.get(f"{key}_label", r[key]) for r in rows}
        out.append({"key": key, "label": label,
                    "options": sorted(seen.items(), key=lambda kv: (str(kv[1]).lower(), kv[0]))})
    return out


def vendor_of(chip: str, doc: dict[str, Any]) -> str:
    """The chip database's vendor, else what the machine reported (cpu for CPU work)."""
    from benchkit.projection.chips import load_chips

    if chip.startswith("cpu-"):
        return "cpu"
    db = load_chips().get(chip)
    if db is not None:
        return db.vendor
    return str((doc["environment"].get("chip") or {}).get("kind") or "unknown")


def _row(e: Entry, case: dict[str, Any]) -> dict[str, Any]:
    values = [float(it["tps"]) for it in case["iterations"]]
    median = statistics.median(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    model = case["model"]
    joules = energy_per_token(case)
    env = e.doc["environment"]
    return {
        "id": e.id, "chip": e.chip, "chip_label": chip_name(e.chip, e.doc),
        "vendor": vendor_of(e.chip, e.doc),
        "backend": "cpu" if e.chip.startswith("cpu-") else str(env.get("backend") or "?"),
        "model": e.model, "model_label": short(str(model.get("name") or e.model)),
        "synthetic": bool(model.get("synthetic")),
        "quant": str(model.get("quantization") or "?"),
        "engine": str((case.get("engine") or {}).get("kind") or "?"),
        "test": str(case["test"]), "tps_value": round(median, 4), "tps": tps(median),
        "spread": f"± {tps(sd)}", "n": len(values),
        "joules_value": None if joules is None else round(joules, 6),
        "joules": "—" if joules is None else f"{joules:.3g} J",
        "date": str(e.doc.get("started_at") or "")[:10],
    }


def energy_per_token(case: dict[str, Any]) -> float | None:
    """Joules per token of what did the work, where the run measured it: the GPU's board
    energy (NVML) for a case on an NVIDIA GPU, else the CPU package (RAPL) or, on Apple
    Silicon, powermetrics' CPU + GPU + ANE."""
    from benchkit.results.facts import ran_on_gpu

    tel = case.get("telemetry") or {}
    order = ("nvidia", "powermetrics", "rapl") if ran_on_gpu(case) else ("rapl", "powermetrics")
    for source in order:
        value = (tel.get(source) or {}).get("joules_per_token")
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def export(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as data/leaderboard.json holds them: figures as numbers, names as ids."""
    keys = ("id", "chip", "chip_label", "vendor", "backend", "model", "model_label",
            "synthetic", "quant", "engine", "test", "n", "date")
    return [{**{k: r[k] for k in keys}, "tps_median": r["tps_value"],
             "joules_per_token": r["joules_value"]} for r in rows]

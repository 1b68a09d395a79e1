"""The site's per-model blocks: each chip that ran the model with its pooled figures, the
decode figure the projection gives it from the other chips' measurements, and the facts
the projection explorer needs to offer the model."""

from __future__ import annotations

import statistics
from typing import Any

from benchkit.community.site import charts
from benchkit.community.site.entries import (Entry, by, case_of, chip_name, device_label, fig,
                                             pooled, short, test_name, tps)
from benchkit.core.units import fmt_bytes


def models_of(entries: list[Entry]) -> list[dict[str, Any]]:
    """One block per model: its measured rows (one per chip), each with its held-out
    projection, and a chart of the measured decode figures."""
    from benchkit.community.site.projection import held_out

    out = []
    for slug_, mine in by(entries, lambda e: e.model).items():
        model = case_of(mine[0].doc, None)["model"]
        rows = [_chip_row(chip, group) for chip, group in by(mine, lambda e: e.chip).items()]
        held_out(rows, model)
        for row in rows:
            _error_text(row)
        name = str(model.get("name") or slug_)
        out.append({
            "slug": slug_, "name": name, "short": short(name),
            "quant": model.get("quantization") or "?",
            "size": fmt_bytes(model.get("size_bytes")),
            "sha256": str(model.get("sha256") or ""),
            "synthetic": bool(model.get("synthetic")),
            "suites": sorted({str(e.doc["suite"]["name"]) for e in mine}),
            "tg_test": test_name(mine, "tg"), "pp_test": test_name(mine, "pp"),
            "rows": rows, "n_results": len(mine),
            "chart": charts.bars([{"label": r["chip_name"], "value": r["tg_value"],
                                   "low": r["tg_min"], "high": r["tg_max"]} for r in rows],
                                 "decode tok/s, median of every timed iteration; "
                                 "whiskers: slowest to fastest"),
        })
    return out


def explorer_measured(models: list[dict[str, Any]], entries: list[Entry]) -> list[dict[str, Any]]:
    """The measured models as the explorer offers them: key, label, sha256, quantization,
    and how many accepted GPU results each chip of the database has of it."""
    from benchkit.projection.chips import load_chips
    from benchkit.results.facts import ran_on_gpu

    known = load_chips()
    out = []
    for m in models:
        chips: dict[str, int] = {}
        for e in entries:
            if e.model == m["slug"] and e.chip in known and any(
                    ran_on_gpu(c) for c in e.doc["cases"]):
                chips[e.chip] = chips.get(e.chip, 0) + 1
        out.append({"key": f"measured-{m['slug']}", "label": f"{m['short']} (measured)",
                    "sha256": m["sha256"], "quant": m["quant"], "chips": chips})
    return out


def _chip_row(chip: str, group: list[Entry]) -> dict[str, Any]:
    tg, pp = pooled(group, "tg"), pooled(group, "pp")
    first = group[0]
    return {"chip": chip, "chip_name": chip_name(chip, first.doc),
            "device": device_label(first.doc), "tg": fig(tg), "pp": fig(pp),
            "tg_value": statistics.median(tg) if tg else None,
            "pp_value": statistics.median(pp) if pp else None,
            "tg_min": min(tg) if tg else None, "tg_max": max(tg) if tg else None,
            "n_submissions": len(group), "projected": None, "error_note":
                "the chip is not in benchkit's chip database, or did not run on its GPU"}


def _error_text(row: dict[str, Any]) -> None:
    """The held-out projection as the page prints it: figure, range and error."""
    got = row.pop("projected")
    row["projected"] = row["projected_range"] = row["error"] = None
    if got and row["tg_value"]:
        mid, low, high = got
        row["projected"] = tps(mid)
        row["projected_range"] = f"{tps(low)}–{tps(high)}"
        row["error"] = f"{mid / row['tg_value'] - 1:+.0%}"

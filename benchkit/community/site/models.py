"""The site's per-model blocks: the index row of each chip that ran the model, and the
projection table of the chips nobody measured."""

from __future__ import annotations

import statistics
from typing import Any

from benchkit.community.site.entries import (Entry, by, case_of, chip_name, device_label, fig,
                                             pooled, short, test_name, tps)
from benchkit.core.errors import BenchkitError
from benchkit.core.units import fmt_bytes


# --- the index and the projection, per model ---------------------------------------------


def models_of(entries: list[Entry]) -> list[dict[str, Any]]:
    """One block per model: its measured rows (one per chip) and its projection table."""
    out = []
    for slug_, mine in by(entries, lambda e: e.model).items():
        model = case_of(mine[0].doc, None)["model"]
        groups = by(mine, lambda e: e.chip)
        rows = [_index_row(chip, group) for chip, group in groups.items()]
        block = {
            "slug": slug_, "name": str(model.get("name") or slug_),
            "short": short(str(model.get("name") or slug_)),
            "quant": model.get("quantization") or "?",
            "size": fmt_bytes(model.get("size_bytes")),
            "sha256": (str(model.get("sha256") or "")[:16] + "…") if model.get("sha256") else "",
            "synthetic": bool(model.get("synthetic")),
            "suites": sorted({str(e.doc["suite"]["name"]) for e in mine}),
            "tg_test": test_name(mine, "tg"), "pp_test": test_name(mine, "pp"),
            "rows": rows,
        }
        _add_projection(block, rows, model)
        block["chart"] = _chart(rows)
        out.append(block)
    return out


def _index_row(chip: str, group: list[Entry]) -> dict[str, Any]:
    tg, pp = pooled(group, "tg"), pooled(group, "pp")
    first = group[0]
    return {"chip": chip, "chip_name": chip_name(chip, first.doc),
            "device": device_label(first.doc), "tg": fig(tg), "pp": fig(pp),
            "tg_value": statistics.median(tg) if tg else None,
            "pp_value": statistics.median(pp) if pp else None,
            "tg_min": min(tg) if tg else None, "tg_max": max(tg) if tg else None,
            "n_submissions": len(group), "model": case_of(first.doc, None)["model"],
            "projected": None, "projected_range": None, "error": None, "error_note": ""}


def _add_projection(block: dict[str, Any], rows: list[dict[str, Any]],
                    model: dict[str, Any]) -> None:
    """The projection table (calibrated on every measured chip in the database) and, per
    measured chip, the figure projected from the OTHER chips with its error."""
    from benchkit.projection.chips import load_chips

    known = load_chips()
    anchors = [r for r in rows if r["chip"] in known and r["tg_value"]]
    block["no_projection_note"] = (
        "the chip is not in benchkit's chip database, or no other chip in it has measured "
        "this model yet")
    if not anchors:
        block["projection"] = {"rows": [], "reason": "no chip in benchkit's database has "
                               "measured this model yet (CPU results cannot calibrate a GPU "
                               "projection). Submit a GPU or Apple Silicon result."}
        return
    try:
        table = _project(anchors, model, known, chips="all")
    except BenchkitError as exc:           # e.g. figures the projection cannot use
        block["projection"] = {"rows": [], "reason": f"the projection refused these "
                               f"measurements: {exc.message}"}
        return
    measured = {r["chip"]: r for r in rows}
    block["projection"] = {
        "method": "roofline", "n_anchors": len(anchors),
        "anchors": ", ".join(r["chip_name"] for r in anchors),
        "rows": [_projection_row(p, measured.get(p["chip"])) for p in table]}
    for row in anchors:
        others = [r for r in anchors if r is not row]
        if not others:
            row["error_note"] = "needs a measurement of this model on another chip"
            continue
        try:
            got = _project(others, model, known, chips=[row["chip"]])[0]
        except BenchkitError as exc:
            row["error_note"] = exc.message
            continue
        if got.get("tg_tps"):
            row["projected"] = tps(got["tg_tps"])
            row["projected_range"] = f"{tps(got['tg_low'])}–{tps(got['tg_high'])}"
            row["error"] = f"{got['tg_tps'] / row['tg_value'] - 1:+.0%}"
            row["error_note"] = "projected from the other chips' measurements"


def _project(rows: list[dict[str, Any]], model: dict[str, Any], known: dict[str, Any],
             chips: Any) -> list[dict[str, Any]]:
    from benchkit.projection.api import project
    from benchkit.projection.measurements import Measurement

    ms = [Measurement(chip_id=r["chip"], tg_tps=r["tg_value"], pp_tps=r["pp_value"],
                      model_bytes=model.get("size_bytes"), n_layers=model.get("n_layers"),
                      n_params=model.get("n_params"), source="community results",
                      model_key=model.get("sha256"), model_name=model.get("name"))
          for r in rows]
    return project(ms, method="roofline", model_bytes=model.get("size_bytes"),
                   n_layers=model.get("n_layers"), chips=chips)


def _projection_row(p: dict[str, Any], measured: dict[str, Any] | None) -> dict[str, Any]:
    status = {"not tested": "Not tested", "does not fit": "Does not fit in memory"}.get(
        p["status"], p["status"])
    if measured:
        status = f"✅ Measured {tps(measured['tg_value'])} tok/s"
    return {"chip": p["chip"], "name": p.get("label") or p["name"],
            "gpu_cores": p.get("gpu_cores") or "—",
            "bandwidth": f"{p['bandwidth_gbs']:,.0f} GB/s" if p.get("bandwidth_gbs") else "—",
            "tg": tps(p.get("tg_tps")),
            "tg_range": (f"{tps(p['tg_low'])}–{tps(p['tg_high'])}"
                         if p.get("tg_low") and p.get("tg_high") else ""),
            "pp": tps(p.get("pp_tps")), "measured": measured is not None, "status": status}


def _chart(rows: list[dict[str, Any]]) -> str:
    """Measured decode tok/s per chip as an inline SVG bar chart (min-max whiskers).

    Hand-written SVG rather than matplotlib's: its output carries ids and metadata that
    would make the bytes differ between builds.
    """
    from markupsafe import Markup, escape

    data = [r for r in rows if r["tg_value"]]
    if not data:
        return ""
    top = max(r["tg_max"] for r in data) or 1.0
    label_w, bar_w, h = 200, 360, 26
    height = h * len(data) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 90} '
             f'{height}" width="{label_w + bar_w + 90}" height="{height}" role="img" '
             f'aria-label="measured decode tok/s per chip">']
    for i, r in enumerate(data):
        y = 10 + i * h
        w = bar_w * r["tg_value"] / top
        lo, hi = bar_w * r["tg_min"] / top, bar_w * r["tg_max"] / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f'{escape(r["chip_name"])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" fill="#0072b2"/>'
            f'<line x1="{label_w + lo:.1f}" x2="{label_w + hi:.1f}" y1="{y + 11}" '
            f'y2="{y + 11}" stroke="#1b1f24" stroke-width="1.5"/>'
            f'<text x="{label_w + max(w, hi) + 6:.1f}" y="{y + 15}" font-size="12">'
            f'{tps(r["tg_value"])}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 4}" font-size="11" fill="#57606a">'
                 'tok/s (median of every timed iteration)</text></svg>')
    return Markup("".join(parts))

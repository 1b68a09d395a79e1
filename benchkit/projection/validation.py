"""Validation: project every measured chip from every other chip measured on the same model
at the same depth, and score both methods against what was measured."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from benchkit.projection.api import check_measurements, project
from benchkit.projection.chips import get_chip, load_chips
from benchkit.projection.measurements import Measurement, same_case
from benchkit.projection.priors import Priors, load_priors
from benchkit.projection.shapes import GB


def _model_label(m: Measurement) -> str:
    label = m.model_name or (f"{m.model_bytes / GB:.2f} GB model" if m.model_bytes else "model")
    return f"{label} @ d{m.depth}" if m.depth else label


def validate(measurements: Iterable[Measurement], *,
             methods: Sequence[str] = ("bandwidth", "roofline"),
             anchors: Iterable[str] | None = None,
             priors: Priors | None = None,
             targets: Iterable[str] | None = None) -> dict[str, Any]:
    """Project from each anchor chip onto every other chip measured on the same model.

    Each anchor is calibrated on its own measurements only (all its model sizes), so every
    comparison is out of sample for the calibration (whether the priors saw the target is
    the caller's business: scripts/projection_accuracy.py refits them without it). Returns
    the pairs with their errors (projected / measured - 1), per-chip mean absolute errors
    and the mean absolute percentage error per method.
    """
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = check_measurements(measurements, all_chips)
    wanted = set(targets) if targets is not None else None
    anchor_ids = list(dict.fromkeys(anchors)) if anchors else list(
        dict.fromkeys(m.chip_id for m in ms))
    pairs = []
    for anchor_id in anchor_ids:
        anchor = get_chip(anchor_id, all_chips).id
        own = [m for m in ms if m.chip_id == anchor]
        for base in own:
            others = [m for m in ms if m.chip_id != base.chip_id and same_case(m, base)
                      and (wanted is None or m.chip_id in wanted)]
            if not others:
                continue
            calib = [base] + [m for m in own if m is not base]
            chip_ids = list(dict.fromkeys(m.chip_id for m in others))
            projected = {meth: {r["chip"]: r for r in project(
                calib, method=meth, chips=chip_ids, priors=priors)} for meth in methods}
            for other in others:
                pairs.append(_pair(base, other, projected, methods))
    return {"pairs": pairs, "methods": list(methods), "per_chip": _per_chip(pairs, methods),
            "mape": {meth: {kind: _mape([p[meth][f"{kind}_error"] for p in pairs])
                            for kind in ("tg", "pp")} for meth in methods}}


def _pair(base: Measurement, other: Measurement, projected: dict[str, dict[str, Any]],
          methods: Sequence[str]) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "anchor": base.chip_id, "chip": other.chip_id, "model": _model_label(base),
        "depth": base.depth, "measured_tg": other.tg_tps, "measured_pp": other.pp_tps,
        "source": other.source}
    for meth in methods:
        row = projected[meth][other.chip_id]
        pair[meth] = {
            "tg": row["tg_tps"], "tg_low": row["tg_low"], "tg_high": row["tg_high"],
            "pp": row["pp_tps"], "pp_low": row["pp_low"], "pp_high": row["pp_high"],
            "tg_error": _err(row["tg_tps"], other.tg_tps),
            "pp_error": _err(row["pp_tps"], other.pp_tps)}
    return pair


def _err(projected: float | None, measured: float | None) -> float | None:
    return projected / measured - 1 if projected and measured else None


def _mape(errors: Iterable[float | None]) -> float | None:
    errs = [abs(e) for e in errors if e is not None]
    return sum(errs) / len(errs) if errs else None


def _per_chip(pairs: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chip in dict.fromkeys(p["chip"] for p in pairs):
        mine = [p for p in pairs if p["chip"] == chip]
        out[chip] = {meth: {kind: _mape([p[meth][f"{kind}_error"] for p in mine])
                            for kind in ("tg", "pp")} for meth in methods}
        out[chip]["n"] = len(mine)
    return out

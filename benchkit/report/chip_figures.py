"""The figures that need the chip database: achieved memory bandwidth against the chip's
peak, and projected throughput on other chips.

Where a figure cannot be known (a CPU's peak bandwidth, a chip missing from the database)
the section says so in a note instead of inventing one.
"""

from __future__ import annotations

from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.core.units import fmt_bytes, fmt_pct, fmt_tps
from benchkit.report.context import Config, clean, num

SIZES_B = (1, 3, 7, 13, 70)        # the reference page's model-size table
SIZE_QUANT = "Q4_K_M"


def bandwidth(configs: list[Config]) -> dict[str, Any] | None:
    """Achieved bandwidth = model bytes × decode tok/s, as a share of the chip's peak.

    The model file size stands for the bytes read per generated token; KV-cache reads
    make the true figure a little higher, so this is a lower bound.
    """
    chips = _chips_module()
    rows = []
    for c in configs:
        row = c.decode
        if row is None or row["workload_kind"] != "tg" or not c.model_bytes:
            continue
        tps = num(row.get("tps_median"))
        if not tps:
            continue
        achieved = c.model_bytes * tps / 1e9
        peak, peak_note = _peak(chips, c)
        rows.append({
            "label": c.label, "test": row["test"], "synthetic": c.synthetic,
            "model_size": fmt_bytes(c.model_bytes), "tps": fmt_tps(tps),
            "n": int(clean(row.get("n")) or 0),
            "achieved_gbs": achieved, "achieved": f"{achieved:,.1f} GB/s",
            "peak_gbs": peak, "peak": f"{peak:,.0f} GB/s" if peak else "unknown",
            "share": fmt_pct(achieved / peak) if peak else "—", "note": peak_note,
        })
    return {"rows": rows} if rows else None


def _chips_module():
    """benchkit.projection.chips when installed; the report degrades to notes without it."""
    try:
        from benchkit.projection import chips
    except ImportError:
        return None
    return chips


def _peak(chips, c: Config) -> tuple[float | None, str]:
    """The peak memory bandwidth of the device that did the work, and why if unknown."""
    if c.is_cpu_only:
        return None, ("CPU run: the peak bandwidth of this machine's memory is not in the "
                      "chip database")
    if chips is None:
        return None, "chip database not available in this installation"
    if not c.device_id:
        return None, "the result does not name the device's chip id"
    try:
        chip = chips.get_chip(c.device_id)
    except (BenchkitError, KeyError, LookupError):
        chip = None
    if chip is None or not getattr(chip, "bandwidth_gbs", None):
        return None, f"device {c.device_id!r} is not in the chip database"
    return float(chip.bandwidth_gbs), f"peak of {getattr(chip, 'name', c.device_id)}"


def projections(df, configs: list[Config], method: str = "roofline") -> dict[str, Any]:
    """Projected throughput on other chips, anchored on the measured ones.

    Uses `benchkit.projection` when present; a CPU-only measurement has no anchor in the
    chip database, and the section then says so rather than guessing a bandwidth.
    """
    try:
        from benchkit.projection.api import project, size_table
        from benchkit.projection.measurements import measurements_from_frame
    except ImportError:
        return {"note": "projections need the benchkit.projection package, which this "
                        "installation does not have", "tables": []}
    try:
        measurements = measurements_from_frame(df[df["status"] == "ok"])
    except BenchkitError as exc:
        return {"note": f"no projection: {exc.message}", "tables": []}
    chips = _chips_module()
    anchored = [m for m in measurements if _known_chip(chips, m.chip_id)]
    if not measurements:
        devices = sorted({str(c.device_name or c.device_id) for c in configs})
        return {"note": ("no projection: projections are calibrated on GPU runs with every "
                         "layer offloaded, and these results hold none (measured on "
                         + ", ".join(devices) + "). A CPU's memory bandwidth is not in the "
                         "chip database, so no peak is assumed."), "tables": []}
    if not anchored:
        devices = sorted({str(m.chip_id) for m in measurements} or
                         {str(c.device_id) for c in configs})
        return {"note": ("no projection: the measured device (" + ", ".join(devices) +
                         ") is not in the chip database, so there is no peak bandwidth or "
                         "compute figure to scale from. Projections need a measurement on "
                         "a listed chip or GPU (see `benchkit project`)."), "tables": []}
    tables = []
    for sha, group in _by_model(configs).items():
        ref = group[0]
        ms = [m for m in anchored if _same_model(m, ref)] or anchored
        try:
            rows = project(ms, method=method, model_bytes=ref.model_bytes,
                           n_layers=ref.model_layers)
        except BenchkitError as exc:
            tables.append({"model": ref.model_name, "note": f"no projection: {exc.message}",
                           "rows": [], "sizes": None})
            continue
        sizes = None
        try:
            sizes = size_table(ms[0].chip_id, ms, sizes_b=list(SIZES_B),
                               quant=SIZE_QUANT, method=method)
        except (BenchkitError, TypeError, ValueError) as exc:
            sizes = {"note": f"no model-size table: {exc}"}
        tables.append({"model": ref.model_name, "synthetic": ref.synthetic, "note": None,
                       "rows": [_projection_row(r) for r in rows], "raw": rows,
                       "sizes": _size_rows(sizes), "anchors": sorted({m.chip_id for m in ms}),
                       "method": method})
    return {"note": None, "tables": tables}


def _known_chip(chips, chip_id: str | None) -> bool:
    if chips is None or not chip_id:
        return False
    try:
        return chips.get_chip(chip_id) is not None
    except (BenchkitError, KeyError, LookupError):
        return False


def _by_model(configs: list[Config]) -> dict[Any, list[Config]]:
    out: dict[Any, list[Config]] = {}
    for c in configs:
        out.setdefault(c.model_sha256 or c.model_name, []).append(c)
    return out


def _same_model(m: Any, ref: Config) -> bool:
    """A measurement of the configuration's model file: same sha256, else same size."""
    key = getattr(m, "model_key", None)
    if key and ref.model_sha256:
        return key == ref.model_sha256
    return bool(ref.model_bytes) and getattr(m, "model_bytes", None) == ref.model_bytes


def _range(mid: Any, low: Any, high: Any) -> str:
    if mid is None:
        return "—"
    if low is None or high is None:
        return fmt_tps(float(mid))
    return f"{fmt_tps(float(mid))} ({fmt_tps(float(low))} – {fmt_tps(float(high))})"


def _projection_row(r: dict[str, Any]) -> dict[str, Any]:
    """One chip of the projection table, formatted."""
    measured = r.get("measured_tg")
    return {
        "chip": r.get("chip"), "name": r.get("label") or r.get("name") or r.get("chip"),
        "gpu_cores": r.get("gpu_cores") if r.get("gpu_cores") is not None else "—",
        "bandwidth": f"{r['bandwidth_gbs']:,.0f} GB/s" if r.get("bandwidth_gbs") else "—",
        "tg": _range(r.get("tg_tps"), r.get("tg_low"), r.get("tg_high")),
        "pp": _range(r.get("pp_tps"), r.get("pp_low"), r.get("pp_high")),
        "fits": {True: "yes", False: "no"}.get(r.get("fits"), "—"),
        "status": r.get("status") or ("measured" if measured else "not tested"),
        "measured": fmt_tps(float(measured)) if measured else None,
    }


def _size_rows(sizes: Any) -> dict[str, Any] | None:
    """The model-size table, whatever shape size_table returned (list of dicts)."""
    if sizes is None:
        return None
    if isinstance(sizes, dict) and "note" in sizes:
        return {"note": sizes["note"], "rows": []}
    rows = sizes.get("rows", sizes) if isinstance(sizes, dict) else sizes
    out = []
    for r in rows or []:
        out.append({
            "size": f"~{r.get('size_b', r.get('params_b', '?'))}B params",
            "quant": r.get("quant", SIZE_QUANT),
            "file": f"{r['model_gb']:,.1f} GB" if r.get("model_gb") else "—",
            "tg": _range(r.get("tg_tps"), r.get("tg_low"), r.get("tg_high")),
            "fits": {True: "yes", False: "no"}.get(r.get("fits"), "—"),
        })
    chip = (rows[0].get("label") or rows[0].get("name")) if rows else None
    return {"note": None, "rows": out, "chip": chip}



"""The site's one door into the projection: the explorer's figures, and each measured chip
projected from the others.

Everything the site asks of `benchkit.projection` goes through this module, through the
same public functions and with the same inputs as `benchkit project`: the explorer's
views are `gather_measurements` + `project` over the accepted results, printed with
`output.estimate` and `output.tps`, and `command()` is the `benchkit project` line that
prints the same figures. When the projection grows an option (flash attention, a
placement), this is the module to change: add the values to the axis below and pass them
on in `_view` and `command`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable

from benchkit.core.errors import BenchkitError

# The explorer's axes. Presets are projected in the quantizations people run; a measured
# model only in its own. Depths are tokens already in the KV cache (llama-bench's -d).
PRESET_QUANTS = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0")
DEPTHS = (0, 4096, 16384, 32768)
# Flash attention as `benchkit project --fa` takes it (a measured chip is marked where its
# run had the same setting).
FLASH_ATTN = ("on", "off")
RESULTS_SHOWN = "results/community"       # where the data set lives in a checkout
# A view's rows, compact (the explorer loads a model's every view at once): the chip's index
# in `chips_table()`, decode and prompt as `benchkit project` prints them, the status (null:
# not tested; "x": does not fit in its memory; "m" then the measured decode tok/s: measured),
# and which figures (tg, pp) lie outside the range the projection was fitted and checked on.
ROW_COLUMNS = ("chip", "decode", "prompt", "status", "outside")


def chips_table() -> list[dict[str, Any]]:
    """Every chip of the database, once, in its order: what a view's rows point at."""
    from benchkit.projection.chips import load_chips

    return [{"id": c.id, "label": c.label, "vendor": c.vendor, "backend": c.backend,
             "cores": c.gpu_cores, "cores_label": "—" if c.gpu_cores is None else (
                 f"{c.gpu_cores}" if c.core_unit in (None, "GPU cores")
                 else f"{c.gpu_cores} {c.core_unit}"),
             "bandwidth": f"{c.bandwidth_gbs:,.0f} GB/s",
             "memory": ", ".join(f"{m:g}" for m in c.memory_gb) + " GB",
             "memory_max": f"{max(c.memory_gb):g} GB"}
            for c in load_chips().values()]


class _Gathered(dict):
    """`gather_measurements` as `benchkit project --anchor A --results R --depth D` calls
    it: the same for every preset and quantization, so read once per build."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def get_for(self, anchor: str, depth: int) -> list[Any]:
        from benchkit.projection.measurements import gather_measurements

        if (anchor, depth) not in self:
            self[anchor, depth] = gather_measurements(anchor, results_dir=str(self.root),
                                                      depth=depth)
        return self[anchor, depth]


def explorer_models(files: dict[str, bytes], measured: list[dict[str, Any]],
                    presets: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One block per model the explorer offers: every view (quantization x depth x flash
    attention) with a row per chip, computed from the accepted result files.

    `files` maps each accepted file's path inside the data set to its bytes (the folder
    `benchkit project --results` would read); `measured` lists the measured models (key,
    label, sha256, quant, chips that measured it).
    """
    from benchkit.models.presets import preset_names

    with tempfile.TemporaryDirectory(prefix="benchkit-site-") as tmp:
        root = Path(tmp) / "community"
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        index = {c["id"]: i for i, c in enumerate(chips_table())}
        anchor, gathered = _preset_anchor(measured), _Gathered(root)
        out = [_measured_block(m, gathered, index) for m in measured]
        for name in (preset_names() if presets is None else presets):
            out.append(_block(f"preset-{name}", name, "preset", PRESET_QUANTS, anchor,
                              gathered, index, preset=name))
    return out


def _preset_anchor(measured: list[dict[str, Any]]) -> str | None:
    """The chip presets are projected from: the one in the database with the most
    accepted measurements (then by id), so that the choice does not move between builds."""
    counts: dict[str, int] = {}
    for m in measured:
        for chip, n in m["chips"].items():
            counts[chip] = counts.get(chip, 0) + n
    return min(counts, key=lambda c: (-counts[c], c)) if counts else None


def _measured_block(m: dict[str, Any], gathered: _Gathered,
                    index: dict[str, int]) -> dict[str, Any]:
    """A measured model, projected from a chip that measured it (its own quantization)."""
    anchor = min(m["chips"], key=lambda c: (-m["chips"][c], c)) if m["chips"] else None
    return _block(m["key"], m["label"], "measured", (m["quant"],), anchor, gathered, index,
                  sha256=m["sha256"])


def _block(key: str, label: str, kind: str, quants: tuple[str, ...], anchor: str | None,
           gathered: _Gathered, index: dict[str, int], *, preset: str | None = None,
           sha256: str | None = None) -> dict[str, Any]:
    block = {"key": key, "label": label, "kind": kind, "anchor": anchor,
             "quants": list(quants), "depths": list(DEPTHS), "flash_attn": list(FLASH_ATTN),
             "columns": list(ROW_COLUMNS), "views": {}}
    for quant in quants:
        for depth in DEPTHS:
            for fa in FLASH_ATTN:
                view_key = f"{quant}|{depth}|{fa}"
                block["views"][view_key] = _view(anchor, gathered, index, depth, preset,
                                                 quant, fa, sha256)
    # each reason a figure is outside the calibrated range once, views pointing at it
    notes = block["notes"] = []
    for view in block["views"].values():
        view["notes"] = [_index_of(notes, n) for n in view.get("notes") or []]
    return block


def _index_of(items: list[str], item: str) -> int:
    if item not in items:
        items.append(item)
    return items.index(item)


def _view(anchor: str | None, gathered: _Gathered, index: dict[str, int], depth: int,
          preset: str | None, quant: str, fa: str, sha256: str | None) -> dict[str, Any]:
    """One view: `benchkit project --anchor A --results R --chips all --depth D --fa F
    [--preset P --quant Q]`, as data."""
    from benchkit.projection.api import project
    from benchkit.projection.shapes import GB, shape_from_preset
    from benchkit.projection.targets import run_config

    cmd = command(anchor, depth, preset, quant, fa)
    if anchor is None:
        return {"note": "no accepted GPU measurement on a chip in the database yet",
                "command": None, "rows": []}
    try:
        ms = gathered.get_for(anchor, depth)
        if sha256 is not None and ms[0].model_key != sha256:
            return {"note": f"{anchor}'s newest measurement is of another model",
                    "command": None, "rows": []}
        shape = shape_from_preset(preset, quant) if preset else None
        rows = project(ms, chips="all", depth=depth, shape=shape,
                       config=run_config(fa, None, None))
    except BenchkitError as exc:
        return {"note": f"the projection refused this view: {exc.message}",
                "command": cmd, "rows": []}
    first = rows[0] if rows else {}
    return {"command": cmd, "model_gb": _round(first.get("model_gb")),
            "memory_needed_gb": _round(first.get("memory_needed_gb")),
            "kv_gb": _round(first.get("kv_gb")),
            "anchor_model": ms[0].model_name or (f"{ms[0].model_bytes / GB:.2f} GB model"
                                                 if ms[0].model_bytes else "?"),
            "notes": _notes(rows),
            "rows": [_row(r, index) for r in rows]}


def _row(r: dict[str, Any], index: dict[str, int]) -> list[Any]:
    """One chip of a view, as ROW_COLUMNS says."""
    from benchkit.projection.output import estimate, tps

    status = {"measured": "m" + (tps(r["measured_tg"]) if r.get("measured_tg") else ""),
              "does not fit": "x"}.get(r["status"])
    flag = ""
    if r.get("in_range") is False:
        flag = "".join(k for k in ("tg", "pp") if r.get(f"{k}_tps") is not None
                       and k in (r.get("range_figures") or ("tg", "pp")))
    return [index[r["chip"]], estimate(r["tg_tps"], r["tg_low"], r["tg_high"]),
            estimate(r["pp_tps"], r["pp_low"], r["pp_high"]), status, flag]


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    """Each distinct reason a figure lies outside the calibrated range, once."""
    return list(dict.fromkeys(r["range_note"] for r in rows
                              if r.get("in_range") is False and r.get("range_note")))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def command(anchor: str | None, depth: int, preset: str | None, quant: str | None,
            fa: str) -> str:
    """The `benchkit project` line that prints a view's figures, from a checkout."""
    parts = ["benchkit", "project", "--anchor", str(anchor), "--results", RESULTS_SHOWN,
             "--chips", "all", "--depth", str(depth), "--fa", fa]
    if preset:
        parts += ["--preset", preset, "--quant", str(quant)]
    return " ".join(parts)


def held_out(rows: list[dict[str, Any]], model: dict[str, Any]) -> None:
    """Per measured chip (rows with chip, chip_name, tg_value, pp_value), its decode
    figure projected from the OTHER chips' measurements of the same model, and the error:
    an honest test of the projection, written into each row."""
    from benchkit.projection.chips import load_chips

    known = load_chips()
    anchors = [r for r in rows if r["chip"] in known and r["tg_value"]]
    for row in anchors:
        others = [r for r in anchors if r is not row]
        if not others:
            row["error_note"] = "needs a measurement of this model on another chip"
            continue
        try:
            got = _project(others, model, [row["chip"]])[0]
        except BenchkitError as exc:
            row["error_note"] = exc.message
            continue
        if got.get("tg_tps"):
            row["projected"] = got["tg_tps"], got["tg_low"], got["tg_high"]
            row["error_note"] = "projected from the other chips' measurements"


def _project(rows: list[dict[str, Any]], model: dict[str, Any],
             chips: list[str]) -> list[dict[str, Any]]:
    from benchkit.projection.api import project
    from benchkit.projection.measurements import Measurement

    ms = [Measurement(chip_id=r["chip"], tg_tps=r["tg_value"], pp_tps=r["pp_value"],
                      model_bytes=model.get("size_bytes"), n_layers=model.get("n_layers"),
                      n_params=model.get("n_params"), source="community results",
                      model_key=model.get("sha256"), model_name=model.get("name"))
          for r in rows]
    return project(ms, method="roofline", model_bytes=model.get("size_bytes"),
                   n_layers=model.get("n_layers"), chips=chips)

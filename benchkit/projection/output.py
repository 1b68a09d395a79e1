"""Render projections, size tables and validations as Markdown, JSON or CSV.

Kept apart from the model so reports and the CLI print the same tables. Markdown follows
the hand-written result pages users publish (Chip, GPU cores, Memory BW, estimates,
Status) but every figure says its unit and every estimate its range.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Sequence

from benchkit.projection.measurements import Measurement
from benchkit.projection.shapes import GB


def tps(value: float | None) -> str:
    """tok/s at the precision a projection deserves: whole numbers, one decimal below 10."""
    if value is None:
        return "—"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def estimate(mid: float | None, low: float | None, high: float | None) -> str:
    """"~43 (38–49)", or "~25" when the method claims no range."""
    if mid is None:
        return "—"
    if low is None or high is None or abs(high - low) < 1e-9 * max(mid, 1):
        return f"~{tps(mid)}"
    return f"~{tps(mid)} ({tps(low)}–{tps(high)})"


def describe_measurement(m: Measurement) -> str:
    """One line: what was measured, how often, with what spread, and where it comes from."""
    parts = []
    for label, value, n, cv, test in (("decode", m.tg_tps, m.tg_n, m.tg_cv, m.tg_test),
                                      ("prompt", m.pp_tps, m.pp_n, m.pp_cv, m.pp_test)):
        if value:
            label = f"{label} ({test})" if test else label
            detail = []
            if n:
                detail.append(f"mean of {n} iterations")
            if cv is not None:
                detail.append(f"CV {100 * cv:.1f}%")
            parts.append(f"{label} {value:.1f} tok/s" + (f" ({', '.join(detail)})" if detail else ""))
    model = m.model_name or (f"{m.model_bytes / GB:.2f} GB model" if m.model_bytes else
                             "model of unknown size")
    origin = "given on the command line" if m.source == "command line" else f"from {m.source}"
    ran = [f"on {m.backend}"] if m.backend else []
    if m.config != type(m.config)():
        ran.append(m.config.describe())
    setting = f"; {', '.join(ran)}" if ran else ""
    return f"{m.chip_id}: {', '.join(parts)}; {model}{setting}; {origin}"


def describe_target(shape: Any, config: Any) -> str:
    """One line: the model projected (its bytes per token for a mixture of experts) and
    the settings it is projected at."""
    what = f"{shape.source} ({shape.quant}), {shape.n_params / 1e9:.1f} B parameters, " \
           f"{shape.model_bytes / GB:.2f} GB"
    if shape.is_moe:
        what += (f"; a mixture of experts: {shape.n_expert_used} of {shape.n_expert} experts "
                 f"a token, {shape.active_bytes / GB:.2f} GB read per token")
    fa = ("flash attention as the backend's default" if config.flash_attn is None else
          "flash attention " + ("on" if config.flash_attn else "off"))
    place = config.describe(flash=False)
    return f"Projected model: {what}; {place}, {fa}."


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "measured":
        figure = f": {tps(row['measured_tg'])} tok/s" if row.get("measured_tg") else ""
        return f"✅ Measured{figure}"
    if row["status"] == "does not fit":
        return f"Does not fit ({max(row['memory_gb']):g} GB max)"
    return "Not tested"


def _md_table(header: Sequence[str], lines: Iterable[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def _cores(row: dict[str, Any]) -> str:
    return f"{row['gpu_cores']}" if row.get("core_unit") in (None, "GPU cores") else \
        f"{row['gpu_cores']} {row['core_unit']}"


def _merge_variants(lines: Iterable[list[str]]) -> list[list[str]]:
    """Adjacent GPU-core variants whose every other cell reads the same share one row, "7–8".

    This is how hand-written pages list chips (one "M1 | 7–8 | 68 GB/s" row); variants that
    differ in anything printed (bandwidth, a prompt figure from compute, status) stay apart.
    """
    out: list[list[str]] = []
    for line in lines:
        prev = out[-1] if out else None
        if (prev and prev[0] == line[0] and prev[2:] == line[2:]
                and prev[1].split("–")[-1].isdigit() and line[1].isdigit()):
            prev[1] = f"{prev[1].split('–')[0]}–{line[1]}"
        else:
            out.append(list(line))
    return out


def _flag(row: dict[str, Any], kind: str) -> str:
    """" ⚠" after a figure (tg or pp) outside the range the model was fitted and checked
    on; the row's `range_figures` say which (both, in rows that predate the key)."""
    return (" ⚠" if row.get("in_range") is False and row.get(f"{kind}_tps") is not None
            and kind in (row.get("range_figures") or ("tg", "pp")) else "")


def _range_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per distinct reason a row is outside the calibrated range."""
    reasons: dict[str, list[str]] = {}
    for r in rows:
        if r.get("in_range") is False and r.get("range_note") and (
                r.get("tg_tps") is not None or r.get("pp_tps") is not None):
            reasons.setdefault(r["range_note"], []).append(r["chip"])
    return [f"⚠ {', '.join(chips[:6])}{' …' if len(chips) > 6 else ''}: {note}."
            for note, chips in reasons.items()]


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(f"{v:g}" for v in row[k]) if isinstance(row.get(k), list)
                         else row.get(k) for k in columns})
    return buf.getvalue()


PROJECTION_COLUMNS = ("chip", "name", "gpu_cores", "core_unit", "bandwidth_gbs", "method",
                      "model_gb", "n_layers", "depth", "kv_gb", "memory_needed_gb", "tg_tps",
                      "tg_low", "tg_high", "pp_tps", "pp_low", "pp_high", "fits", "memory_gb",
                      "status", "in_range", "range_note", "measured_tg", "measured_pp")


def format_projection(rows: list[dict[str, Any]], fmt: str = "md", *,
                      header: Sequence[str] = ()) -> str:
    """The projection table; `header` lines (Markdown only) say what was measured and how."""
    if fmt == "json":
        return _json(rows)
    if fmt == "csv":
        return _csv(rows, PROJECTION_COLUMNS)
    method = rows[0]["method"] if rows else "roofline"
    table = _md_table(
        ["Chip", "GPU cores", "Memory BW", "Est. decode tok/s", "Est. prompt tok/s", "Status"],
        _merge_variants([r["label"], _cores(r), f"{r['bandwidth_gbs']:,.0f} GB/s",
                         estimate(r["tg_tps"], r["tg_low"], r["tg_high"]) + _flag(r, "tg"),
                         estimate(r["pp_tps"], r["pp_low"], r["pp_high"]) + _flag(r, "pp"),
                         _status(r)]
                        for r in rows))
    notes = list(header)
    depth = rows[0].get("depth") if rows else 0
    if method == "roofline":
        context = (f"at context depth {depth} (KV cache {rows[0]['kv_gb']:.2f} GB, "
                   f"~{rows[0]['memory_needed_gb']:.1f} GB needed with weights and compute "
                   "buffer)") if depth else "at short context"
        widened = (", the prompt's widened for the attention time the depth adds, the "
                   "least certain term") if depth else ""
        notes.append(f"Decode = token generation rate {context}, prompt = prompt "
                     "processing rate, both tok/s; in brackets the 90% prediction interval "
                     f"(from leave-one-chip-out errors on the validation data{widened}, "
                     "docs/projection.md).")
        notes += _range_notes(rows)
    else:
        notes.append("Decode and prompt tok/s scaled by the ratio of memory bandwidths "
                     "(no range: the method does not estimate its error; see --validate).")
    if any(r.get("n_layers_estimated") for r in rows):
        notes.append(f"The layer count ({rows[0]['n_layers']}) is estimated from the model "
                     "size; give --layers for the model's own.")
    if rows and all(r["pp_tps"] is None for r in rows):
        notes.append("No prompt figure was given (--pp), so prompt processing is not projected.")
    elif any(r["pp_tps"] is None and r["status"] != "does not fit" for r in rows):
        notes.append("Prompt: — where the chip's compute figure is unknown (no published "
                     "GPU clock) or no prompt figure ran on its backend (Metal, CUDA, HIP, "
                     "SYCL, Vulkan, CPU): prompt kernels differ too much between backends.")
    return "\n".join(notes) + "\n\n" + table + "\n"


SIZE_COLUMNS = ("chip", "size_b", "quant", "model_gb", "n_layers", "method", "depth", "tg_tps",
                "tg_low", "tg_high", "pp_tps", "pp_low", "pp_high", "fits", "fits_memory_gb",
                "weights_gb", "kv_gb", "compute_gb", "memory_needed_gb", "in_range")


def _fits_text(row: dict[str, Any]) -> str:
    fits, configs = row["fits_memory_gb"], row["memory_gb"]
    if not fits:
        return f"No (needs ~{row['memory_needed_gb']:.0f} GB, max {max(configs):g} GB)"
    if len(fits) == len(configs):
        return "Yes"
    return f"With ≥ {min(fits):g} GB"


def format_sizes(rows: list[dict[str, Any]], fmt: str = "md", *,
                 header: Sequence[str] = ()) -> str:
    """Expected throughput by model size on one chip."""
    if fmt == "json":
        return _json(rows)
    if fmt == "csv":
        return _csv(rows, SIZE_COLUMNS)
    depth = rows[0].get("depth", 0) if rows else 0
    table = _md_table(
        ["Model size", "Quantization", "File size", "Est. decode tok/s", "Est. prompt tok/s",
         "Fits in memory", f"KV cache at {depth} + 512 tokens", "Needed"],
        ([f"~{r['size_b']:g}B params", r["quant"], f"{r['model_gb']:.1f} GB",
          estimate(r["tg_tps"], r["tg_low"], r["tg_high"]) + _flag(r, "tg"),
          estimate(r["pp_tps"], r["pp_low"], r["pp_high"]) + _flag(r, "pp"), _fits_text(r),
          f"{r['kv_gb']:.2f} GB", f"{r['memory_needed_gb']:.1f} GB"] for r in rows))
    notes = list(header) + [
        "File sizes from the type's average bits per weight, shapes (layers, KV heads) from "
        f"typical llama-style models; decode and prompt in tok/s at context depth {depth}, "
        "with the 90% prediction interval in brackets. Needed = weights + F16 KV cache + "
        "compute buffer + driver room."] + _range_notes(
            [dict(r, chip=f"{r['size_b']:g}B") for r in rows])
    return "\n".join(notes) + "\n\n" + table + "\n"


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


def format_validation(result: dict[str, Any], fmt: str = "md") -> str:
    """Every checked pair, the per-chip errors and the MAPE of each method."""
    if fmt == "json":
        return _json(result)
    methods = result["methods"]
    flat = []
    for p in result["pairs"]:
        row = {k: p[k] for k in ("anchor", "chip", "model", "measured_tg", "measured_pp")}
        for meth in methods:
            for key, value in p[meth].items():
                row[f"{meth}_{key}"] = value
        flat.append(row)
    if fmt == "csv":
        cols = ["anchor", "chip", "model", "measured_tg", "measured_pp"] + [
            f"{m}_{k}" for m in methods for k in ("tg", "tg_error", "pp", "pp_error")]
        return _csv(flat, cols)
    if not result["pairs"]:
        return ("Nothing to validate: no two chips under the results folder measured the same "
                "model (same sha256). Run the same suite on another chip, or add its result.\n")
    pairs = _md_table(
        ["Anchor", "Chip", "Model", "Measured decode"] +
        [f"{m} decode" for m in methods] + ["Measured prompt"] + [f"{m} prompt" for m in methods],
        ([p["anchor"], p["chip"], p["model"], tps(p["measured_tg"])] +
         [f"{tps(p[m]['tg'])} ({_pct(p[m]['tg_error'], True)})" for m in methods] +
         [tps(p["measured_pp"])] +
         [f"{tps(p[m]['pp'])} ({_pct(p[m]['pp_error'], True)})" if p[m]["pp"] else "—"
          for m in methods] for p in result["pairs"]))
    per_chip = _md_table(
        ["Chip", "Pairs"] + [f"{m} decode" for m in methods] + [f"{m} prompt" for m in methods],
        ([chip, str(v["n"])] + [_pct(v[m]["tg"]) for m in methods] +
         [_pct(v[m]["pp"]) for m in methods] for chip, v in result["per_chip"].items()))
    mape = _md_table(
        ["Method", "Decode MAPE", "Prompt MAPE"],
        ([m, _pct(result["mape"][m]["tg"]), _pct(result["mape"][m]["pp"])] for m in methods))
    return ("Each measured chip projected from every other chip that measured the same model "
            "(tok/s; error = projected / measured − 1).\n\n" + pairs +
            "\n\nMean absolute error per chip:\n\n" + per_chip +
            "\n\nMean absolute percentage error (MAPE) over all pairs:\n\n" + mape + "\n")


def chip_list(chips: Iterable[Any], fmt: str = "md") -> str:
    """The chip database as a table (benchkit project --list-chips)."""
    rows = [{"chip": c.id, "name": c.name, "vendor": c.vendor, "family": c.family,
             "backend": c.backend, "gpu_cores": c.gpu_cores, "core_unit": c.core_unit,
             "gpu_clock_mhz": c.gpu_clock_mhz, "bandwidth_gbs": c.bandwidth_gbs,
             "memory_type": c.memory_type, "fp32_tflops": c.fp32_tflops,
             "fp16_matrix_tflops": c.matrix_tflops, "bf16_matrix_tflops": c.bf16_matrix_tflops,
             "int8_matrix_tops": c.int8_matrix_tops, "board_power_w": c.board_power_w,
             "memory_gb": list(c.memory_gb), "multi_die": c.multi_die,
             "source": c.source("bandwidth_gbs")} for c in chips]
    if fmt == "json":
        return _json(rows)
    if fmt == "csv":
        return _csv(rows, list(rows[0]))

    def fig(value: float | None, unit: str) -> str:
        return f"{value:g} {unit}" if value else "—"

    return _md_table(
        ["Id", "Name", "Backend", "Cores", "Clock", "Memory BW", "FP32", "FP16 matrix",
         "INT8 matrix", "Board power", "Memory"],
        ([r["chip"], r["name"], r["backend"], _cores(r), fig(r["gpu_clock_mhz"], "MHz"),
          f"{r['bandwidth_gbs']:,.0f} GB/s {r['memory_type'] or ''}".strip(),
          fig(r["fp32_tflops"], "TFLOPS"), fig(r["fp16_matrix_tflops"], "TFLOPS"),
          fig(r["int8_matrix_tops"], "TOPS"), fig(r["board_power_w"], "W"),
          ", ".join(f"{m:g}" for m in r["memory_gb"]) + " GB"] for r in rows)) + "\n"


PLAN_COLUMNS = ("quant", "placement", "gpu_gb", "ram_gb", "tg_tps", "tg_low", "tg_high",
                "pp_tps", "pp_low", "pp_high", "close", "command")


def format_plan(rows: list[dict[str, Any]], fmt: str = "md", *,
                header: Sequence[str] = ()) -> str:
    """`benchkit plan`'s table: what fits, fastest first."""
    if fmt == "json":
        return _json({"header": list(header), "plans": rows})
    if fmt == "csv":
        return _csv(rows, PLAN_COLUMNS)
    out = [line for line in header] + [""]
    if not rows:
        return "\n".join(out + ["Nothing fits: no quantization and placement considered "
                                "fits this machine's memory at this context.", ""])
    lines = []
    for r in rows:
        mark = " (close to the limit)" if r["close"] else ""
        lines.append([r["quant"], r["placement"] + mark, f"{r['gpu_gb']:.1f}",
                      f"{r['ram_gb']:.1f}", estimate(r["tg_tps"], r["tg_low"], r["tg_high"]),
                      estimate(r["pp_tps"], r["pp_low"], r["pp_high"]), f"`{r['command']}`"])
    out.append(_md_table(("Quant", "Placement", "GPU GB", "RAM GB", "Decode tok/s",
                          "Prompt tok/s", "Command"), lines))
    notes = sorted({r["range_note"] for r in rows if r.get("range_note")})
    return "\n".join(out + [f"Note: {n}." for n in notes] + [""])

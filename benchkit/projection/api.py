"""Project measured llama.cpp throughput onto other chips (`project`, `size_table`).

Two methods:

- `bandwidth`: decode (and, naively, prompt) tok/s scaled by the ratio of memory
  bandwidths. This is what hand-written result pages do; it is kept so their tables can be
  reproduced and so `validate` can show what it costs.
- `roofline` (default): a model of why chips fall short of their peak, with a few global
  parameters per backend and memory class (never per chip), fitted on published and
  committed measurements (`benchkit/data/projection.yaml`, made by
  `scripts/projection_accuracy.py --fit`):

    decode s/token = smoothmax(bytes read / (eta[backend, memory class] x bandwidth),
                               matrix weights x dequant cost[backend, quant kind] / (cores x clock))
                     + layers x (latency + work / FP32 TFLOPS)
    prompt s/token = [2 x matrix weights / (share[backend, unit] x matrix throughput of the
                      unit llama.cpp uses for the type) + attention at depth + unpacking]
                     / power-limited share of the boost clock
                     + weights re-read per ubatch / bandwidth + layers x latency

  Bytes read include the KV cache at the context depth. The clock share comes from the
  chip's board power and core count through a power law with two global constants per
  backend (sustained_clock_share); the unit can be the measuring build's own (a build
  older than llama.cpp's MMQ tensor-core kernels dequantized weights to F16 and ran the
  F16 GEMM: Measurement.prompt_units). Measurements then calibrate the
  priors (two log-scale factors for decode, one for prompt), and every figure carries a
  prediction interval whose width comes from leave-one-chip-out residuals on the
  validation data (a prompt's widened at depth by its attention share).
  docs/projection.md states the model, its data and its limits.

The first measurement passed in is the anchor: it defines the model being projected
unless a model size is given. The model's parts are modules of their own (shapes, priors,
physics, calibration, measurements); validation.py checks it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.models.quants import bits_per_weight
from benchkit.projection.calibration import (Calibration, predict_decode, predict_prompt,
                                             range_notes)
from benchkit.projection.chips import Chip, get_chip, load_chips
from benchkit.projection.measurements import (Measurement, chip_of, same_case, same_model,
                                              shape_of)
from benchkit.projection.physics import (fitting_memory, memory_breakdown, usable_memory_gb,
                                         weight_group)
from benchkit.projection.placement import Host, RunConfig, split
from benchkit.projection.priors import Priors, load_priors
from benchkit.projection.shapes import DEFAULT_QUANT, GB, ModelShape, guess_shape, typical_shape

METHODS = ("roofline", "bandwidth")
VENDOR_SETS = ("apple", "nvidia", "amd", "intel", "cpu")


def check_measurements(measurements: Iterable[Measurement],
                       chips: Mapping[str, Chip]) -> list[Measurement]:
    """The measurements as a list, each on a known chip with positive figures (else one
    BenchkitError naming the field)."""
    ms = list(measurements)
    if not ms:
        raise BenchkitError("no measurement to project from: give --tg (and --model-gb), "
                            "--from FILE, or put a result for the anchor chip under results/",
                            field="anchor")
    for m in ms:
        if m.chip is None:
            get_chip(m.chip_id, chips)
        for name in ("tg_tps", "pp_tps", "model_bytes", "n_layers", "n_params"):
            value = getattr(m, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0
                                          and math.isfinite(value)):
                raise BenchkitError(f"{name} must be a positive number, got {value!r}",
                                    file=m.source if m.source != "command line" else None,
                                    field=name)
        if m.tg_tps is None and m.pp_tps is None:
            raise BenchkitError("a measurement needs a decode or a prompt figure",
                                file=m.source if m.source != "command line" else None,
                                field="tg_tps")
    return ms


def select_chips(chips_arg: Iterable[str | Chip] | str | None, anchor: Chip,
                 all_chips: Mapping[str, Chip]) -> list[Chip]:
    """Chips to project onto: given ids, a vendor name, "all", or the anchor's vendor."""
    if chips_arg is None:
        chips_arg = anchor.vendor
    if isinstance(chips_arg, str):
        if chips_arg == "all":
            return list(all_chips.values())
        if chips_arg in VENDOR_SETS:
            return [c for c in all_chips.values() if c.vendor == chips_arg]
        chips_arg = [part for part in chips_arg.split(",") if part.strip()]
    return [c if isinstance(c, Chip) else get_chip(c, all_chips, field="--chips")
            for c in chips_arg]


def _target_shape(anchor: Measurement, model_bytes: float | None, n_layers: int | None,
                  n_params: float | None, priors: Priors, shape: ModelShape | None,
                  quant: str | None) -> tuple[ModelShape | None, bool]:
    """The shape of the model being projected and whether its layer count is estimated."""
    if shape is not None:
        return shape, False
    same = model_bytes is None or (
        anchor.model_bytes is not None and abs(model_bytes / anchor.model_bytes - 1) < 0.01)
    if same and anchor.shape is not None:
        return anchor.shape, False
    nbytes = model_bytes if model_bytes is not None else anchor.model_bytes
    if nbytes is None:
        return None, False
    params = n_params or (anchor.n_params if same else None)
    layers = n_layers or (anchor.n_layers if same else None)
    q = quant or (anchor.quant if same else None)
    preset = anchor.preset if same else None
    got = guess_shape(params, nbytes, layers, q, priors, preset)
    return got, not layers and got.source.startswith("typical")


def _complete(m: Measurement, priors: Priors) -> Measurement:
    """A measurement with a size but no layer count gets the typical count for its size."""
    if m.model_bytes and not m.n_layers:
        shape = shape_of(m, priors)
        return replace(m, n_layers=shape.n_layers if shape else None)
    return m


def _check_fits_somewhere(model_bytes: float, all_chips: Mapping[str, Chip],
                          priors: Priors) -> None:
    if not any(fitting_memory(c, model_bytes, priors) for c in all_chips.values()):
        biggest = max(all_chips.values(),
                      key=lambda c: usable_memory_gb(c, c.memory_gb[-1], priors))
        raise BenchkitError(
            f"a {model_bytes / GB:.1f} GB model does not fit in any chip's memory (largest: "
            f"{biggest.id}, {biggest.memory_gb[-1]:g} GB of which "
            f"~{usable_memory_gb(biggest, biggest.memory_gb[-1], priors):.0f} GB usable)",
            field="--model-gb")


def _bandwidth_factors(measurements: Sequence[Measurement], target: Measurement,
                       all_chips: Mapping[str, Chip]) -> tuple[float | None, float | None]:
    """tok/s per GB/s for decode and prompt: geometric mean over measurements of the model."""
    same = [m for m in measurements if same_model(m, target)]
    out = []
    for attr in ("tg_tps", "pp_tps"):
        logs = [math.log(getattr(m, attr) / chip_of(m, all_chips).bandwidth_gbs)
                for m in same if getattr(m, attr)]
        out.append(math.exp(sum(logs) / len(logs)) if logs else None)
    return out[0], out[1]


FIGURE_KEYS = ("tg_tps", "tg_low", "tg_high", "pp_tps", "pp_low", "pp_high")
RANGE_KEYS = ("in_range", "range_note", "range_figures")


def _in_range() -> dict[str, Any]:
    """A projected row's range keys before any note: inside the calibrated range, no note,
    no figure (tg, pp) concerned."""
    return {"in_range": True, "range_note": None, "range_figures": []}


def _row(chip: Chip, method: str, shape: ModelShape | None, estimated: bool,
         depth: int, measured: Measurement | None, fits_mem: tuple[float, ...] | None,
         need: dict[str, float] | None) -> dict[str, Any]:
    fits = bool(fits_mem) if fits_mem is not None else True
    return {
        "chip": chip.id, "name": chip.name, "label": chip.label, "vendor": chip.vendor,
        "backend": chip.backend, "memory_type": chip.memory_type,
        "gpu_cores": chip.gpu_cores, "core_unit": chip.core_unit,
        "bandwidth_gbs": chip.bandwidth_gbs, "memory_gb": list(chip.memory_gb),
        "method": method, "model_gb": shape.model_bytes / GB if shape else None,
        "n_layers": shape.n_layers if shape else None, "n_layers_estimated": estimated,
        "shape_source": shape.source if shape else None, "depth": depth,
        "kv_gb": need["kv_gb"] if need else None,
        "memory_needed_gb": need["memory_needed_gb"] if need else None,
        **dict.fromkeys(FIGURE_KEYS), **_in_range(),
        "fits": fits or measured is not None,
        "fits_memory_gb": list(fits_mem) if fits_mem is not None else None,
        "measured_tg": measured.tg_tps if measured else None,
        "measured_pp": measured.pp_tps if measured else None,
        "measured_source": measured.source if measured else None,
        "status": "measured" if measured else ("not tested" if fits else "does not fit"),
    }


def project(measurements: Iterable[Measurement], *, method: str = "roofline",
            model_bytes: float | None = None, n_layers: int | None = None,
            chips: Iterable[str | Chip] | str | None = None, n_params: float | None = None,
            priors: Priors | None = None, depth: int | None = None,
            shape: ModelShape | None = None, quant: str | None = None,
            config: RunConfig | None = None, host: Host | None = None,
            backend: str | None = None, anchored: bool = True) -> list[dict[str, Any]]:
    """One dict per chip: projected decode / prompt tok/s with ranges, fit and status.

    The first measurement is the anchor; the model projected is the anchor's unless
    `model_bytes` (or `shape`) is given, at the anchor's context depth unless `depth` is.
    `chips` takes ids, Chip objects (a --chip-spec), "apple" / "nvidia" / "amd" / "intel" /
    "cpu" / "all"; the default is every chip of the anchor's vendor. Rows for chips whose
    memory cannot hold the model (weights, KV cache at the depth, compute buffer) carry
    status "does not fit" and no figures; rows outside what the model was fitted and
    checked on say so (`in_range` False, `range_note`).

    `config` is the target's flash attention and placement (default: the anchor's);
    `host` the host of a partly offloaded placement; `backend` the backend projected
    onto where a chip runs it (default: the anchor's backend, so a Vulkan measurement
    projects onto Vulkan figures), else the chip's usual one.

    `anchored` False projects `shape` from every measurement given (the calibration data
    shipped and the results found) with no anchor: each chip's usual backend, the given
    config (default: all on the GPU, the backend's flash attention), every chip unless
    `chips` says otherwise. Whenever the projected model is not one the measurements
    measured, the range widens by `model_transfer_sigma`.
    """
    if method not in METHODS:
        raise BenchkitError(f"unknown method {method!r}; use one of {', '.join(METHODS)}",
                            field="method")
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = [_complete(m, priors) for m in check_measurements(measurements, all_chips)]
    anchor = ms[0]
    target_shape, estimated = _target_shape(anchor, model_bytes, n_layers, n_params, priors,
                                            shape, quant)
    nbytes = target_shape.model_bytes if target_shape else None
    depth = int(anchor.depth or 0) if depth is None else int(depth)
    if depth < 0:
        raise BenchkitError(f"must be 0 or more, got {depth}", field="--depth")
    if method == "roofline" and nbytes is None:
        raise BenchkitError("the roofline method needs the model's size: give --model-gb (the "
                            "GGUF file's size in GB), or use --method bandwidth",
                            field="--model-gb")
    if not anchored:
        if shape is None:
            raise BenchkitError("without an anchor, name the model: --preset NAME or --gguf FILE",
                                field="--preset")
        chips = "all" if chips is None else chips
    config = (anchor.config if anchored else RunConfig()) if config is None else config
    backend = backend or (anchor.backend or chip_of(anchor, all_chips).backend
                          if anchored else None)
    need = _need(target_shape, priors, depth, config)
    if nbytes is not None and not config.partial:
        _check_fits_somewhere(nbytes, all_chips, priors)
    target = Measurement(chip_id=anchor.chip_id, tg_tps=None, model_bytes=nbytes, depth=depth,
                         model_key=(anchor.model_key if anchored and nbytes == anchor.model_bytes
                                    else None), config=config)
    transfer = not any(same_model(m, target) for m in ms)
    cal = Calibration(ms, all_chips, priors)
    bw_tg, bw_pp = _bandwidth_factors(ms, anchor, all_chips)
    size_ratio = (anchor.model_bytes / nbytes) if (anchor.model_bytes and nbytes) else 1.0
    anchor_chip = chip_of(anchor, all_chips)
    rows = []
    for chip in select_chips(chips, anchor_chip, all_chips):
        chip = chip.on(backend)
        measured = next((m for m in ms if chip_of(m, all_chips).id == chip.id
                         and chip_of(m, all_chips).backend == chip.backend
                         and same_case(replace(m, backend=None), target)), None)
        fits_mem = fitting_memory(chip, nbytes, priors, need["memory_needed_gb"]) \
            if need else None
        row = _row(chip, method, target_shape, estimated, depth, measured, fits_mem, need)
        if row["fits"]:
            if method == "bandwidth":
                _bandwidth_row(row, chip, bw_tg, bw_pp, size_ratio)
            else:
                _roofline_row(row, cal, chip, target_shape, depth,
                              anchor if anchored else None, config, host, transfer)
        rows.append(row)
    if config.partial and rows and not any(r["fits"] for r in rows):
        option = "--n-cpu-moe" if config.n_cpu_moe else "--n-gpu-layers"
        raise BenchkitError(
            f"this placement needs {need['memory_needed_gb']:.1f} GB of GPU memory, more than "
            "any chip asked for holds: keep more in system RAM, or let `benchkit plan` pick "
            "a placement that fits", field=option)
    return rows


def _need(shape: ModelShape | None, priors: Priors, depth: int,
          config: RunConfig) -> dict[str, float] | None:
    """GB of GPU memory the target needs: all of `memory_breakdown` when every weight is
    on the GPU; with a partial placement the GPU's share of weights and KV cache."""
    if shape is None:
        return None
    need = memory_breakdown(shape, priors, depth)
    if not config.partial:
        return need
    place = split(shape, config, priors.ubatch)
    kv = need["kv_gb"] * place.gpu_layers / shape.n_layers
    gpu = place.gpu_weight_bytes / GB
    return {**need, "weights_gb": gpu, "kv_gb": kv, "cpu_weights_gb": place.cpu_weight_bytes / GB,
            "memory_needed_gb": gpu + kv + need["compute_gb"] + priors.memory["overhead_gb"]}


def _bandwidth_row(row: dict[str, Any], chip: Chip, bw_tg: float | None, bw_pp: float | None,
                   size_ratio: float) -> None:
    if bw_tg:
        tg = bw_tg * chip.bandwidth_gbs * size_ratio
        row.update(tg_tps=tg, tg_low=tg, tg_high=tg)
    if bw_pp:
        pp = bw_pp * chip.bandwidth_gbs * size_ratio
        row.update(pp_tps=pp, pp_low=pp, pp_high=pp)


def _roofline_row(row: dict[str, Any], cal: Calibration, chip: Chip, shape: ModelShape,
                  depth: int, anchor: Measurement | None, config: RunConfig = RunConfig(),
                  host: Host | None = None, transfer: bool = False) -> None:
    """The roofline's figures for one chip (`anchor` None: no anchor, llama-bench's
    pp512 / tg128 and the backend's own kernels)."""
    tg_tokens, pp_tokens = (anchor.tg_tokens, anchor.pp_tokens) if anchor else (128, 512)
    units = anchor.units_on(chip.backend) if anchor else None
    tg = predict_decode(cal, chip, shape, shape.n_layers, depth, tg_tokens, config, host,
                        transfer)
    if tg:
        row.update(tg_tps=tg[0], tg_low=tg[1], tg_high=tg[2])
    pp = predict_prompt(cal, chip, shape, shape.model_bytes, depth, pp_tokens, units, config,
                        host, transfer)
    if pp:
        row.update(pp_tps=pp[0], pp_low=pp[1], pp_high=pp[2])
    _, crossed = cal.decode_fit(chip)
    notes = range_notes(chip, cal.priors, crossed, shape.quant)   # both figures
    figures = ["tg", "pp"] if notes else []
    if pp and cal.prompt_fit(chip, shape.model_bytes, shape.quant)[2]:
        target = "an F16" if weight_group(shape.quant) == "f16" else "a quantized"
        notes.append(f"prompt of {target} model from figures of the other kind only "
                     "(quantized vs F16 prompt rates are projected least well)")
        figures = figures or ["pp"]
    if notes:
        row.update(in_range=False, range_note="outside the calibrated range: " + "; ".join(notes),
                   range_figures=figures)


def size_table(chip_id: str | Chip, measurements: Iterable[Measurement], *,
               sizes_b: Sequence[float], quant: str = DEFAULT_QUANT, method: str = "roofline",
               priors: Priors | None = None, depth: int = 0) -> list[dict[str, Any]]:
    """Expected throughput on one chip for models of several sizes (billions of parameters),
    at a context depth, with whether weights + KV cache + compute buffer fit its memory."""
    priors = priors or load_priors()
    bits_per_weight(quant, field="quant")
    chip = chip_id if isinstance(chip_id, Chip) else get_chip(chip_id)
    measurements = list(measurements)      # read once per size below
    rows = []
    for size in sizes_b:
        if not (isinstance(size, (int, float)) and size > 0):
            raise BenchkitError(f"model sizes must be positive, got {size!r}", field="sizes")
        shape = typical_shape(size, quant, priors)
        need = memory_breakdown(shape, priors, depth)
        fits_mem = fitting_memory(chip, shape.model_bytes, priors, need["memory_needed_gb"])
        row: dict[str, Any] = {
            "chip": chip.id, "name": chip.name, "size_b": size, "quant": quant.upper(),
            "model_gb": shape.model_bytes / GB, "n_layers": shape.n_layers, "method": method,
            "depth": depth, **dict.fromkeys(FIGURE_KEYS),
            "fits": bool(fits_mem), "fits_memory_gb": list(fits_mem),
            "memory_gb": list(chip.memory_gb), **need, **_in_range(),
        }
        if fits_mem:
            got = project(measurements, method=method, shape=shape, chips=[chip],
                          priors=priors, depth=depth)[0]
            row.update({key: got[key] for key in (*FIGURE_KEYS, *RANGE_KEYS)})
        rows.append(row)
    return rows

"""Project measured llama.cpp throughput onto other chips, and check the projection.

Two methods:

- `bandwidth`: decode (and, naively, prompt) tok/s scaled by the ratio of memory
  bandwidths. This is what hand-written result pages do; it is kept so their tables can be
  reproduced and so `validate` can show what it costs.
- `roofline` (default): time per token = bytes / (achieved share x bandwidth) + a fixed
  per-token cost that grows with the layer count, not with bytes; prompt processing scales
  with compute. Priors per backend live in `benchkit/data/projection.yaml`; measurements
  calibrate them (two log-scale factors for decode, one for prompt, by regularised least
  squares), and every figure carries an interval from the calibration's covariance plus
  the model's own error between chips. docs/projection.md states the model and its limits.

The first measurement passed in is the anchor: it defines the model being projected
unless a model size is given.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

import yaml

from benchkit.chips import Chip, get_chip, load_chips
from benchkit.errors import BenchkitError
from benchkit.quants import bits_per_weight

METHODS = ("roofline", "bandwidth")
PRIORS_FILE = "benchkit/data/projection.yaml"
DEFAULT_QUANT = "Q4_K_M"
GB = 1e9
PROMPT_PRIOR_SIGMA = 100.0   # effectively flat: see fit_prompt


# ----------------------------------------------------------------------------- data types

@dataclass(frozen=True)
class Measurement:
    """One measured model on one chip: what a projection is calibrated on.

    `model_key` says which measurements are of the same model (a result's sha256); without
    it two measurements are the same model when their sizes agree within 1%.
    """

    chip_id: str
    tg_tps: float | None
    pp_tps: float | None = None
    model_bytes: float | None = None
    n_layers: int | None = None
    n_params: float | None = None
    source: str = "command line"
    model_key: str | None = None
    model_name: str | None = None
    tg_n: int | None = None
    tg_cv: float | None = None
    pp_n: int | None = None
    pp_cv: float | None = None
    started_at: str | None = None
    tg_test: str | None = None
    pp_test: str | None = None


@dataclass(frozen=True)
class BackendPriors:
    """Per-backend parameters of the roofline model (see projection.yaml for meanings)."""

    compute: str
    efficiency_single_die: float
    efficiency_multi_die: float
    layer_latency_ms: float
    layer_compute_ms_tflops: float
    prompt_multi_die_share: float
    prompt_efficiency: float


@dataclass(frozen=True)
class Priors:
    """Everything the roofline method assumes before it sees a measurement."""

    backends: Mapping[str, BackendPriors]
    interval: float
    decode_model_sigma: float
    prompt_model_sigma: float
    calibration_sigma: float
    cross_backend_sigma: float
    unknown_compute_sigma: float
    assumed_clock_mhz: Mapping[str, float]
    memory: Mapping[str, float]
    model_shapes: tuple[tuple[float, int], ...]

    @property
    def z(self) -> float:
        """Half-width of the central interval in standard deviations (1.645 for 90%)."""
        return NormalDist().inv_cdf(0.5 + self.interval / 2)

    def backend(self, name: str) -> BackendPriors:
        if name not in self.backends:
            raise BenchkitError(f"no priors for backend {name!r}", file=PRIORS_FILE,
                                field="backends")
        return self.backends[name]


_BACKEND_KEYS = ("compute", "efficiency_single_die", "efficiency_multi_die", "layer_latency_ms",
                 "layer_compute_ms_tflops", "prompt_multi_die_share", "prompt_efficiency")
_SIGMA_KEYS = ("decode_model_sigma", "prompt_model_sigma", "calibration_sigma",
               "cross_backend_sigma", "unknown_compute_sigma")


def parse_priors(doc: Mapping[str, Any], file: str = PRIORS_FILE) -> Priors:
    """Check the priors document and build Priors; errors name the field."""
    backends = {}
    for name, entry in (doc.get("backends") or {}).items():
        for key in _BACKEND_KEYS:
            value = entry.get(key) if isinstance(entry, dict) else None
            ok = value in ("fp32", "matrix") if key == "compute" else (
                isinstance(value, (int, float)) and value >= 0)
            if not ok:
                raise BenchkitError(f"missing or invalid ({value!r})", file=file,
                                    field=f"backends.{name}.{key}")
        backends[name] = BackendPriors(**{k: entry[k] for k in _BACKEND_KEYS})
    unc = doc.get("uncertainty") or {}
    for key in _SIGMA_KEYS:
        if not isinstance(unc.get(key), (int, float)) or unc[key] < 0:
            raise BenchkitError("missing or invalid", file=file, field=f"uncertainty.{key}")
    shapes = tuple(sorted((float(s["params_b"]), int(s["layers"]))
                          for s in doc.get("model_shapes") or []))
    if not shapes:
        raise BenchkitError("needs at least one entry", file=file, field="model_shapes")
    return Priors(backends=backends, interval=float(doc.get("interval", 0.9)),
                  **{k: float(unc[k]) for k in _SIGMA_KEYS},
                  assumed_clock_mhz=dict(doc.get("assumed_clock_mhz") or {}),
                  memory=dict(doc.get("memory") or {}), model_shapes=shapes)


@functools.lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (`benchkit/data/projection.yaml`)."""
    text = resources.files("benchkit").joinpath("data/projection.yaml").read_text(encoding="utf-8")
    return parse_priors(yaml.safe_load(text))


# ----------------------------------------------------------------------------- chip physics

def compute_tflops(chip: Chip, priors: Priors) -> tuple[float, bool]:
    """The chip's FP32 TFLOPS and whether it is known (else cores x an assumed clock)."""
    if chip.fp32_tflops:
        return chip.fp32_tflops, True
    clock = priors.assumed_clock_mhz.get(chip.family)
    if clock is None:
        raise BenchkitError(f"{chip.id} has no fp32_tflops and its family {chip.family!r} no "
                            "assumed clock", file=PRIORS_FILE, field="assumed_clock_mhz")
    return chip.gpu_cores * 128 * 2 * clock / 1e6, False


def prompt_compute(chip: Chip, priors: Priors) -> float | None:
    """Effective compute for prompt processing (TFLOPS), or None when the chip's is unknown."""
    b = priors.backend(chip.backend)
    tflops = chip.matrix_tflops if b.compute == "matrix" else chip.fp32_tflops
    if not tflops:
        return None
    return tflops * (b.prompt_multi_die_share if chip.multi_die else 1.0)


def decode_terms(chip: Chip, model_bytes: float, n_layers: int,
                 priors: Priors) -> tuple[float, float]:
    """Seconds per token before calibration: (memory term, fixed per-token term)."""
    b = priors.backend(chip.backend)
    eta = b.efficiency_multi_die if chip.multi_die else b.efficiency_single_die
    memory_s = model_bytes / (eta * chip.bandwidth_gbs * GB)
    tflops, _ = compute_tflops(chip, priors)
    fixed_s = n_layers * (b.layer_latency_ms + b.layer_compute_ms_tflops / tflops) / 1000
    return memory_s, fixed_s


def usable_memory_gb(chip: Chip, memory_gb: float, priors: Priors) -> float:
    """How much of a memory size the GPU may use (macOS caps Apple's GPU working set)."""
    mem = priors.memory
    if chip.vendor == "apple":
        share = (mem["apple_share_small"] if memory_gb <= mem["apple_small_up_to_gb"]
                 else mem["apple_share"])
    else:
        share = mem["gpu_share"]
    return memory_gb * share


def memory_needed_gb(model_bytes: float, priors: Priors) -> float:
    """Weights plus room for KV cache and compute buffers."""
    mem = priors.memory
    return model_bytes / GB * (1 + mem["overhead_share"]) + mem["overhead_gb"]


def fitting_memory(chip: Chip, model_bytes: float, priors: Priors) -> tuple[float, ...]:
    """The chip's memory configurations that can hold the model."""
    need = memory_needed_gb(model_bytes, priors)
    return tuple(m for m in chip.memory_gb if usable_memory_gb(chip, m, priors) >= need)


def estimate_layers(n_params: float, priors: Priors) -> int:
    """Typical layer count for a parameter count: interpolated in log(params) over shapes."""
    shapes = priors.model_shapes
    x = math.log(n_params / 1e9)
    if x <= math.log(shapes[0][0]):
        return shapes[0][1]
    for (p0, l0), (p1, l1) in zip(shapes, shapes[1:]):
        if x <= math.log(p1):
            f = (x - math.log(p0)) / (math.log(p1) - math.log(p0))
            return round(l0 + f * (l1 - l0))
    return shapes[-1][1]


def params_from_bytes(model_bytes: float, quant: str = DEFAULT_QUANT) -> float:
    """Parameter count of a model file of this size in this GGUF type."""
    return model_bytes * 8 / bits_per_weight(quant)


# ----------------------------------------------------------------------------- calibration

def _same_model(a: Measurement, b: Measurement) -> bool:
    if a.model_key and b.model_key:
        return a.model_key == b.model_key
    if a.model_bytes and b.model_bytes:
        return abs(a.model_bytes / b.model_bytes - 1) < 0.01
    return a.model_bytes is None and b.model_bytes is None


def _obs_sigma(model_sigma: float, cv: float | None, n: int | None) -> float:
    """Observation noise: the model's error between chips plus the measurement's own spread."""
    meas = (cv / math.sqrt(n)) if cv and n else 0.0
    return math.hypot(model_sigma, meas)


@dataclass(frozen=True)
class Fit:
    """Log-scale factors on the priors, their covariance, and what they were fitted on."""

    theta: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]
    backends: frozenset[str]
    n: int


def _solve(residual_fn, n_params: int, prior_sigma: float) -> tuple[tuple, tuple]:
    """Regularised least squares in log space: (theta, covariance of theta).

    Each factor has a normal prior around 0 (the priors as shipped) with `prior_sigma`; the
    covariance is the inverse of J'J at the optimum (residuals are already in sigmas).
    """
    import numpy as np
    from scipy.optimize import least_squares

    def fn(theta):
        return np.concatenate([residual_fn(theta), np.asarray(theta) / prior_sigma])

    res = least_squares(fn, np.zeros(n_params), method="lm")
    cov = np.linalg.inv(res.jac.T @ res.jac)
    return tuple(float(t) for t in res.x), tuple(tuple(float(v) for v in row) for row in cov)


def fit_decode(measurements: Sequence[Measurement], chips: Mapping[str, Chip],
               priors: Priors) -> Fit | None:
    """Calibrate the memory and fixed-cost scale factors on every usable decode figure."""
    import numpy as np

    obs = []
    for m in measurements:
        if m.tg_tps and m.model_bytes and m.n_layers:
            chip = chips[m.chip_id]
            mem, fixed = decode_terms(chip, m.model_bytes, m.n_layers, priors)
            obs.append((mem, fixed, math.log(1 / m.tg_tps),
                        _obs_sigma(priors.decode_model_sigma, m.tg_cv, m.tg_n)))
    if not obs:
        return None
    mem, fixed, y, sig = (np.array(col) for col in zip(*obs))

    def residuals(theta):
        t = np.exp(theta[0]) * mem + np.exp(theta[1]) * fixed
        return (np.log(t) - y) / sig

    theta, cov = _solve(residuals, 2, priors.calibration_sigma)
    return Fit(theta, cov, frozenset(chips[m.chip_id].backend for m in measurements), len(obs))


def _prompt_prior(chip: Chip, n_params: float, priors: Priors) -> float | None:
    """Prompt tok/s the priors expect: achieved share of compute over 2 FLOPs per weight."""
    compute = prompt_compute(chip, priors)
    if compute is None:
        return None
    return priors.backend(chip.backend).prompt_efficiency * compute * 1e12 / (2 * n_params)


def fit_prompt(measurements: Sequence[Measurement], chips: Mapping[str, Chip],
               priors: Priors) -> Fit | None:
    """Calibrate the prompt-processing scale factor on every usable prompt figure."""
    import numpy as np

    obs = []
    for m in measurements:
        n_params = m.n_params or (params_from_bytes(m.model_bytes) if m.model_bytes else None)
        if not (m.pp_tps and n_params):
            continue
        prior = _prompt_prior(chips[m.chip_id], n_params, priors)
        if prior:
            obs.append((math.log(m.pp_tps / prior),
                        _obs_sigma(priors.prompt_model_sigma, m.pp_cv, m.pp_n)))
    if not obs:
        return None
    y, sig = (np.array(col) for col in zip(*obs))
    # Flat prior: the prompt prior's level (2 FLOPs per weight at a fixed share of peak)
    # ignores attention and small-model overheads, so measurements alone set the scale.
    theta, cov = _solve(lambda th: (th[0] - y) / sig, 1, PROMPT_PRIOR_SIGMA)
    return Fit(theta, cov, frozenset(chips[m.chip_id].backend for m in measurements), len(obs))


@dataclass
class Calibration:
    """Fits per backend (measurements on the target's own backend win), built lazily."""

    measurements: Sequence[Measurement]
    chips: Mapping[str, Chip]
    priors: Priors
    _cache: dict = field(default_factory=dict)

    def _fit(self, kind: str, backend: str | None, model_bytes: float | None = None) -> Fit | None:
        key = (kind, backend, model_bytes)
        if key not in self._cache:
            ms = [m for m in self.measurements
                  if backend is None or self.chips[m.chip_id].backend == backend]
            if model_bytes is not None:
                ms = [m for m in ms if _same_file_size(m, model_bytes)]
            fn = fit_decode if kind == "decode" else fit_prompt
            self._cache[key] = fn(ms, self.chips, self.priors) if ms else None
        return self._cache[key]

    def fit_for(self, kind: str, chip: Chip,
                model_bytes: float | None = None) -> tuple[Fit | None, bool]:
        """The fit for a chip and whether it crosses backends (wider range).

        With `model_bytes`, prompt figures of that same model file size (same shapes and
        quantization) win: the prompt rate per weight is far from constant across sizes and
        types (small models are bound by launches and attention, F16 and quantized weights
        take different kernels), so a figure of the very model scaled by compute beats a
        scale factor averaged over other models.
        """
        for size in ((model_bytes, None) if model_bytes is not None else (None,)):
            own = self._fit(kind, chip.backend, size)
            if own is not None:
                return own, False
        return self._fit(kind, None), True


def _same_file_size(m: Measurement, model_bytes: float) -> bool:
    """Whether `m` measured a model file of `model_bytes` (within 1%)."""
    return bool(m.model_bytes) and abs(m.model_bytes / model_bytes - 1) <= 0.01


def _interval(value: float, sd: float, priors: Priors) -> tuple[float, float, float]:
    half = priors.z * sd
    return value, value * math.exp(-half), value * math.exp(half)


def predict_decode(cal: Calibration, chip: Chip, model_bytes: float,
                   n_layers: int) -> tuple[float, float, float] | None:
    """Decode tok/s with its interval for one chip, from the calibration."""
    fit, crossed = cal.fit_for("decode", chip)
    if fit is None:
        return None
    priors = cal.priors
    mem, fixed = decode_terms(chip, model_bytes, n_layers, priors)
    a, b = math.exp(fit.theta[0]) * mem, math.exp(fit.theta[1]) * fixed
    t = a + b
    g = (a / t, b / t)
    var = sum(g[i] * fit.cov[i][j] * g[j] for i in range(2) for j in range(2))
    var += priors.decode_model_sigma ** 2
    if crossed:
        var += priors.cross_backend_sigma ** 2
    if not compute_tflops(chip, priors)[1]:
        var += (priors.unknown_compute_sigma * b / t) ** 2
    return _interval(1 / t, math.sqrt(var), priors)


def predict_prompt(cal: Calibration, chip: Chip, n_params: float,
                   model_bytes: float | None = None) -> tuple[float, float, float] | None:
    """Prompt tok/s with its interval, or None without a prompt figure on the chip's backend
    or a compute figure for the chip.

    Unlike decode, which every backend spends mostly moving the same bytes, prompt
    processing runs different kernels on different hardware units per backend (Metal's
    simdgroup matrices, CUDA's tensor cores): a Metal figure says too little about CUDA.
    """
    fit, crossed = cal.fit_for("prompt", chip, model_bytes)
    prior = _prompt_prior(chip, n_params, cal.priors)
    if fit is None or prior is None or crossed:
        return None
    priors = cal.priors
    var = fit.cov[0][0] + priors.prompt_model_sigma ** 2
    return _interval(prior * math.exp(fit.theta[0]), math.sqrt(var), priors)


# ----------------------------------------------------------------------------- public API

def _check_measurements(measurements: Iterable[Measurement],
                        chips: Mapping[str, Chip]) -> list[Measurement]:
    ms = list(measurements)
    if not ms:
        raise BenchkitError("no measurement to project from: give --tg (and --model-gb), "
                            "--from FILE, or put a result for the anchor chip under results/",
                            field="anchor")
    for m in ms:
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


def _select_chips(chips_arg: Iterable[str | Chip] | str | None, anchor: Chip,
                  all_chips: Mapping[str, Chip]) -> list[Chip]:
    """Chips to project onto: given ids, a vendor name, "all", or the anchor's vendor."""
    if chips_arg is None:
        chips_arg = anchor.vendor
    if isinstance(chips_arg, str):
        if chips_arg == "all":
            return list(all_chips.values())
        if chips_arg in ("apple", "nvidia", "amd"):
            return [c for c in all_chips.values() if c.vendor == chips_arg]
        chips_arg = [part for part in chips_arg.split(",") if part.strip()]
    return [c if isinstance(c, Chip) else get_chip(c, all_chips, field="--chips")
            for c in chips_arg]


def _target_model(anchor: Measurement, model_bytes: float | None, n_layers: int | None,
                  n_params: float | None, priors: Priors) -> tuple[float | None, int | None,
                                                                   float | None, bool]:
    """(bytes, layers, params, layers_estimated) of the model being projected."""
    same = model_bytes is None or (
        anchor.model_bytes is not None and abs(model_bytes / anchor.model_bytes - 1) < 0.01)
    nbytes = model_bytes if model_bytes is not None else anchor.model_bytes
    if nbytes is None:
        return None, n_layers, n_params, False
    params = n_params or (anchor.n_params if same else None) or params_from_bytes(nbytes)
    layers = n_layers or (anchor.n_layers if same else None)
    if layers:
        return nbytes, int(layers), params, False
    return nbytes, estimate_layers(params, priors), params, True


def _complete(m: Measurement, priors: Priors) -> Measurement:
    """A measurement with a size but no layer count gets the typical count for its size."""
    if m.model_bytes and not m.n_layers:
        params = m.n_params or params_from_bytes(m.model_bytes)
        return replace(m, n_layers=estimate_layers(params, priors))
    return m


def _check_fits_somewhere(model_bytes: float, all_chips: Mapping[str, Chip],
                          priors: Priors) -> None:
    if not any(fitting_memory(c, model_bytes, priors) for c in all_chips.values()):
        biggest = max(all_chips.values(),
                      key=lambda c: usable_memory_gb(c, c.memory_gb[-1], priors))
        raise BenchkitError(
            f"a {model_bytes / GB:.1f} GB model does not fit in any chip's memory (largest: "
            f"{biggest.id}, {biggest.memory_gb[-1]:g} GB of which "
            f"~{usable_memory_gb(biggest, biggest.memory_gb[-1], priors):.0f} GB usable by the GPU)",
            field="--model-gb")


def _bandwidth_factors(measurements: Sequence[Measurement], target: Measurement,
                       all_chips: Mapping[str, Chip]) -> tuple[float | None, float | None]:
    """tok/s per GB/s for decode and prompt: geometric mean over measurements of the model."""
    same = [m for m in measurements if _same_model(m, target)]
    out = []
    for attr in ("tg_tps", "pp_tps"):
        logs = [math.log(getattr(m, attr) / all_chips[m.chip_id].bandwidth_gbs)
                for m in same if getattr(m, attr)]
        out.append(math.exp(sum(logs) / len(logs)) if logs else None)
    return out[0], out[1]


def project(measurements: Iterable[Measurement], *, method: str = "roofline",
            model_bytes: float | None = None, n_layers: int | None = None,
            chips: Iterable[str | Chip] | str | None = None, n_params: float | None = None,
            priors: Priors | None = None) -> list[dict[str, Any]]:
    """One dict per chip: projected decode / prompt tok/s with ranges, fit and status.

    The first measurement is the anchor; the model projected is the anchor's unless
    `model_bytes` is given. `chips` takes ids, "apple" / "nvidia" / "amd" / "all"; the
    default is every chip of the anchor's vendor. Rows for chips whose memory cannot hold
    the model carry status "does not fit" and no figures.
    """
    if method not in METHODS:
        raise BenchkitError(f"unknown method {method!r}; use one of {', '.join(METHODS)}",
                            field="method")
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = [_complete(m, priors) for m in _check_measurements(measurements, all_chips)]
    anchor = ms[0]
    nbytes, layers, params, estimated = _target_model(anchor, model_bytes, n_layers, n_params,
                                                      priors)
    if method == "roofline" and nbytes is None:
        raise BenchkitError("the roofline method needs the model's size: give --model-gb (the "
                            "GGUF file's size in GB), or use --method bandwidth",
                            field="--model-gb")
    if nbytes is not None:
        _check_fits_somewhere(nbytes, all_chips, priors)
    target = Measurement(chip_id=anchor.chip_id, tg_tps=None, model_bytes=nbytes,
                         model_key=anchor.model_key if nbytes == anchor.model_bytes else None)
    cal = Calibration(ms, all_chips, priors)
    bw_tg, bw_pp = _bandwidth_factors(ms, anchor, all_chips)
    size_ratio = (anchor.model_bytes / nbytes) if (anchor.model_bytes and nbytes) else 1.0
    rows = []
    for chip in _select_chips(chips, get_chip(anchor.chip_id, all_chips), all_chips):
        measured = next((m for m in ms if m.chip_id == chip.id and _same_model(m, target)), None)
        fits = bool(fitting_memory(chip, nbytes, priors)) if nbytes is not None else True
        row: dict[str, Any] = {
            "chip": chip.id, "name": chip.name, "label": chip.label, "vendor": chip.vendor,
            "gpu_cores": chip.gpu_cores, "core_unit": chip.core_unit,
            "bandwidth_gbs": chip.bandwidth_gbs, "memory_gb": list(chip.memory_gb),
            "method": method, "model_gb": nbytes / GB if nbytes else None,
            "n_layers": layers, "n_layers_estimated": estimated,
            "tg_tps": None, "tg_low": None, "tg_high": None,
            "pp_tps": None, "pp_low": None, "pp_high": None,
            "fits": fits or measured is not None,
            "fits_memory_gb": list(fitting_memory(chip, nbytes, priors)) if nbytes else None,
            "measured_tg": measured.tg_tps if measured else None,
            "measured_pp": measured.pp_tps if measured else None,
            "measured_source": measured.source if measured else None,
            "status": "measured" if measured else ("not tested" if fits else "does not fit"),
        }
        if row["fits"]:
            if method == "bandwidth":
                if bw_tg:
                    tg = bw_tg * chip.bandwidth_gbs * size_ratio
                    row.update(tg_tps=tg, tg_low=tg, tg_high=tg)
                if bw_pp:
                    pp = bw_pp * chip.bandwidth_gbs * size_ratio
                    row.update(pp_tps=pp, pp_low=pp, pp_high=pp)
            else:
                tg = predict_decode(cal, chip, nbytes, layers)
                if tg:
                    row.update(tg_tps=tg[0], tg_low=tg[1], tg_high=tg[2])
                pp = predict_prompt(cal, chip, params, nbytes)
                if pp:
                    row.update(pp_tps=pp[0], pp_low=pp[1], pp_high=pp[2])
        rows.append(row)
    return rows


def size_table(chip_id: str, measurements: Iterable[Measurement], *, sizes_b: Sequence[float],
               quant: str = DEFAULT_QUANT, method: str = "roofline",
               priors: Priors | None = None) -> list[dict[str, Any]]:
    """Expected throughput on one chip for models of several sizes (billions of parameters)."""
    priors = priors or load_priors()
    bpw = bits_per_weight(quant, field="quant")
    chip = get_chip(chip_id)
    measurements = list(measurements)      # read once per size below
    rows = []
    for size in sizes_b:
        if not (isinstance(size, (int, float)) and size > 0):
            raise BenchkitError(f"model sizes must be positive, got {size!r}", field="sizes")
        n_params = size * 1e9
        nbytes = n_params * bpw / 8
        layers = estimate_layers(n_params, priors)
        fits_mem = fitting_memory(chip, nbytes, priors)
        row: dict[str, Any] = {
            "chip": chip.id, "name": chip.name, "size_b": size, "quant": quant.upper(),
            "model_gb": nbytes / GB, "n_layers": layers, "method": method,
            "tg_tps": None, "tg_low": None, "tg_high": None,
            "pp_tps": None, "pp_low": None, "pp_high": None,
            "fits": bool(fits_mem), "fits_memory_gb": list(fits_mem),
            "memory_gb": list(chip.memory_gb),
            "memory_needed_gb": memory_needed_gb(nbytes, priors),
        }
        if fits_mem:
            got = project(measurements, method=method, model_bytes=nbytes, n_layers=layers,
                          n_params=n_params, chips=[chip], priors=priors)[0]
            row.update({key: got[key] for key in ("tg_tps", "tg_low", "tg_high", "pp_tps",
                                                   "pp_low", "pp_high")})
        rows.append(row)
    return rows


def _model_label(m: Measurement) -> str:
    if m.model_name:
        return m.model_name
    return f"{m.model_bytes / GB:.2f} GB model" if m.model_bytes else "model"


def validate(measurements: Iterable[Measurement], *,
             methods: Sequence[str] = ("bandwidth", "roofline"),
             anchors: Iterable[str] | None = None,
             priors: Priors | None = None) -> dict[str, Any]:
    """Project from each anchor chip onto every other chip measured on the same model.

    Each anchor is calibrated on its own measurements only (all its model sizes), so every
    comparison is out of sample. Returns the pairs with their errors (projected / measured
    - 1), per-chip mean absolute errors and the mean absolute percentage error per method.
    """
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = _check_measurements(measurements, all_chips)
    anchor_ids = list(dict.fromkeys(anchors)) if anchors else list(
        dict.fromkeys(m.chip_id for m in ms))
    pairs = []
    for anchor_id in anchor_ids:
        anchor = get_chip(anchor_id, all_chips).id
        own = [m for m in ms if m.chip_id == anchor]
        for base in own:
            others = [m for m in ms if m.chip_id != base.chip_id and _same_model(m, base)]
            if not others:
                continue
            calib = [base] + [m for m in own if m is not base]
            chip_ids = [m.chip_id for m in others]
            projected = {meth: {r["chip"]: r for r in project(
                calib, method=meth, chips=chip_ids, priors=priors)} for meth in methods}
            for other in others:
                pair: dict[str, Any] = {
                    "anchor": base.chip_id, "chip": other.chip_id, "model": _model_label(base),
                    "measured_tg": other.tg_tps, "measured_pp": other.pp_tps,
                    "source": other.source}
                for meth in methods:
                    row = projected[meth][other.chip_id]
                    pair[meth] = {
                        "tg": row["tg_tps"], "tg_low": row["tg_low"], "tg_high": row["tg_high"],
                        "pp": row["pp_tps"], "pp_low": row["pp_low"], "pp_high": row["pp_high"],
                        "tg_error": _err(row["tg_tps"], other.tg_tps),
                        "pp_error": _err(row["pp_tps"], other.pp_tps)}
                pairs.append(pair)
    return {"pairs": pairs, "methods": list(methods), "per_chip": _per_chip(pairs, methods),
            "mape": {meth: {kind: _mape([p[meth][f"{kind}_error"] for p in pairs])
                            for kind in ("tg", "pp")} for meth in methods}}


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


# ----------------------------------------------------------------------------- from results

def measurements_from_frame(df: Any) -> list[Measurement]:
    """Measurements from `benchkit.load_results` rows, newest first.

    Only GPU rows with every layer offloaded, of ok cases, count: a CPU figure (or a
    CPU-GPU mix) says nothing about a GPU. Rows are grouped per device and model (sha256); within a group the newest
    tg* and the newest pp* test give the decode and prompt figures.
    """
    if df is None or len(df) == 0:
        return []
    rows = df[(df["device_kind"] == "gpu") & (df["status"] == "ok")]
    tests = rows["test"].astype(str)
    rows = rows[tests.str.fullmatch(r"(tg|pp)\d+")]
    # Partly offloaded runs mix CPU and GPU time: only whole-model GPU runs calibrate.
    full = rows["layers_offloaded"].fillna(0) >= rows["layers_total"].fillna(float("inf"))
    rows = rows[full | rows["layers_total"].isna()]
    if len(rows) == 0:
        return []
    out = []
    rows = rows.sort_values("started_at", ascending=False, kind="stable")
    for (device, sha), group in rows.groupby(["device_id", "model_sha256"], sort=False,
                                             dropna=False):
        tg = group[group["test"].astype(str).str.startswith("tg")]
        pp = group[group["test"].astype(str).str.startswith("pp")]
        first = group.iloc[0]
        t = tg.iloc[0] if len(tg) else None
        p = pp.iloc[0] if len(pp) else None
        out.append(Measurement(
            chip_id=str(device), tg_tps=_num(t, "tps_mean"), pp_tps=_num(p, "tps_mean"),
            model_bytes=_num(first, "model_size_bytes"),
            n_layers=int(_num(first, "model_layers")) if _num(first, "model_layers") else None,
            n_params=_num(first, "model_params"), source=str(first["file"]),
            model_key=None if _missing(sha) else str(sha),
            model_name=None if _missing(first.get("model_name")) else str(first["model_name"]),
            tg_n=int(_num(t, "n")) if _num(t, "n") else None, tg_cv=_num(t, "tps_cv"),
            pp_n=int(_num(p, "n")) if _num(p, "n") else None, pp_cv=_num(p, "tps_cv"),
            started_at=str(first["started_at"]),
            tg_test=str(t["test"]) if t is not None else None,
            pp_test=str(p["test"]) if p is not None else None))
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(row: Any, key: str) -> float | None:
    if row is None:
        return None
    value = row.get(key)
    if _missing(value):
        return None
    return float(value)


def find_result_files(root: str | Any) -> list[Any]:
    """Every result file under a folder, recursively (results/community/ included)."""
    from pathlib import Path

    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.json")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def measurements_from_results(paths: Sequence[Any]) -> list[Measurement]:
    """Measurements on chips the database knows, from result files, newest first."""
    if not paths:
        return []
    from benchkit.frame import load_results

    chips = load_chips()
    return [m for m in measurements_from_frame(load_results(list(paths)))
            if m.chip_id in chips]


def gather_measurements(anchor: str | None, *, from_file: str | None = None,
                        results_dir: str | None = "results", tg: float | None = None,
                        pp: float | None = None, model_gb: float | None = None,
                        layers: int | None = None, anchor_only: bool = False
                        ) -> list[Measurement]:
    """The measurements `benchkit project` works from, anchor first.

    The anchor comes from the command line (--tg / --pp), from one result file (--from), or
    from the newest result for the anchor chip under the results folder. Other measurements
    of the same model (and the anchor chip's other models) join the calibration unless
    `anchor_only`; they also mark chips as measured.
    """
    chips = load_chips()
    anchor_id = get_chip(anchor, chips, field="--anchor").id if anchor else None
    for name, value in (("--tg", tg), ("--pp", pp), ("--model-gb", model_gb),
                        ("--layers", layers)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise BenchkitError(f"must be a positive number, got {value:g}", field=name)
    if tg is not None or pp is not None:
        if anchor_id is None:
            raise BenchkitError("--tg / --pp need --anchor CHIP: the chip they were measured on",
                                field="--anchor")
        first = Measurement(chip_id=anchor_id, tg_tps=tg, pp_tps=pp,
                            model_bytes=model_gb * GB if model_gb else None, n_layers=layers,
                            source="command line")
        if from_file:
            raise BenchkitError("give the anchor's figures either as numbers (--tg / --pp) or "
                                "as a result file (--from), not both", field="--from")
        rest = [] if anchor_only else measurements_from_results(
            find_result_files(results_dir or "results"))
        return [first] + [m for m in rest if m.chip_id != anchor_id and _same_model(m, first)]
    if from_file:
        found = measurements_from_results([from_file])
        if not found:
            raise BenchkitError("no GPU measurement of a chip in the database here (tg*/pp* "
                                "tests with layers offloaded)", file=from_file)
    else:
        found = measurements_from_results(find_result_files(results_dir or "results"))
    if anchor_id is None:
        if not from_file:
            raise BenchkitError("give --anchor CHIP (with --tg TPS, --from FILE, or a result "
                                "for that chip under results/)", field="--anchor")
        anchor_id = found[0].chip_id
    own = [m for m in found if m.chip_id == anchor_id]
    if not own:
        where = from_file or f"{results_dir or 'results'}/"
        raise BenchkitError(f"no measurement for {anchor_id}: give --tg TPS (and --model-gb "
                            f"GB), --from FILE, or put a result for {anchor_id} under results/ "
                            f"(searched {where})", field="--anchor")
    first = own[0]
    if anchor_only:
        return [first]
    return [first] + [m for m in found if m is not first and (
        m.chip_id == anchor_id or _same_model(m, first))]

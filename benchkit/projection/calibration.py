"""Calibration: measured figures scale the priors (two log-scale factors for decode, one for
prompt), and every projected figure gets its prediction interval."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from benchkit.projection.chips import Chip
from benchkit.projection.placement import Host, RunConfig
from benchkit.projection.measurements import Measurement, chip_of, shape_of
from benchkit.projection.physics import (compute_tflops, decode_terms, host_decode_seconds,
                                         host_prompt_seconds, prompt_prior, weight_group)
from benchkit.projection.priors import Priors
from benchkit.projection.shapes import ModelShape, guess_shape, quant_kind

PROMPT_PRIOR_SIGMA = 100.0   # effectively flat: see fit_prompt


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
    attention_share: float = 0.0   # prompt fits: the anchors' mean `attention_share`


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
    """Calibrate the streaming and fixed-cost scale factors on every usable decode figure."""
    import numpy as np

    obs = []
    for m in measurements:
        shape = shape_of(m, priors)
        if not (m.tg_tps and shape) or (m.config.partial and m.host is None):
            continue
        stream, fixed = decode_terms(chip_of(m, chips), shape, m.n_layers, priors,
                                     m.depth, m.tg_tokens, m.config)
        host = host_decode_seconds(shape, m.config, m.host, priors)
        if host >= 1 / m.tg_tps:
            continue            # the host alone is slower than measured: nothing to scale
        obs.append((stream, fixed, host, math.log(1 / m.tg_tps),
                    _obs_sigma(priors.observation_sigma, m.tg_cv, m.tg_n)))
    if not obs:
        return None
    stream, fixed, host, y, sig = (np.array(col) for col in zip(*obs))

    def residuals(theta):
        t = np.exp(theta[0]) * stream + np.exp(theta[1]) * fixed + host
        return (np.log(t) - y) / sig

    theta, cov = _solve(residuals, 2, priors.calibration_sigma)
    return Fit(theta, cov, frozenset(chip_of(m, chips).backend for m in measurements), len(obs))


def fit_prompt(measurements: Sequence[Measurement], chips: Mapping[str, Chip],
               priors: Priors) -> Fit | None:
    """Calibrate the prompt-processing scale factor on every usable prompt figure."""
    import numpy as np

    obs = []
    for m in measurements:
        shape = shape_of(m, priors)
        if not (m.pp_tps and shape) or (m.config.partial and m.host is None):
            continue
        chip = chip_of(m, chips)
        prior, share = prompt_prior(chip, shape, priors, m.depth, m.pp_tokens,
                                    m.units_on(chip.backend), m.config)
        gpu_s = 1 / m.pp_tps - host_prompt_seconds(shape, m.config, m.host, priors,
                                                    m.pp_tokens)
        if prior and gpu_s > 0:
            obs.append((math.log(1 / gpu_s / prior),
                        _obs_sigma(priors.observation_sigma, m.pp_cv, m.pp_n), share))
    if not obs:
        return None
    y, sig, share = (np.array(col) for col in zip(*obs))
    # Flat prior: software versions move the prompt rate by tens of percent, so the
    # measurements alone set the level; the priors set how it moves between chips.
    theta, cov = _solve(lambda th: (th[0] - y) / sig, 1, PROMPT_PRIOR_SIGMA)
    weight = sig ** -2.0
    return Fit(theta, cov, frozenset(chip_of(m, chips).backend for m in measurements), len(obs),
               float((weight * share).sum() / weight.sum()))


@dataclass
class Calibration:
    """Fits per backend (measurements on the target's own backend win), built lazily."""

    measurements: Sequence[Measurement]
    chips: Mapping[str, Chip]
    priors: Priors
    _cache: dict = field(default_factory=dict)

    def _fit(self, kind: str, backend: str | None, model_bytes: float | None = None,
             group: str | None = None) -> Fit | None:
        key = (kind, backend, model_bytes, group)
        if key not in self._cache:
            # Partly offloaded figures hold the host's time, which the GPU's scale factors
            # must not absorb: only whole-model GPU figures calibrate.
            ms = [m for m in self.measurements if not m.config.partial
                  and (backend is None or chip_of(m, self.chips).backend == backend)]
            if model_bytes is not None:
                ms = [m for m in ms if _same_file_size(m, model_bytes)]
            if group is not None:
                ms = [m for m in ms if m.quant is None or weight_group(m.quant) == group]
            fn = fit_decode if kind == "decode" else fit_prompt
            self._cache[key] = fn(ms, self.chips, self.priors) if ms else None
        return self._cache[key]

    def decode_fit(self, chip: Chip) -> tuple[Fit | None, bool]:
        """The decode fit for a chip and whether it crosses backends (wider range); the
        prompt's is `prompt_fit`."""
        own = self._fit("decode", chip.backend)
        if own is not None:
            return own, False
        return self._fit("decode", None), True

    def prompt_fit(self, chip: Chip, model_bytes: float | None,
                   quant: str | None) -> tuple[Fit | None, bool, bool]:
        """The prompt fit for a chip: (fit, crosses backends, crosses weight groups).

        Figures of the same model file win, then figures of models whose weights take the
        same kernels (F16 or quantized: `weight_group`), then any on the backend. The last
        crosses weight groups: how a quantized model's prompt rate relates to an F16
        model's is what the priors capture worst (docs/projection.md, "Across
        quantization types"), and the range is widened by `cross_quant_sigma`. A
        measurement of unknown quantization counts as either group.
        """
        if model_bytes is not None:
            own = self._fit("prompt", chip.backend, model_bytes)
            if own is not None:
                return own, False, False
        if quant is not None:
            own = self._fit("prompt", chip.backend, None, weight_group(quant))
            if own is not None:
                return own, False, False
        own = self._fit("prompt", chip.backend)
        if own is not None:
            return own, False, quant is not None
        return self._fit("prompt", None), True, False


def _same_file_size(m: Measurement, model_bytes: float) -> bool:
    """Whether `m` measured a model file of `model_bytes` (within 1%)."""
    return bool(m.model_bytes) and abs(m.model_bytes / model_bytes - 1) <= 0.01


def _interval(value: float, sd: float, priors: Priors) -> tuple[float, float, float]:
    half = priors.z * sd
    return value, value * math.exp(-half), value * math.exp(half)


def _sigma(table: Mapping[str, float], backend: str) -> float:
    return float(table.get(backend, table["default"]))


def range_notes(chip: Chip, priors: Priors, crossed: bool, quant: str | None,
                kind: str = "decode") -> list[str]:
    """Why a projection lies outside what the model was fitted and checked on, if it does."""
    notes = []
    cal = priors.calibrated.get(chip.backend)
    if not cal:
        notes.append(f"no {chip.backend} measurement was used to fit or check the model"
                     + (", nor calibrates this projection" if crossed else ""))
    else:
        if cal.get("few_chips"):
            notes.append(f"the {chip.backend} model rests on a few published chips (docs/"
                         "projection.md, \"HIP and Vulkan\")")
        if crossed:
            notes.append(f"no measurement on the {chip.backend} backend calibrates this projection")
        if chip.memory_class not in cal.get("memory", ()):
            notes.append(f"no {chip.memory_class.upper()} part on {chip.backend} in the "
                         "validation data")
        if quant and quant_kind(quant) not in cal.get(f"{kind}_quants", cal.get("quants", ())):
            notes.append(f"no {quant.upper()}-type model on {chip.backend} in the validation data")
    if not compute_tflops(chip, priors)[1]:
        notes.append("the chip's GPU clock is not published (assumed)")
    return notes


def predict_decode(cal: Calibration, chip: Chip, model: ModelShape | float,
                   n_layers: int | None = None, depth: float = 0,
                   n_gen: int = 128, config: RunConfig = RunConfig(),
                   host: Host | None = None,
                   transfer: bool = False) -> tuple[float, float, float] | None:
    """Decode tok/s with its prediction interval for one chip, from the calibration.

    The interval's width is the leave-one-chip-out spread of the model on the validation
    data (projection.yaml `uncertainty.decode_sigma`), widened by the calibration's own
    uncertainty and, across backends or for an unknown clock, by the sigmas stated there.
    A partly offloaded placement adds the host's time (not calibrated by the GPU
    figures) and `host_sigma` in proportion to its share.
    """
    fit, crossed = cal.decode_fit(chip)
    if fit is None:
        return None
    priors = cal.priors
    stream, fixed = decode_terms(chip, model, n_layers, priors, depth, n_gen, config)
    shape = model if isinstance(model, ModelShape) else None
    h = host_decode_seconds(shape, config, host, priors) if shape is not None else 0.0
    a, b = math.exp(fit.theta[0]) * stream, math.exp(fit.theta[1]) * fixed
    t = a + b + h
    g = (a / t, b / t)
    var = sum(g[i] * fit.cov[i][j] * g[j] for i in range(2) for j in range(2))
    var += _sigma(priors.decode_sigma, chip.backend) ** 2
    checked = priors.calibrated.get(chip.backend)
    if crossed or not checked or checked.get("few_chips"):
        var += priors.cross_backend_sigma ** 2     # a backend checked on a few chips, or none
    if not compute_tflops(chip, priors)[1]:
        var += (priors.unknown_compute_sigma * b / t) ** 2
    var += (priors.host_sigma * h / t) ** 2
    if transfer:
        var += _sigma(priors.model_transfer_sigma, chip.backend) ** 2
    return _interval(1 / t, math.sqrt(var), priors)


def predict_prompt(cal: Calibration, chip: Chip, model: ModelShape | float,
                   model_bytes: float | None = None, depth: float = 0,
                   n_prompt: int = 512, units: Mapping[str, str] | None = None,
                   config: RunConfig = RunConfig(), host: Host | None = None,
                   transfer: bool = False) -> tuple[float, float, float] | None:
    """Prompt tok/s with its interval, or None without a prompt figure on the chip's backend
    or a compute figure for the chip.

    Unlike decode, which every backend spends mostly moving the same bytes, prompt
    processing runs different kernels on different hardware units per backend (Metal's
    simdgroup matrices, CUDA's tensor cores): a Metal figure says too little about CUDA.
    """
    priors = cal.priors
    shape = model if isinstance(model, ModelShape) else guess_shape(
        float(model), model_bytes, None, None, priors)
    fit, crossed, other_group = cal.prompt_fit(chip, model_bytes, shape.quant)
    prior, share = prompt_prior(chip, shape, priors, depth, n_prompt, units, config)
    if fit is None or prior is None or crossed:
        return None
    gpu_s = 1 / (prior * math.exp(fit.theta[0]))
    h = host_prompt_seconds(shape, config, host, priors, n_prompt)
    var = fit.cov[0][0] + _sigma(priors.prompt_sigma, chip.backend) ** 2
    if other_group:
        var += _sigma(priors.cross_quant_sigma, chip.backend) ** 2
    # The calibration absorbs the attention term's error at the anchors' depths, not at
    # another depth: widen by how much more (or less) of the time it makes here.
    deeper = share - fit.attention_share
    var += (deeper * _sigma(priors.depth_attention_sigma, chip.backend)) ** 2
    var += (priors.host_sigma * h / (gpu_s + h)) ** 2
    if transfer:
        var += _sigma(priors.model_transfer_sigma, chip.backend) ** 2
    return _interval(1 / (gpu_s + h), math.sqrt(var), priors)

"""The fit of the roofline's global parameters and its held-out checks.

The parameters (per backend, memory class and quantization kind) are fitted by least
squares on log time per token (`fit_all`). Every check refits them without what it
projects: the target's chip or generation (`held_out`), the deeper cases of a model file
(`depth_pairs`); the pairs across quantization types (`quant_pairs`) are never fitted. The
sigmas of projection.yaml's `uncertainty` come from these pairs. scripts/projection_accuracy.py
prints them; docs/projection.md reports them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.optimize import least_squares

from benchkit.projection.api import project
from benchkit.projection.chips import load_chips
from benchkit.projection.measurements import KERNEL_ENGINES, Measurement, chip_of
from benchkit.projection.physics import (attention_share, decode_terms, host_decode_seconds,
                                         host_prompt_seconds, prompt_gemm, prompt_seconds,
                                         sustained_clock_share, weight_group)
from benchkit.projection.priors import BackendPriors, Priors, with_backend
from benchkit.projection.shapes import quant_kind
from benchkit.projection.validation import validate


# Bounds in log space: shares of a peak stay below 1.65, the power law's exponent between
# 1 (voltage at its floor) and 3 (voltage in step with the clock); everything else is free.
BOUNDS = {key: (-12.0, 0.5) for key in ("efficiency", "efficiency_multi_die",
                                         "prompt_multi_die_share", "prompt_efficiency",
                                         "prompt_attention")}
BOUNDS["prompt_power_exponent"] = (0.0, math.log(3.0))


def _fa_both(ms: list[Measurement], b: BackendPriors) -> bool:
    """Whether rows ran with flash attention both off and on (what pins its cost)."""
    used = {b.default_flash_attn if m.config.flash_attn is None else m.config.flash_attn
            for m in ms}
    return len(used) == 2


def _paths(ms: list[Measurement], chips, backend: BackendPriors, kind: str) -> list[tuple]:
    """The parameters the data can pin: one per memory class, quant kind, etc. present."""
    cs = [chip_of(m, chips) for m in ms]
    moe = any(m.shape is not None and m.shape.is_moe for m in ms)
    if kind == "decode":
        paths = [("efficiency", c) for c in sorted({c.memory_class for c in cs})]
        if any(c.multi_die for c in cs):
            paths.append(("efficiency_multi_die",))
        paths += [("layer_latency_ms",), ("layer_compute_ms_tflops",)]
        paths += [("dequant", k) for k in sorted({quant_kind(m.quant) for m in ms}) if k != "f16"]
        paths += [("fa_off_layer_us",)] if _fa_both(ms, backend) else []
        paths += [("moe_layer_us",)] if moe else []
        if len({m.shape.tensors_per_layer for m in ms if m.shape is not None}) > 1:
            paths.append(("layer_tensor_us",))
        if {m.config.legacy_build for m in ms} == {True, False}:
            paths.append(("legacy_layer_us",))
        return paths
    groups = sorted({"f16" if quant_kind(m.quant) == "f16" else "quant" for m in ms if m.pp_tps})
    gemms = sorted({prompt_gemm(c, backend, m.quant, m.units_on(c.backend))
                    for c, m in zip(cs, ms) if m.pp_tps})
    paths = [("prompt_efficiency", g) for g in gemms] + [("prompt_vector", g) for g in groups]
    if any(c.multi_die for c, m in zip(cs, ms) if m.pp_tps):
        paths.append(("prompt_multi_die_share",))
    if backend.prompt_attention and any(m.depth for m in ms if m.pp_tps):
        paths.append(("prompt_attention",))
    if backend.prompt_power and any(c.board_power_w for c, m in zip(cs, ms) if m.pp_tps):
        paths += [("prompt_power",), ("prompt_power_exponent",)]
    paths.append(("prompt_layer_us",))
    paths += [("fa_off_kq_passes",)] if _fa_both([m for m in ms if m.pp_tps], backend) else []
    if any(m.shape is not None and m.shape.is_moe for m in ms if m.pp_tps):
        paths += [("moe_prompt_tokens_half",), ("moe_prompt_layer_us",)]
    return paths


def _get(b: BackendPriors, path: tuple) -> float:
    value = getattr(b, path[0])
    return float(value.get(path[1], 0.0)) if len(path) == 2 else float(value)


def _set(b: BackendPriors, values: dict[tuple, float]) -> BackendPriors:
    changes: dict[str, Any] = {}
    for path, v in values.items():
        if len(path) == 2:
            changes.setdefault(path[0], dict(getattr(b, path[0])))[path[1]] = v
        else:
            changes[path[0]] = v
    return replace(b, **changes)


def fit_backend(ms: list[Measurement], name: str, base: Priors) -> tuple[BackendPriors, dict]:
    """Least-squares fit of one backend's decode and prompt parameters on log time per token.

    Parameters are fitted in log space (all are positive), with a weak pull (sigma = 2 in
    log) towards the shipped values so that a parameter the data cannot pin stays put.
    The power law is the exception: when no chip of the training rows runs power-limited
    under the fitted values, nothing in them pins it, and keeping the shipped value would
    carry the held-out chips' own figures into a held-out check; it is switched off
    (prompt_power 0) instead.
    """
    chips = load_chips()
    ms = [m for m in ms if chip_of(m, chips).backend == name and not m.config.partial]
    b = base.backend(name)
    rms = {}
    for kind in ("decode", "prompt"):
        rows = [m for m in ms if (m.tg_tps if kind == "decode" else m.pp_tps)
                and m.shape is not None]
        if not rows:
            continue
        b, rms[kind] = _fit_rows(rows, chips, b, name, base, kind)
        if kind == "prompt" and b.prompt_power and not _power_limited(rows, chips, b, base):
            b, rms[kind] = _fit_rows(rows, chips, replace(b, prompt_power=0.0), name, base, kind)
    return b, rms


def _power_limited(rows: list[Measurement], chips, b: BackendPriors, base: Priors) -> bool:
    """Whether any chip of the rows runs below its boost clock under the power law."""
    return any(sustained_clock_share(chip_of(m, chips), b, base) < 1 for m in rows)


def _fit_rows(rows: list[Measurement], chips, b: BackendPriors, name: str, base: Priors,
              kind: str) -> tuple[BackendPriors, float]:
    """One least-squares fit of the `kind` parameters the rows can pin; (fitted, rms)."""
    paths = _paths(rows, chips, b, kind)
    k = len(paths)
    x0 = np.log([max(_get(b, p), 1e-4) for p in paths])
    model = _model_fn(rows, chips, name, base, kind)
    # One free level per model file (a nuisance, not used to project): each series ran
    # its own llama.cpp build, and a projection always starts from a measurement of
    # the same model, so only the ratios between chips must come out of the parameters.
    levels = [m.level_key or m.model_key for m in rows]
    keys = list(dict.fromkeys(levels))
    index = np.array([keys.index(level) for level in levels])

    def res(x):
        trial = _set(b, {p: math.exp(v) for p, v in zip(paths, x[:k])})
        return np.concatenate([model(trial) - x[k:][index], (x[:k] - x0) / 2.0])

    lo = np.concatenate([[BOUNDS.get(p[0], (-12.0, 8.0))[0] for p in paths],
                         np.full(len(keys), -3.0)])
    hi = np.concatenate([[BOUNDS.get(p[0], (-12.0, 8.0))[1] for p in paths],
                         np.full(len(keys), 3.0)])
    start = np.concatenate([np.clip(x0, lo[:k] + 1e-6, hi[:k] - 1e-6), np.zeros(len(keys))])
    fit = least_squares(res, start, bounds=(lo, hi))
    fitted = _set(b, {p: math.exp(v) for p, v in zip(paths, fit.x[:k])})
    return fitted, float(np.sqrt(np.mean((model(fitted) - fit.x[k:][index]) ** 2)))


def _model_fn(rows, chips, name, base, kind) -> Callable[[BackendPriors], np.ndarray]:
    """Residuals log(model time) - log(measured time) for trial parameters."""
    y = np.array([math.log(1 / (m.tg_tps if kind == "decode" else m.pp_tps)) for m in rows])

    def fn(trial: BackendPriors) -> np.ndarray:
        pri = with_backend(base, name, trial)
        out = []
        for m in rows:
            chip = chip_of(m, chips)
            if kind == "decode":
                t = sum(decode_terms(chip, m.shape, m.n_layers, pri, m.depth, m.tg_tokens,
                                     m.config))
            else:
                t = prompt_seconds(chip, m.shape, pri, m.depth, m.pp_tokens,
                                   m.units_on(chip.backend), m.config) or 1.0
            out.append(math.log(t))
        return np.array(out) - y

    return fn


def fit_all(ms: list[Measurement], base: Priors) -> tuple[Priors, dict]:
    """Every backend with data refitted (the others keep their assumed values), then the
    host terms on the partly offloaded rows (fit_host)."""
    chips = load_chips()
    priors, report = base, {}
    for name in sorted({chip_of(m, chips).backend for m in ms if not m.config.partial}):
        fitted, rms = fit_backend(ms, name, priors)
        priors = with_backend(priors, name, fitted)
        report[name] = rms
    priors, host_rms = fit_host(ms, priors)
    if host_rms:
        report["host"] = host_rms
    return priors, report


def fit_host(ms: list[Measurement], priors: Priors) -> tuple[Priors, dict]:
    """The host terms (projection.yaml `host`) on the partly offloaded rows.

    Each such row is paired with the same file's fully offloaded row at the same flash
    attention: the GPU's part of the partial run is that measured time scaled by the
    model's GPU time with and without the placement, so only the host's terms are left
    to explain the rest. Decode pins the CPU's share of the host bandwidth and the costs
    per hand-over and CPU layer; prompt the link's share.
    """
    pairs = [(m, full) for m in ms if m.config.partial and m.host is not None
             for full in ms if full.model_key == m.model_key and not full.config.partial
             and full.config.flash_attn == m.config.flash_attn]
    if not pairs:
        return priors, {}
    chips = load_chips()
    names = ("cpu_efficiency", "switch_us", "cpu_layer_us", "link_efficiency")
    x0 = np.log([priors.host[n] for n in names])

    def residuals(x: np.ndarray) -> np.ndarray:
        trial = replace(priors, host=dict(zip(names, np.exp(x))))
        out = []
        for m, full in pairs:
            chip = chip_of(m, chips)
            if m.tg_tps and full.tg_tps:
                gpu = (sum(decode_terms(chip, m.shape, None, trial, 0, m.tg_tokens, m.config))
                       / sum(decode_terms(chip, m.shape, None, trial, 0, m.tg_tokens,
                                          full.config)) / full.tg_tps)
                t = gpu + host_decode_seconds(m.shape, m.config, m.host, trial)
                out.append(math.log(t * m.tg_tps))
            if m.pp_tps and full.pp_tps:
                t = 1 / full.pp_tps + host_prompt_seconds(m.shape, m.config, m.host, trial,
                                                          m.pp_tokens)
                out.append(math.log(t * m.pp_tps))
        return np.concatenate([out, (x - x0) / 3.0])

    fit = least_squares(residuals, x0)
    fitted = replace(priors, host=dict(zip(names, (float(v) for v in np.exp(fit.x)))))
    n = len(fit.fun) - len(names)
    return fitted, {"decode+prompt": float(np.sqrt(np.mean(fit.fun[:n] ** 2)))}


def held_out(ms: list[Measurement], base: Priors, vendor: str | None, group: str,
             backend: str | None = None) -> list[dict]:
    """Pairs projected with the parameters refitted without the target's chip / family.

    `vendor` and `backend` choose the measurements checked: a vendor's chips on its own
    backend (NVIDIA on CUDA: a Vulkan run on an NVIDIA card is the Vulkan check's), or
    every chip measured on `backend` whatever its maker (vendor None: HIP, Vulkan). The
    latter refits that backend's parameters alone, the only ones its pairs use.
    """
    chips = load_chips()
    mine = [m for m in ms if (vendor is None or chips[m.chip_id].vendor == vendor)
            and (backend is None or chip_of(m, chips).backend == backend)]
    key = (lambda c: c.id) if group == "chip" else (lambda c: c.family)
    pairs = []
    for held in sorted({key(chips[m.chip_id]) for m in mine}):
        train = [m for m in ms if key(chips[m.chip_id]) != held]
        if vendor is None and backend is not None:
            priors = with_backend(base, backend, fit_backend(train, backend, base)[0])
        else:
            priors, _ = fit_all(train, base)
        pairs += file_pairs(mine, priors, {m.chip_id for m in mine
                                           if key(chips[m.chip_id]) == held})
    return pairs


def file_pairs(ms: list[Measurement], priors: Priors,
               targets: set[str] | None = None) -> list[dict]:
    """Each chip (of `targets`, default every one) projected from every other chip that
    measured the same model file, each anchor calibrated on that file alone."""
    pairs = []
    for model in dict.fromkeys(m.model_key for m in ms):
        same = [m for m in ms if m.model_key == model]
        if targets is not None and not any(m.chip_id in targets for m in same):
            continue
        anchors = [c for c in dict.fromkeys(m.chip_id for m in same)
                   if targets is None or c not in targets]
        pairs += validate(same, anchors=anchors, priors=priors, targets=targets)["pairs"]
    return pairs


def run_of(m: Measurement) -> str:
    """One build's figures: a published series, or a result file and engine."""
    if not m.source.endswith(".json"):
        return m.source
    return f"{Path(m.source).name} ({(m.model_key or '').partition(':')[2] or KERNEL_ENGINES[0]})"


def quant_pairs(ms: list[Measurement], priors: Priors) -> list[dict]:
    """Every depth-0 prompt figure projected from each figure of the same chip and run whose
    weights take the other kernels (F16 <-> quantized), the case `Calibration.prompt_fit`
    widens. The fit gives every model file its own level, so it never saw these ratios."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in ms:
        if m.pp_tps and not m.depth and m.quant and m.shape:
            groups.setdefault((m.chip_id, run_of(m)), []).append(m)
    chips, pairs = load_chips(), []
    for (chip, run), rows in groups.items():
        for a in rows:
            for t in rows:
                if weight_group(a.quant) == weight_group(t.quant):
                    continue
                row = project([a], chips=[chip], shape=t.shape, priors=priors)[0]
                pairs.append({"chip": chip, "run": run, "anchor": a.model_name,
                              "target": t.model_name, "target_quant": t.quant,
                              "measured_pp": t.pp_tps, "backend": chips[chip].backend,
                              "roofline": _scored(row, t)})
    return pairs


def cross_quant_sigma(pairs: list[dict], backend: str, priors: Priors) -> float:
    """The sigma that, added in quadrature to the prompt sigma, makes the 90% range hold
    9 in 10 of the backend's pairs across quantization types."""
    mine = [p for p in pairs if p["backend"] == backend]
    total = sigmas(mine, priors.interval).get("pp", 0.0)
    base = priors.prompt_sigma.get(backend, priors.prompt_sigma["default"])
    return math.sqrt(max(total ** 2 - base ** 2, 0.0))


def _file_of(m: Measurement) -> str:
    """The model file of a committed measurement (its key without the engine)."""
    return str(m.model_key).split(":")[0]


def depth_pairs(ms: list[Measurement], base: Priors) -> list[dict]:
    """Each case at a context depth projected from depth 0, with that model file's deeper
    cases held out of the fit (the other file's stay in): from the same chip, engine and
    run, and from every other chip that measured the file at depth 0 with the same engine."""
    deep = [m for m in ms if m.depth > 0]
    pairs = []
    for file in dict.fromkeys(_file_of(m) for m in deep):
        priors, _ = fit_all([m for m in ms if not (m.depth > 0 and _file_of(m) == file)], base)
        for target in (m for m in deep if _file_of(m) == file):
            for anchor in (m for m in ms if m.depth == 0 and m.model_key == target.model_key):
                pairs.append(_depth_pair(anchor, target, priors))
    return pairs


def _depth_pair(anchor: Measurement, target: Measurement, priors: Priors) -> dict:
    """One depth projection, scored like `validate`'s pairs (bandwidth: the depth-0 figure
    scaled by bandwidth, which knows no depth)."""
    pair: dict[str, Any] = {"anchor": anchor.chip_id, "chip": target.chip_id,
                            "model": target.model_name, "depth": target.depth,
                            "engine": (target.model_key.split(":") + [KERNEL_ENGINES[0]])[1],
                            "measured_tg": target.tg_tps, "measured_pp": target.pp_tps,
                            "attention_share": attention_share(
                                load_chips()[target.chip_id], target.shape, priors,
                                target.depth, target.pp_tokens)}
    for method in ("bandwidth", "roofline"):
        row = project([anchor], method=method, chips=[target.chip_id], depth=target.depth,
                      priors=priors)[0]
        pair[method] = _scored(row, target)
    return pair


def window_depth_pairs(ms: list[Measurement], priors: Priors) -> list[dict]:
    """Each depth case of runs that no fit saw, projected from depth 0 of the same file,
    chip and setting with `priors` as they are, scored like `depth_pairs`; for a model with
    sliding-window layers also as if every layer attended to the whole context
    (`no_window`): what the window terms change."""
    pairs = []
    for target in (m for m in ms if m.depth > 0):
        for anchor in (m for m in ms if m.depth == 0 and m.model_key == target.model_key
                       and m.chip_id == target.chip_id and m.config == target.config):
            pair = _depth_pair(anchor, target, priors)
            shape = anchor.shape
            if shape is not None and shape.n_swa_layers:
                full = replace(anchor, shape=replace(shape, sliding_window=0, n_swa_layers=0))
                row = project([full], method="roofline", chips=[target.chip_id],
                              depth=target.depth, priors=priors)[0]
                pair["no_window"] = _scored(row, target)
            pairs.append(pair)
    return pairs


def depth_attention_sigma(pairs: list[dict], interval: float) -> float:
    """The sigma of `uncertainty.depth_attention_sigma`: over the same-chip depth pairs
    (whose depth-0 anchor leaves the attention term as the only new error), the
    `interval` quantile of |log error| / attention share, over the interval's z."""
    return _interval_sigma([abs(math.log(1 + p["roofline"]["pp_error"])) / p["attention_share"]
                            for p in pairs if p["anchor"] == p["chip"]
                            and p["roofline"]["pp_error"] is not None
                            and p["attention_share"] > 0], interval) or 0.0


def _scored(row: dict[str, Any], target: Measurement) -> dict[str, Any]:
    """A projected row's figures, ranges and errors against the measured target, per kind
    (tg, pp): what mape, coverage and sigmas read."""
    out: dict[str, Any] = {}
    for kind in ("tg", "pp"):
        out.update({kind: row[f"{kind}_tps"], f"{kind}_low": row[f"{kind}_low"],
                    f"{kind}_high": row[f"{kind}_high"],
                    f"{kind}_error": _rel(row[f"{kind}_tps"], getattr(target, f"{kind}_tps"))})
    return out


def _rel(projected: float | None, measured: float | None) -> float | None:
    return projected / measured - 1 if projected and measured else None


def sigmas(pairs: list[dict], interval: float) -> dict[str, float]:
    """Log-space sigma whose central `interval` holds that share of held-out errors."""
    out = {}
    for kind in ("tg", "pp"):
        sigma = _interval_sigma([abs(math.log(1 + p["roofline"][f"{kind}_error"]))
                                 for p in pairs if p["roofline"][f"{kind}_error"] is not None],
                                interval)
        if sigma is not None:
            out[kind] = sigma
    return out


def _interval_sigma(values: list[float], interval: float) -> float | None:
    """The sigma of a normal whose central `interval` holds that share of |log errors|:
    their `interval` quantile over its z (None without values)."""
    if not values:
        return None
    z = statistics.NormalDist().inv_cdf(0.5 + interval / 2)
    return sorted(values)[min(len(values) - 1, int(interval * len(values)))] / z


def mape(pairs: list[dict], method: str, kind: str) -> float | None:
    errs = [abs(p[method][f"{kind}_error"]) for p in pairs if p[method][f"{kind}_error"] is not None]
    return 100 * statistics.fmean(errs) if errs else None


# The dense model each folder's other models are projected from (bench_runs.py folders).
TRANSFER_ANCHOR = "llama-2-7b.Q4_0.synthetic.gguf"


def model_pairs(ms: list[Measurement], base: Priors) -> list[dict]:
    """Across models, settings and placements on one build and machine: every figure of a
    run folder (published.BENCH_RUN_DIRS) projected from the dense anchor file's figure at
    the same flash attention, fully offloaded, with the target file's rows held out of the
    fit (leave-one-model-out; the anchor's and the other files' rows stay in)."""
    runs = [m for m in ms if m.level_key and (not m.config.partial or m.host)]
    pairs = []
    for file in dict.fromkeys(m.model_key for m in runs if m.model_key != TRANSFER_ANCHOR):
        priors, _ = fit_all([m for m in ms if m.model_key != file], base)
        for target in (m for m in runs if m.model_key == file):
            fa = target.config.flash_attn
            anchor = next((m for m in runs if m.model_key == TRANSFER_ANCHOR
                           and m.level_key == target.level_key
                           and m.config == type(m.config)(flash_attn=fa)), None)
            if anchor is None:
                continue
            row = project([anchor], chips=[target.chip_id], shape=target.shape,
                          priors=priors, config=target.config, host=target.host)[0]
            naive = project([anchor], method="bandwidth", chips=[target.chip_id],
                            model_bytes=target.model_bytes, priors=priors)[0]
            pairs.append({"anchor": anchor.model_name, "model": target.model_name,
                          "bandwidth": _scored(naive, target),
                          "chip": target.chip_id, "setting": target.config.describe(),
                          "moe": bool(target.shape and target.shape.is_moe),
                          "partial": target.config.partial,
                          "measured_tg": target.tg_tps, "measured_pp": target.pp_tps,
                          "roofline": _scored(row, target)})
    return pairs


def unanchored_pairs(ms: list[Measurement], base: Priors) -> list[dict]:
    """Every fully offloaded figure of a run folder projected with no anchor (`project
    --preset` alone): from every other measurement, with the target file's rows held out
    of the fit and of the calibration."""
    runs = [m for m in ms if m.level_key and not m.config.partial and m.shape is not None]
    pairs = []
    for file in dict.fromkeys(_file_of(m) for m in runs):
        rest = [m for m in ms if _file_of(m) != file]      # every engine's rows of the file
        priors, _ = fit_all(rest, base)
        for target in (m for m in runs if _file_of(m) == file):
            row = project(rest, chips=[target.chip_id], shape=target.shape, priors=priors,
                          config=target.config, depth=target.depth, anchored=False)[0]
            pairs.append({"model": target.model_name, "chip": target.chip_id,
                          "setting": target.config.describe(), "bandwidth": _scored(
                              {k: None for k in ("tg_tps", "tg_low", "tg_high", "pp_tps",
                                                 "pp_low", "pp_high")}, target),
                          "moe": target.shape.is_moe, "partial": False,
                          "measured_tg": target.tg_tps, "measured_pp": target.pp_tps,
                          "roofline": _scored(row, target)})
    return pairs

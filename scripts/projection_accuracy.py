#!/usr/bin/env python3
"""How good are benchkit's projections on chips they were not fitted on?

Data (benchkit/data/published.yaml and the committed benchkit results):

- llama.cpp discussion #4167: LLaMA-2 7B F16 / Q8_0 / Q4_0 on 27 Apple configurations;
- XiongjieDai/GPU-Benchmarks-on-LLM-Inference: LLaMA 3 8B Q4_K_M / F16 and 70B Q4_K_M on
  16 NVIDIA GPUs and 4 Apple chips (transcribed without network access, see the YAML);
- benchkit issue 3: llama-bench on an H100 and an H200 (TinyLlama shape);
- results/nvidia-h100, -h200 and -h200-v2: benchkit's own runs, 135M to 7B stand-ins in
  Q4_1 / Q4_K_M / Q4_0 / Q8_0 / F16, and the H200 context-depth run (TinyLlama Q4_K_M and
  LLaMA-2 7B Q4_0 at depth 0 / 1024 / 4096 / 16384, in process and with llama-bench); of
  those folders only the kernel-throughput runs of the two llama.cpp engines (`skipped`).

The roofline's global parameters (per backend, memory class and quantization kind) are
fitted by least squares on log time per token. Every figure reported is held out:

1. leave-one-chip-out (LOCO): for each target chip the parameters are refitted without any
   row of that chip, then the chip is projected from every other chip that measured the
   same model (one measurement as anchor, calibrated on that chip's rows alone);
2. leave-one-family-out (LOFO): the same with the target's whole generation held out;
3. context depth: each case at a depth projected from depth 0 (same chip, and H100 -> H200),
   with that model file's deeper cases held out of the fit;
4. across quantization types: on one chip and in one run, each F16 prompt figure projected
   from each quantized one and the reverse (the fit never sees these ratios: every model
   file has its own level), with the H200 prompt-path runs of scripts/prompt_path_check.py
   (reports/nvidia/v2/prompt-paths-*-samples.json, in no fit); `--fit` prints the
   `cross_quant_sigma` they give.

Bandwidth scaling, the reference page's method, is scored on the same pairs (at depth it
is the depth-0 figure scaled by bandwidth: it has no depth term).

    python scripts/projection_accuracy.py            # the validation tables of docs/projection.md
    python scripts/projection_accuracy.py --fit      # fit on everything, print the YAML values
                                                     # and the LOCO prediction-interval sigmas
    python scripts/projection_accuracy.py --no-screen   # keep the screened figures in

Before anything is fitted, published prompt figures that contradict their own build's
kernel path are screened out (`inconsistent`: a quantized model faster than the F16 model
where the quantized kernels do the F16 GEMM's work and more); the output lists them and
prints the held-out checks with them kept in as well.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from scipy.optimize import least_squares

from benchkit.projection.chips import load_chips
from benchkit.core.safeio import MAX_RESULT_BYTES, read_json_file
from benchkit.core.units import fmt_tps
from benchkit.projection.model import (KERNEL_ENGINES, BackendPriors, Measurement, Priors,
                                 attention_share, decode_terms, load_priors,
                                 measurements_from_frame, project, prompt_seconds, prompt_unit,
                                 quant_kind, shape_from_preset,
                                 sustained_clock_share, validate, weight_group, with_backend)

GIB = 2 ** 30
REPO = Path(__file__).resolve().parents[1]
RESULT_DIRS = ("results/nvidia-h100", "results/nvidia-h200", "results/nvidia-h200-v2")
ENGINES = KERNEL_ENGINES   # llama-cpp-python first: its figures keep the bare file key
# Result files whose tg / pp cases are not clean throughput runs of the engine.
SKIPPED_SUITES = {
    "serve-": "llama-server under concurrent clients: a server's throughput, not the kernels'",
    "quality-": "perplexity and KL-divergence runs: their pp / tg cases are short side figures",
    "telemetry-": "cases run with NVML power sampling alongside",
    "warmup-": "a check of the warm-up policy: its iterations may include cold ones",
}
IMPORTED = ("imported llama-bench output: one llama-bench run exported twice (JSON and SQL) "
            "on the machine and llama.cpp build whose own llama-bench cases the depth run "
            "holds; counting it would weigh one run two or three times")
VENDOR_BACKEND = {"apple": "metal", "nvidia": "cuda"}


# ----------------------------------------------------------------------------- data

def published() -> list[dict[str, Any]]:
    """The published series as shipped with the package."""
    text = resources.files("benchkit").joinpath("data/published.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["series"]


def _tokens(test: str | None, default: int) -> int:
    digits = "".join(ch for ch in (test or "") if ch.isdigit())
    return int(digits) if digits else default


def build_units(series: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """The series' prompt kernels where its llama.cpp build differs from projection.yaml's:
    backend -> {f16|quant: unit} (published.yaml `prompt_units`, each with its reason)."""
    got = series.get("prompt_units")
    if not got:
        return None
    return {backend: {k: v for k, v in entry.items() if k != "reason"}
            for backend, entry in got.items()}


def series_measurements(series: dict[str, Any], screen: bool = True) -> list[Measurement]:
    """One Measurement per chip and quantization of a published series; a chip's prompt
    figures left out (pp_tps None) where `inconsistent` screens them, unless `screen` is off."""
    model, tests = series["model"], series.get("tests", {})
    dropped = inconsistent(series) if screen else {}
    out = []
    for chip_id, per_quant in series["rows"].items():
        for quant, (pp, tg) in per_quant.items():
            size = series["quants"][quant]["size_gib"] * GIB
            shape = shape_from_preset(model["preset"], quant, size) if model.get("preset") else None
            out.append(Measurement(
                chip_id=chip_id, tg_tps=tg, pp_tps=None if chip_id in dropped else pp,
                model_bytes=size, n_layers=model["n_layers"], n_params=model["n_params"],
                source=series["id"], model_key=f"{series['id']}:{quant}",
                model_name=f"{model['name']} {quant}", quant=quant, shape=shape,
                tg_tokens=_tokens(tests.get("tg"), 128), pp_tokens=_tokens(tests.get("pp"), 512),
                prompt_units=build_units(series)))
    return out


# A quantized prompt figure may exceed the same chip's F16 figure of the same table by this
# factor before the pair is screened: a few percent of transcription and of run-to-run noise.
PATH_TOLERANCE = 1.10


def inconsistent(series: dict[str, Any]) -> dict[str, str]:
    """Chips whose prompt figures in this series contradict the build's own kernel path,
    with the reason: chip id -> why.

    Where a build's quantized prompt kernels do all of the F16 path's matrix work and more
    (`dequant-f16`: dequantize into an F16 copy, then the very GEMM F16 weights go to; or
    the same unit for both, as Metal's simdgroup kernels), a quantized model cannot
    process prompts faster than its F16 model on the same chip in the same build. A pair
    of figures that says it does holds at least one wrong figure, and which one the table
    cannot tell: both prompt figures of that chip are left out of the fit and of every
    check (its decode figures stay). The rule reads the table alone, never a projection.
    """
    chips, priors = load_chips(), load_priors()
    units = build_units(series) or {}
    out = {}
    for chip_id, per_quant in series["rows"].items():
        f16 = (per_quant.get("F16") or [None])[0]
        backend = chips[chip_id].backend
        b, own = priors.backend(backend), units.get(backend)
        if not f16:
            continue
        for quant, (pp, _tg) in per_quant.items():
            unit = prompt_unit(b, quant, own)
            same_work = unit == "dequant-f16" or unit == prompt_unit(b, "F16", own)
            if quant != "F16" and pp and same_work and pp > PATH_TOLERANCE * f16:
                out[chip_id] = (f"{quant} prompt {pp:g} tok/s is {pp / f16:.2f}x the F16 "
                                f"figure {f16:g}, on a build whose {quant} prompt kernels "
                                f"({unit}) do the F16 GEMM's work and more")
    return out


def screened() -> list[tuple[str, str, str]]:
    """(series, chip, why) for every chip whose prompt figures `inconsistent` leaves out."""
    return [(s["id"], chip, why) for s in published() for chip, why in inconsistent(s).items()]


def skipped(path: Path) -> str | None:
    """Why a committed result file does not count, or None when it does."""
    suite = read_json_file(path, MAX_RESULT_BYTES, "result file").get("suite") or {}
    if suite.get("imported"):
        return IMPORTED
    name = str(suite.get("name", ""))
    return next((why for prefix, why in SKIPPED_SUITES.items() if name.startswith(prefix)), None)


def result_files() -> list[Path]:
    """The committed result files the fit and the checks use (see `skipped`)."""
    files = sorted(p for d in RESULT_DIRS for p in (REPO / d).glob("*.json"))
    return [p for p in files if skipped(p) is None]


def committed_measurements() -> list[Measurement]:
    """benchkit's own GPU results (`_committed`, read once per process)."""
    return list(_committed())


@functools.lru_cache(maxsize=1)
def _committed() -> tuple[Measurement, ...]:
    """benchkit's own GPU results under RESULT_DIRS, with their shapes.

    Only fully offloaded tg* / pp* cases of the two llama.cpp engines count, per engine
    the newest run of each chip, model and depth (measurements_from_frame). A model's
    key carries the engine where it is not llama-cpp-python, so that llama-bench figures
    get their own level in the fit and pair only with llama-bench figures.
    """
    from benchkit.results.frame import load_results
    from benchkit.projection.model import shape_of

    files = result_files()
    if not files:
        return ()
    frame = load_results(files)
    priors = load_priors()
    out = []
    for engine in ENGINES:
        for m in measurements_from_frame(frame[frame["engine"] == engine]):
            key = m.model_key if engine == ENGINES[0] else f"{m.model_key}:{engine}"
            out.append(replace(m, shape=shape_of(m, priors), model_key=key))
    return tuple(out)


def all_measurements(screen: bool = True) -> list[Measurement]:
    """Every published and committed measurement; `screen` off keeps the figures that
    `inconsistent` would leave out."""
    return ([m for s in published() for m in series_measurements(s, screen)]
            + committed_measurements())


# ----------------------------------------------------------------------------- fitting

# Bounds in log space: shares of a peak stay below 1.65, the power law's exponent between
# 1 (voltage at its floor) and 3 (voltage in step with the clock); everything else is free.
BOUNDS = {key: (-12.0, 0.5) for key in ("efficiency", "efficiency_multi_die",
                                         "prompt_multi_die_share", "prompt_efficiency",
                                         "prompt_attention")}
BOUNDS["prompt_power_exponent"] = (0.0, math.log(3.0))

DECODE_KEYS = ("efficiency", "efficiency_multi_die", "layer_latency_ms",
               "layer_compute_ms_tflops", "dequant")
PROMPT_KEYS = ("prompt_efficiency", "prompt_multi_die_share", "prompt_layer_us")


def _paths(ms: list[Measurement], chips, backend: BackendPriors, kind: str) -> list[tuple]:
    """The parameters the data can pin: one per memory class, quant kind, etc. present."""
    cs = [chips[m.chip_id] for m in ms]
    if kind == "decode":
        paths = [("efficiency", c) for c in sorted({c.memory_class for c in cs})]
        if any(c.multi_die for c in cs):
            paths.append(("efficiency_multi_die",))
        paths += [("layer_latency_ms",), ("layer_compute_ms_tflops",)]
        paths += [("dequant", k) for k in sorted({quant_kind(m.quant) for m in ms}) if k != "f16"]
        return paths
    groups = sorted({"f16" if quant_kind(m.quant) == "f16" else "quant" for m in ms if m.pp_tps})
    paths = [("prompt_efficiency", g) for g in groups] + [("prompt_vector", g) for g in groups]
    if any(c.multi_die for c, m in zip(cs, ms) if m.pp_tps):
        paths.append(("prompt_multi_die_share",))
    if backend.prompt_attention and any(m.depth for m in ms if m.pp_tps):
        paths.append(("prompt_attention",))
    if backend.prompt_power and any(c.board_power_w for c, m in zip(cs, ms) if m.pp_tps):
        paths += [("prompt_power",), ("prompt_power_exponent",)]
    paths.append(("prompt_layer_us",))
    return paths


def _get(b: BackendPriors, path: tuple) -> float:
    value = getattr(b, path[0])
    return float(value[path[1]]) if len(path) == 2 else float(value)


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
    ms = [m for m in ms if chips[m.chip_id].backend == name]
    b = base.backend(name)
    rms = {}
    for kind in ("decode", "prompt"):
        rows = [m for m in ms if (m.tg_tps if kind == "decode" else m.pp_tps)]
        if not rows:
            continue
        b, rms[kind] = _fit_rows(rows, chips, b, name, base, kind)
        if kind == "prompt" and b.prompt_power and not _power_limited(rows, chips, b, base):
            b, rms[kind] = _fit_rows(rows, chips, replace(b, prompt_power=0.0), name, base, kind)
    return b, rms


def _power_limited(rows: list[Measurement], chips, b: BackendPriors, base: Priors) -> bool:
    """Whether any chip of the rows runs below its boost clock under the power law."""
    return any(sustained_clock_share(chips[m.chip_id], b, base) < 1 for m in rows)


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
    keys = list(dict.fromkeys(m.model_key for m in rows))
    index = np.array([keys.index(m.model_key) for m in rows])

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
            chip = chips[m.chip_id]
            if kind == "decode":
                t = sum(decode_terms(chip, m.shape, m.n_layers, pri, m.depth, m.tg_tokens))
            else:
                t = prompt_seconds(chip, m.shape, pri, m.depth, m.pp_tokens,
                                   m.units_on(chip.backend)) or 1.0
            out.append(math.log(t))
        return np.array(out) - y

    return fn


def fit_all(ms: list[Measurement], base: Priors) -> tuple[Priors, dict]:
    """Every backend with data refitted; the others keep their (assumed) values."""
    chips = load_chips()
    priors, report = base, {}
    for name in sorted({chips[m.chip_id].backend for m in ms}):
        fitted, rms = fit_backend(ms, name, priors)
        priors = with_backend(priors, name, fitted)
        report[name] = rms
    return priors, report


# ----------------------------------------------------------------------------- held-out checks

def held_out(ms: list[Measurement], base: Priors, vendor: str, group: str) -> list[dict]:
    """Pairs projected with the parameters refitted without the target's chip / family."""
    chips = load_chips()
    mine = [m for m in ms if chips[m.chip_id].vendor == vendor]
    key = (lambda c: c.id) if group == "chip" else (lambda c: c.family)
    pairs = []
    for held in sorted({key(chips[m.chip_id]) for m in mine}):
        train = [m for m in ms if key(chips[m.chip_id]) != held]
        priors, _ = fit_all(train, base)
        targets = {m.chip_id for m in mine if key(chips[m.chip_id]) == held}
        anchors = [c for c in dict.fromkeys(m.chip_id for m in mine) if c not in targets]
        for model in dict.fromkeys(m.model_key for m in mine):
            same = [m for m in mine if m.model_key == model]
            if not any(m.chip_id in targets for m in same):
                continue
            got = validate(same, anchors=[a for a in anchors if any(m.chip_id == a for m in same)],
                           priors=priors, targets=targets)
            pairs += got["pairs"]
    return pairs


# ----------------------------------------------------------------------------- across quantization types

PATHS_RUNS = "reports/nvidia/v2/prompt-paths-*-samples.json"


def paths_measurements() -> list[Measurement]:
    """The prompt-path runs (scripts/prompt_path_check.py): per llama-bench build and file
    the median prompt rate, the FORCE_CUBLAS build's with the `dequant-f16` units. Not in
    the fit: they serve the checks across quantization types only."""
    return [m for path in sorted(REPO.glob(PATHS_RUNS)) for m in _paths_run(path)]


def _paths_run(path: Path) -> list[Measurement]:
    doc = read_json_file(path, MAX_RESULT_BYTES, "prompt-path samples")
    files = list(dict.fromkeys(Path(f).name for pair in doc["pairs"] for f in pair))
    out = []
    for build in doc["benches"]:
        for file in files:
            preset, quant = file.rsplit(".", 3)[:2]   # <preset>.<quant>.synthetic.gguf
            shape = shape_from_preset(preset, quant)
            out.append(Measurement(
                chip_id=doc["chip"], tg_tps=None,
                pp_tps=statistics.median(x for rd in doc["rounds"] for x in rd[build][file]),
                model_bytes=shape.model_bytes, n_layers=shape.n_layers, n_params=shape.n_params,
                source=f"{path.name} ({build})", model_key=f"{path.name}:{build}:{file}",
                model_name=file, quant=quant, shape=shape, pp_tokens=_tokens(doc["test"], 512),
                prompt_units={"cuda": {"quant": "dequant-f16"}} if build == "cublas" else None))
    return out


def run_of(m: Measurement) -> str:
    """One build's figures: a published series, or a result file and engine."""
    if not m.source.endswith(".json"):
        return m.source
    return f"{Path(m.source).name} ({(m.model_key or '').partition(':')[2] or ENGINES[0]})"


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


def quant_table(pairs: list[dict]) -> str:
    """Per backend and run: pairs, mean |error|, mean signed error of F16 targets."""
    lines = ["| backend | run | chips | pairs | mean abs error | F16 from quantized (mean) | "
             "quantized from F16 (mean) |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(p["backend"], p["run"]) for p in pairs})
    for backend, run in keys:
        mine = [p for p in pairs if (p["backend"], p["run"]) == (backend, run)]
        signed = {g: [p["roofline"]["pp_error"] for p in mine
                      if weight_group(p["target_quant"]) == g]
                  for g in ("f16", "quant")}
        lines.append(f"| {backend} | {run} | {len({p['chip'] for p in mine})} | {len(mine)} | "
                     f"{pct(mape(mine, 'roofline', 'pp'))} | "
                     + " | ".join(_signed(statistics.fmean(v)) if v else "—"
                                  for v in signed.values()) + " |")
    return "\n".join(lines)


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
                            "engine": (target.model_key.split(":") + [ENGINES[0]])[1],
                            "measured_tg": target.tg_tps, "measured_pp": target.pp_tps,
                            "attention_share": attention_share(
                                load_chips()[target.chip_id], target.shape, priors,
                                target.depth, target.pp_tokens)}
    for method in ("bandwidth", "roofline"):
        row = project([anchor], method=method, chips=[target.chip_id], depth=target.depth,
                      priors=priors)[0]
        pair[method] = _scored(row, target)
    return pair


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


# ----------------------------------------------------------------------------- tables

def mape(pairs: list[dict], method: str, kind: str) -> float | None:
    errs = [abs(p[method][f"{kind}_error"]) for p in pairs if p[method][f"{kind}_error"] is not None]
    return 100 * statistics.fmean(errs) if errs else None


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}%"


def coverage(pairs: list[dict], kind: str) -> str:
    inside = [p["roofline"][f"{kind}_low"] <= p[f"measured_{kind}"] <= p["roofline"][f"{kind}_high"]
              for p in pairs if p["roofline"][kind] and p[f"measured_{kind}"]]
    return f"{100 * sum(inside) / len(inside):.0f}%" if inside else "—"


def summary_rows(label: str, pairs: list[dict]) -> list[str]:
    n_tg = sum(1 for p in pairs if p["roofline"]["tg_error"] is not None)
    n_pp = sum(1 for p in pairs if p["roofline"]["pp_error"] is not None)
    return [f"| {label} | {n_tg} / {n_pp} | {pct(mape(pairs, 'bandwidth', 'tg'))} | "
            f"{pct(mape(pairs, 'roofline', 'tg'))} | {pct(mape(pairs, 'bandwidth', 'pp'))} | "
            f"{pct(mape(pairs, 'roofline', 'pp'))} | {coverage(pairs, 'tg')} / "
            f"{coverage(pairs, 'pp')} |"]


HEADER = ["| Check | pairs (decode / prompt) | decode: bandwidth | decode: roofline | "
          "prompt: bandwidth | prompt: roofline | 90% range holds (decode / prompt) |",
          "|---|---|---|---|---|---|---|"]


def by_series(pairs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in pairs:
        out.setdefault(p["source"] if not p["source"].endswith(".json") else
                       "benchkit results/nvidia-h*", []).append(p)
    return out


def per_chip_table(pairs: list[dict]) -> str:
    lines = ["| Chip | pairs | decode: bandwidth | decode: roofline | prompt: bandwidth | "
             "prompt: roofline |", "|---|---|---|---|---|---|"]
    for chip in sorted(dict.fromkeys(p["chip"] for p in pairs)):
        mine = [p for p in pairs if p["chip"] == chip]
        lines.append(f"| {chip} | {len(mine)} | " + " | ".join(
            pct(mape(mine, meth, kind)) for kind in ("tg", "pp")
            for meth in ("bandwidth", "roofline")) + " |")
    return "\n".join(lines)


def attention_rates(ms: list[Measurement]) -> str:
    """What attention at depth reaches, measured: per file, engine and depth, the prompt time
    per token the depth adds over depth 0 of the same file and engine, against the FLOPs it
    adds (4 x layers x heads x head size x depth), in TFLOPS."""
    lines = ["| Model (engine) | chip | depth | prompt measured | added µs / token | "
             "attention TFLOPS |", "|---|---|---|---|---|---|"]
    bare = {(m.chip_id, m.model_key): m.pp_tps for m in ms if m.pp_tps and m.depth == 0}
    for m in sorted((m for m in ms if m.pp_tps and m.depth and m.shape),
                    key=lambda m: (m.model_key, m.depth)):
        base = bare.get((m.chip_id, m.model_key))
        if not base:
            continue
        added = 1 / m.pp_tps - 1 / base
        flops = 4 * m.shape.n_layers * m.shape.n_head * m.shape.head_dim * m.depth
        engine = (m.model_key.split(":") + [ENGINES[0]])[1]
        lines.append(f"| {m.model_name} ({engine}) | {m.chip_id} | {m.depth:,} | "
                     f"{fmt_tps(m.pp_tps)} | {added * 1e6:.2f} | {flops / added / 1e12:.0f} |")
    return "\n".join(lines)


def depth_table(pairs: list[dict]) -> str:
    """Per depth case: measured tok/s and the errors of both methods, same chip and across."""
    lines = ["| Model (engine) | anchor → target | depth | decode measured | decode: bandwidth | "
             "decode: roofline | prompt measured | prompt: bandwidth | prompt: roofline |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(pairs, key=lambda p: (p["model"], p["engine"], p["anchor"] != p["chip"],
                                          p["depth"])):
        lines.append(
            f"| {p['model']} ({p['engine']}) | {p['anchor']} → {p['chip']} | {p['depth']} | "
            f"{p['measured_tg']:.1f} | {_signed(p['bandwidth']['tg_error'])} | "
            f"{_signed(p['roofline']['tg_error'])} | {p['measured_pp']:.0f} | "
            f"{_signed(p['bandwidth']['pp_error'])} | {_signed(p['roofline']['pp_error'])} |")
    return "\n".join(lines)


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def print_fit(priors: Priors, rms: dict, sig: dict) -> None:
    for name, b in priors.backends.items():
        if name not in rms:
            continue
        print(f"  {name}:   # rms log error {rms[name]}")
        print(f"    efficiency: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.efficiency.items())}}}")
        for key in ("efficiency_multi_die", "layer_latency_ms", "layer_compute_ms_tflops",
                    "prompt_multi_die_share", "prompt_layer_us", "prompt_power",
                    "prompt_power_exponent", "prompt_attention"):
            print(f"    {key}: {getattr(b, key):.4g}")
        print(f"    dequant: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.dequant.items())}}}")
        print(f"    prompt_efficiency: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.prompt_efficiency.items())}}}")
        print(f"    prompt_vector: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.prompt_vector.items())}}}")
    print("uncertainty (LOCO, 90% of held-out |log error| / 1.645):")
    for backend, s in sig.items():
        print(f"  {backend}: decode {s.get('tg', float('nan')):.3f}, prompt {s.get('pp', float('nan')):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true",
                        help="fit on all data, print the YAML values and the LOCO sigmas")
    parser.add_argument("--vendor", action="append", choices=sorted(VENDOR_BACKEND),
                        help="restrict the held-out checks to a vendor (repeatable)")
    parser.add_argument("--no-screen", action="store_true",
                        help="keep the published prompt figures that contradict their build's "
                             "kernel path (`inconsistent`) in the fit and the checks")
    args = parser.parse_args()
    base = load_priors()
    ms = all_measurements(screen=not args.no_screen)
    vendors = args.vendor or sorted(VENDOR_BACKEND)
    loco = {v: held_out(ms, base, v, "chip") for v in vendors}
    across = quant_pairs(ms + paths_measurements(), base)
    if args.fit:
        priors, rms = fit_all(ms, base)
        print(f"# fitted on {len(ms)} measurements")
        print_fit(priors, rms, {VENDOR_BACKEND[v]: sigmas(p, base.interval)
                                for v, p in loco.items()})
        print("cross_quant_sigma (90% of |log error| across quantization types / 1.645, "
              "less the prompt sigma in quadrature):")
        for backend in sorted({p["backend"] for p in across}):
            print(f"  {backend}: {cross_quant_sigma(across, backend, base):.3f}")
        if "nvidia" in vendors:
            print("depth_attention_sigma (90% of |log error| / attention share over the "
                  "same-chip depth pairs, / 1.645):")
            print(f"  cuda: {depth_attention_sigma(depth_pairs(ms, base), base.interval):.3f}")
        return
    lofo = {v: held_out(ms, base, v, "family") for v in vendors}
    print("\n".join(HEADER))
    for v in vendors:
        print("\n".join(summary_rows(f"{v}: leave-one-chip-out, all data", loco[v])))
        for name, pairs in by_series(loco[v]).items():
            print("\n".join(summary_rows(f"{v}: LOCO, {name}", pairs)))
        print("\n".join(summary_rows(f"{v}: leave-one-family-out, all data", lofo[v])))
    if "nvidia" in vendors:
        deep = depth_pairs(ms, base)
        same = [p for p in deep if p["anchor"] == p["chip"]]
        print("\n".join(summary_rows("nvidia: context depth, from depth 0 of the same chip", same)))
        print("\n".join(summary_rows("nvidia: context depth, from depth 0 of another chip",
                                      [p for p in deep if p not in same])))
    print_screen(args.no_screen, base, vendors)
    print("\n### Across quantization types: one chip, one run, F16 <-> quantized\n")
    print(quant_table(across))
    for backend in sorted({p["backend"] for p in across}):
        mine = [p for p in across if p["backend"] == backend]
        print(f"\n{backend}: {len(mine)} pairs, mean abs error "
              f"{pct(mape(mine, 'roofline', 'pp'))}, 90% range holds {coverage(mine, 'pp')}")
    for v in vendors:
        print(f"\n### {v}: per target chip, leave-one-chip-out\n")
        print(per_chip_table(loco[v]))
    if "nvidia" in vendors:
        print("\n### nvidia: context depth, each case from depth 0\n")
        print(depth_table(deep))
        print("\n### nvidia: attention at depth, measured (tok/s: mean of the case's "
              "iterations)\n")
        print(attention_rates(ms))


def print_screen(off: bool, base: Priors, vendors: list[str]) -> None:
    """The published figures `inconsistent` leaves out, and the checks with them kept in."""
    rows = screened()
    print("\n### Screened: prompt figures that contradict their build's kernel path\n")
    if off:
        print(f"None left out (--no-screen); the screen would leave out {len(rows)} chip(s).")
        return
    for series, chip, why in rows:
        print(f"- {series}, {chip}: {why}; both of its prompt figures left out")
    if not rows:
        print("None.")
        return
    kept = all_measurements(screen=False)
    print("\nThe same checks with them kept in (python scripts/projection_accuracy.py "
          "--no-screen):\n")
    print("\n".join(HEADER))
    for v in vendors:
        for group, label in (("chip", "leave-one-chip-out"), ("family", "leave-one-family-out")):
            print("\n".join(summary_rows(f"{v}: {label}, nothing screened",
                                          held_out(kept, base, v, group))))


if __name__ == "__main__":
    main()

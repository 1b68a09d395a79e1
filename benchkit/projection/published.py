"""The data the projection is fitted and checked on: the published series
(benchkit/data/published.yaml), benchkit's own committed GPU results and the prompt-path runs
of scripts/prompt_path_check.py, with the screen that leaves out published prompt figures
contradicting their own build's kernel path (`inconsistent`).

Committed results and prompt-path runs are read from the source checkout this package sits
in (`REPO`): an installed copy without one has none.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from benchkit.core.safeio import MAX_RESULT_BYTES, read_json_file
from benchkit.projection.chips import load_chips
from benchkit.projection.measurements import (KERNEL_ENGINES, Measurement, find_result_files,
                                              measurements_from_results,
                                              measurements_from_frame, shape_of)
from benchkit.projection.physics import prompt_unit
from benchkit.projection.placement import RunConfig
from benchkit.projection.priors import load_priors
from benchkit.projection.shapes import guess_shape, shape_from_preset

GIB = 2 ** 30
REPO = Path(__file__).resolve().parents[2]
RESULT_DIRS = ("results/nvidia-h100", "results/nvidia-h200", "results/nvidia-h200-v2")
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
    chips = load_chips()
    out = []
    for chip_id, per_quant in series["rows"].items():
        for quant, (pp, tg) in per_quant.items():
            size = series["quants"][quant]["size_gib"] * GIB
            shape = (shape_from_preset(model["preset"], quant, size) if model.get("preset")
                     else guess_shape(model.get("n_params"), size, model.get("n_layers"), quant,
                                      load_priors()))
            out.append(Measurement(
                chip_id=chip_id, tg_tps=tg, pp_tps=None if chip_id in dropped else pp,
                model_bytes=size, n_layers=model["n_layers"], n_params=model["n_params"],
                source=series["id"], model_key=f"{series['id']}:{quant}",
                model_name=f"{model['name']} {quant}", quant=quant, shape=shape,
                tg_tokens=_tokens(tests.get("tg"), 128), pp_tokens=_tokens(tests.get("pp"), 512),
                prompt_units=build_units(series), config=series_config(series),
                backend=series.get("backend") if series.get("backend") not in
                (None, chips[chip_id].backend) else None))
    return out


def series_config(series: dict[str, Any]) -> RunConfig:
    """The flash attention a series ran (`flash_attn`: 0/1; absent: off, llama-bench's
    default before late 2025) and whether its build predates today's kernels
    (`legacy_build`)."""
    fa = series.get("flash_attn")
    return RunConfig(flash_attn=bool(fa) if fa is not None else False,
                     legacy_build=bool(series.get("legacy_build", False)))


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

    files = result_files()
    if not files:
        return ()
    frame = load_results(files)
    priors = load_priors()
    out = []
    for engine in KERNEL_ENGINES:
        for m in measurements_from_frame(frame[frame["engine"] == engine]):
            key = m.model_key if engine == KERNEL_ENGINES[0] else f"{m.model_key}:{engine}"
            # one build on one machine: the models of a run share a level in the fit
            out.append(replace(m, shape=shape_of(m, priors), model_key=key,
                               level_key=f"{Path(m.source).name}:{engine}"))
    return tuple(out)


# Folders of llama-bench jsonl runs of one build on one machine (bench_runs.py): mixtures
# of experts, partial offload and flash attention off and on, with the machine's host.
BENCH_RUN_DIRS = ("reports/nvidia/v3",)


def bench_run_measurements() -> list[Measurement]:
    """The llama-bench runs of BENCH_RUN_DIRS, one fit level per folder (one build on one
    machine: the ratios between its models, settings and placements are what it pins)."""
    from benchkit.projection.bench_runs import folder_measurements

    return [replace(m, level_key=d) for d in BENCH_RUN_DIRS if (REPO / d).is_dir()
            for m in folder_measurements(REPO / d)]


# Folders of llama-bench jsonl runs at context depth that no fit sees: the depth checks of
# models with sliding-window attention (fit.window_depth_pairs).
DEPTH_RUN_DIRS = ("reports/nvidia/v3-depth",)


def depth_run_measurements() -> list[Measurement]:
    """The llama-bench runs of DEPTH_RUN_DIRS, every depth (held out of every fit)."""
    from benchkit.projection.bench_runs import folder_measurements

    return [m for d in DEPTH_RUN_DIRS if (REPO / d).is_dir()
            for m in folder_measurements(REPO / d, depth=True)]


def all_measurements(screen: bool = True) -> list[Measurement]:
    """Every published and committed measurement the fit may use; `screen` off keeps the
    figures that `inconsistent` would leave out. Series marked `fit: false` are not here
    (check_only_measurements)."""
    return ([m for s in published() if s.get("fit", True)
             for m in series_measurements(s, screen)]
            + committed_measurements() + bench_run_measurements())


def check_only_measurements() -> list[Measurement]:
    """The published series marked `fit: false`: checks of the shipped values, held out of
    every fit and of the no-anchor calibration."""
    return [m for s in published() if not s.get("fit", True) for m in series_measurements(s)]


def calibration_measurements(results_dir: str | Path = "results") -> list[Measurement]:
    """What a projection with no anchor of its own calibrates on: every published and
    committed measurement, and the results found under `results_dir`."""
    return all_measurements() + measurements_from_results(find_result_files(results_dir))


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

"""Measurements: one measured model on one chip, what a projection is calibrated on, and
where they come from (result files through `load_results`, or the command line)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.workloads.testnames import parse as parse_test   # "tg128 @ d4096" -> (tg, 128, 4096)
from dataclasses import replace

from benchkit.projection.chips import Chip, get_chip, load_chips
from benchkit.projection.placement import Host, RunConfig
from benchkit.projection.priors import Priors
from benchkit.projection.shapes import GB, ModelShape, guess_shape

# Engines whose tg / pp figures time the kernels: llama.cpp in process and llama.cpp's own
# benchmark, and MLX in process (its figures calibrate the `mlx` backend alone). A server (llama-server, Ollama, an OpenAI-compatible endpoint) adds HTTP,
# tokenization and scheduling to every token, which no chip parameter describes.
KERNEL_ENGINES = ("llama-cpp-python", "llama-bench", "mlx")


@dataclass(frozen=True)
class Measurement:
    """One measured model on one chip: what a projection is calibrated on.

    `model_key` says which measurements are of the same model (a result's sha256); without
    it two measurements are the same model when their sizes agree within 1%. `depth` is
    the context depth the tests ran at (llama-bench's -d; 0 for an empty context).
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
    quant: str | None = None
    depth: int = 0
    preset: str | None = None
    shape: ModelShape | None = None
    tg_tokens: int = 128
    pp_tokens: int = 512
    chip: Chip | None = None
    prompt_units: Mapping[str, Mapping[str, str]] | None = None
    # How llama.cpp ran: flash attention and placement (None: the backend's default fa),
    # the host of a partly offloaded run, and the backend where it is not the chip's usual
    # one (Vulkan on an NVIDIA card, MLX on a Mac).
    config: RunConfig = RunConfig()
    host: Host | None = None
    backend: str | None = None
    # Which figures share one level in the fit (one llama.cpp build on one machine): the
    # model file's key unless a run of several models on one build says otherwise.
    level_key: str | None = None

    def units_on(self, backend: str) -> Mapping[str, str] | None:
        """The prompt kernels the measuring build ran on a backend, where they differ from
        projection.yaml's (`prompt_units`: backend -> {f16|quant: unit})."""
        return (self.prompt_units or {}).get(backend)


def same_model(a: Measurement, b: Measurement) -> bool:
    """Whether two measurements are of one model: same key, else sizes within 1%."""
    if a.model_key and b.model_key:
        return a.model_key == b.model_key
    if a.model_bytes and b.model_bytes:
        return abs(a.model_bytes / b.model_bytes - 1) < 0.01
    return a.model_bytes is None and b.model_bytes is None


def same_case(a: Measurement, b: Measurement) -> bool:
    """Same model at the same context depth, placement, flash attention and backend."""
    return (same_model(a, b) and (a.depth or 0) == (b.depth or 0) and a.config == b.config
            and (a.backend or None) == (b.backend or None))


def chip_of(m: Measurement, chips: Mapping[str, Chip]) -> Chip:
    """The chip a measurement ran on, with the backend it ran (`m.backend`) in force."""
    chip = m.chip if m.chip is not None else chips[m.chip_id]
    if m.backend and m.backend != chip.backend:
        return replace(chip, backend=m.backend)
    return chip


def shape_of(m: Measurement, priors: Priors) -> ModelShape | None:
    """The measurement's model shape (as given, from its preset, or guessed)."""
    if m.shape is not None:
        return m.shape
    if not (m.model_bytes or m.n_params):
        return None
    return guess_shape(m.n_params, m.model_bytes, m.n_layers, m.quant, priors, m.preset)


def measurements_from_frame(df: Any) -> list[Measurement]:
    """Measurements from `benchkit.load_results` rows, newest first.

    Only GPU rows with every layer offloaded, of ok cases, count: a CPU figure (or a
    CPU-GPU mix) says nothing about a GPU. Where the rows hold figures of an engine that
    times the kernels (KERNEL_ENGINES), a server's figures (HTTP and scheduling included)
    are left out; a run of a server alone keeps them. Rows are grouped per device, model
    (sha256), context depth (the `depth` column, else the "@ dN" of the test name) and
    engine; within a group the newest tg* and the newest pp* test give the decode and
    prompt figures.
    """
    if df is None or len(df) == 0:
        return []
    rows = df[(df["device_kind"] == "gpu") & (df["status"] == "ok")].copy()
    engines = rows["engine"] if "engine" in rows.columns else None
    if engines is not None and engines.isin(KERNEL_ENGINES).any():
        rows = rows[engines.isin(KERNEL_ENGINES) | engines.isna()].copy()
    rows["_engine"] = rows["engine"].fillna("") if engines is not None else ""
    parsed = rows["test"].astype(str).map(parse_test)
    rows = rows[parsed.notna()].copy()
    if len(rows) == 0:
        return []
    parsed = parsed[parsed.notna()]
    col = rows["depth"] if "depth" in rows.columns else None
    rows["_depth"] = [int(_num(r, "depth") or 0) if col is not None and _num(r, "depth")
                      else p[2] for (_, r), p in zip(rows.iterrows(), parsed)]
    rows["_tokens"] = [p[1] for p in parsed]
    # Partly offloaded runs mix CPU and GPU time: only whole-model GPU runs calibrate.
    full = rows["layers_offloaded"].fillna(0) >= rows["layers_total"].fillna(float("inf"))
    rows = rows[full | rows["layers_total"].isna()]
    if len(rows) == 0:
        return []
    rows = rows.sort_values("started_at", ascending=False, kind="stable")
    return [_measurement(group, device, sha, int(depth)) for (device, sha, depth, _), group in
            rows.groupby(["device_id", "model_sha256", "_depth", "_engine"], sort=False,
                         dropna=False)]


def _measurement(group: Any, device: Any, sha: Any, depth: int) -> Measurement:
    tests = group["test"].astype(str)
    tg = group[tests.str.startswith("tg")]
    pp = group[tests.str.startswith("pp")]
    first = group.iloc[0]
    t = tg.iloc[0] if len(tg) else None
    p = pp.iloc[0] if len(pp) else None
    layers = _num(first, "model_layers")
    return Measurement(
        config=RunConfig(flash_attn=_flash_attn(first)),
        backend=_backend(first),
        chip_id=str(device), tg_tps=_num(t, "tps_mean"), pp_tps=_num(p, "tps_mean"),
        model_bytes=_num(first, "model_size_bytes"), n_layers=int(layers) if layers else None,
        n_params=_num(first, "model_params"), source=str(first["file"]),
        model_key=None if _missing(sha) else str(sha),
        model_name=None if _missing(first.get("model_name")) else str(first["model_name"]),
        tg_n=int(_num(t, "n")) if _num(t, "n") else None, tg_cv=_num(t, "tps_cv"),
        pp_n=int(_num(p, "n")) if _num(p, "n") else None, pp_cv=_num(p, "tps_cv"),
        started_at=str(first["started_at"]),
        tg_test=str(t["test"]) if t is not None else None,
        pp_test=str(p["test"]) if p is not None else None,
        quant=None if _missing(first.get("model_quant")) else str(first["model_quant"]),
        depth=depth, tg_tokens=int(t["_tokens"]) if t is not None else 128,
        pp_tokens=int(p["_tokens"]) if p is not None else 512)


def _flash_attn(row: Any) -> bool | None:
    """Flash attention as llama.cpp reported it, else as set (auto: the backend's default)."""
    used = row.get("flash_attn_used")
    if not _missing(used):
        return bool(used)
    setting = row.get("flash_attn")
    if isinstance(setting, str) and setting in ("on", "off"):
        return setting == "on"
    return None


def _backend(row: Any) -> str | None:
    """`mlx` for the mlx engine's rows (its own kernels, not llama.cpp's), else None: the
    chip's usual backend."""
    backend = row.get("backend")
    return "mlx" if isinstance(backend, str) and backend == "mlx" else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(row: Any, key: str) -> float | None:
    if row is None:
        return None
    value = row.get(key)
    if _missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
    from benchkit.results.frame import load_results

    chips = load_chips()
    return [m for m in measurements_from_frame(load_results(list(paths)))
            if m.chip_id in chips]


def gather_measurements(anchor: str | None, *, from_file: str | None = None,
                        results_dir: str | None = "results", tg: float | None = None,
                        pp: float | None = None, model_gb: float | None = None,
                        layers: int | None = None, anchor_only: bool = False,
                        depth: int = 0, quant: str | None = None
                        ) -> list[Measurement]:
    """The measurements `benchkit project` works from, anchor first.

    The anchor comes from the command line (--tg / --pp, measured at depth 0), from one
    result file (--from), or from the newest result for the anchor chip under the results
    folder (the one measured at `depth` when there is one). Other measurements of the same model (and the anchor chip's other models) join
    the calibration unless `anchor_only`; they also mark chips as measured.
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
                            source="command line", quant=quant)
        if from_file:
            raise BenchkitError("give the anchor's figures either as numbers (--tg / --pp) or "
                                "as a result file (--from), not both", field="--from")
        rest = [] if anchor_only else measurements_from_results(
            find_result_files(results_dir or "results"))
        return [first] + [m for m in rest if m.chip_id != anchor_id and same_case(m, first)]
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
    first = next((m for m in own if m.depth == depth), own[0])
    if anchor_only:
        return [first]
    return [first] + [m for m in found if m is not first and (
        m.chip_id == anchor_id or same_model(m, first))]

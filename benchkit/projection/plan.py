"""Will it run, and how fast: the quantizations x placements of one model that fit a
machine (GPU memory, system RAM) at a context length, each with projected decode and
prompt rates and the llama-server command line for it, the fastest first.

A placement is where llama.cpp keeps the weights: every layer on the GPU; for a mixture
of experts the fewest `--n-cpu-moe` layers whose experts must stay in system RAM; for a
dense model the most `-ngl` layers the GPU holds; or the CPU alone. Memory is the
projection's own breakdown (weights, KV cache at the context, compute buffer), split by
placement.split; speed is `project`'s, from the calibration data (or an anchor).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.projection.api import project
from benchkit.projection.chips import Chip
from benchkit.projection.measurements import Measurement
from benchkit.projection.physics import memory_breakdown, usable_memory_gb
from benchkit.projection.placement import Host, RunConfig, split
from benchkit.projection.priors import Priors, load_priors
from benchkit.projection.shapes import GB, ModelShape

DENSE_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
# Models published with their experts already in 4-bit MXFP4 (gpt-oss): requantizing them
# leaves the experts as they are, so the published type is the one to plan.
NATIVE_QUANTS = {"gpt-oss": ("MXFP4",)}


def default_quants(preset: str) -> tuple[str, ...]:
    """The quantizations `plan` compares for a preset."""
    from benchkit.models import presets

    arch = presets.get_preset(preset, field="--preset").architecture
    return NATIVE_QUANTS.get(arch, DENSE_QUANTS)
# Used share of a memory above which a plan is marked as close to the limit.
CLOSE = 0.90
# System RAM left to the operating system and other programs, GB.
OS_RESERVE_GB = 4.0


@dataclass(frozen=True)
class Machine:
    """The GPU (None: memory-only plans), its usable memory, system RAM and the host."""

    chip: Chip | None
    vram_gb: float
    ram_gb: float
    host: Host


def machine(chip: Chip | None, vram: float | None, ram: float, host: Host,
            priors: Priors) -> Machine:
    """GPU memory from --vram, else the chip's largest configuration (usable share)."""
    if ram <= 0:
        raise BenchkitError(f"must be a positive number, got {ram:g}", field="--ram")
    if vram is not None and vram <= 0:
        raise BenchkitError(f"must be a positive number, got {vram:g}", field="--vram")
    if chip is None and vram is None:
        raise BenchkitError("name the GPU (--chip ID) or its memory (--vram GB)", field="--chip")
    size = vram if vram is not None else max(chip.memory_gb)
    usable = usable_memory_gb(chip, size, priors) if chip else size * 2 ** 30 / GB * \
        priors.memory["gpu_share"]
    return Machine(chip, usable, ram, host)


def placements(shape: ModelShape) -> list[RunConfig]:
    """Every placement worth trying, most of the model on the GPU first."""
    layers = shape.n_layers
    out = [RunConfig()]
    if shape.is_moe:
        out += [RunConfig(n_cpu_moe=k) for k in range(1, layers + 1)]
    out += [RunConfig(n_gpu_layers=n) for n in range(layers, -1, -1)]
    return out


def memory(shape: ModelShape, config: RunConfig, ctx: int, priors: Priors) -> tuple[float, float]:
    """(GPU GB, system RAM GB) a placement needs with a `ctx`-token KV cache."""
    need = memory_breakdown(shape, priors, depth=max(ctx - 512, 0))
    place = split(shape, config, priors.ubatch)
    gpu_share = place.gpu_layers / shape.n_layers
    extra = need["compute_gb"] + priors.memory["overhead_gb"]
    gpu = place.gpu_weight_bytes / GB + need["kv_gb"] * gpu_share + (extra if gpu_share or
                                                                    place.output_on_gpu else 0)
    ram = place.cpu_weight_bytes / GB + need["kv_gb"] * (1 - gpu_share) + (
        0 if gpu else need["compute_gb"])
    return gpu, ram


def fitting(shape: ModelShape, m: Machine, ctx: int, priors: Priors
            ) -> tuple[RunConfig, float, float] | None:
    """The placement with most on the GPU that fits, with its GPU and RAM needs."""
    ram_room = m.ram_gb - OS_RESERVE_GB
    fits = [(config, *memory(shape, config, ctx, priors)) for config in placements(shape)]
    fits = [(c, gpu, ram) for c, gpu, ram in fits if gpu <= m.vram_gb and ram <= ram_room]
    # A partial placement leaves the GPU some headroom when one does (the KV cache and
    # compute buffers grow with batch and context settings): the first under CLOSE.
    roomy = [f for f in fits if f[1] <= CLOSE * m.vram_gb and f[2] <= CLOSE * ram_room]
    if fits and fits[0][0] != RunConfig() and roomy:
        return roomy[0]
    return fits[0] if fits else None


def command(shape: ModelShape, config: RunConfig, ctx: int) -> str:
    """The llama-server command line for a placement."""
    ngl = "99" if config.n_gpu_layers is None else str(config.n_gpu_layers)
    parts = [f"llama-server -m MODEL.{shape.quant}.gguf -c {ctx} -ngl {ngl}"]
    if config.n_cpu_moe:
        parts.append(f"--n-cpu-moe {config.n_cpu_moe}")
    return " ".join(parts)


def plan(shapes: Iterable[ModelShape], m: Machine, ctx: int, measurements: Sequence[Measurement],
         *, anchored: bool = False, priors: Priors | None = None,
         depth: int = 0) -> list[dict[str, Any]]:
    """One row per quantization that fits: its placement, memory and projected rates,
    the fastest decode first; quantizations that fit nowhere are left out."""
    priors = priors or load_priors()
    if ctx <= 0:
        raise BenchkitError(f"must be a positive number of tokens, got {ctx}", field="--ctx")
    rows = []
    for shape in shapes:
        got = fitting(shape, m, ctx, priors)
        if got is None:
            continue
        config, gpu, ram = got
        row: dict[str, Any] = {
            "quant": shape.quant, "placement": config.describe(), "model_gb": shape.model_bytes / GB,
            "gpu_gb": gpu, "ram_gb": ram, "vram_usable_gb": m.vram_gb, "ram_gb_total": m.ram_gb,
            "close": gpu > CLOSE * m.vram_gb or ram > CLOSE * (m.ram_gb - OS_RESERVE_GB),
            "command": command(shape, config, ctx), "ctx": ctx,
            **dict.fromkeys(("tg_tps", "tg_low", "tg_high", "pp_tps", "pp_low", "pp_high")),
            "range_note": None}
        if m.chip is not None:
            got_row = project(list(measurements), chips=[replace(m.chip, memory_gb=(1e6,))],
                              shape=shape, config=config, host=m.host, depth=depth,
                              priors=priors, anchored=anchored)[0]
            row.update({k: got_row[k] for k in ("tg_tps", "tg_low", "tg_high", "pp_tps",
                                                 "pp_low", "pp_high", "range_note")})
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["tg_tps"] or 0))

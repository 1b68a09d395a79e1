"""How llama.cpp was told to run a model: flash attention on or off, and where the weights
sit (`--n-gpu-layers`, `--n-cpu-moe`); and the host a partly offloaded model leans on.

A projection compares like with like: the anchor's settings are those it was measured
with, the target's those asked for. What each setting costs is physics.py's business;
this module says which bytes and layers end up where.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchkit.core.errors import BenchkitError
from benchkit.projection.shapes import ModelShape


@dataclass(frozen=True)
class RunConfig:
    """llama.cpp's settings that move throughput.

    `flash_attn` None means the backend's default (priors `default_flash_attn`);
    `n_gpu_layers` None means every layer and the output on the GPU (llama.cpp's -ngl 99);
    `n_cpu_moe` keeps the routed experts of the first N layers in system RAM.
    """

    flash_attn: bool | None = None
    n_gpu_layers: int | None = None
    n_cpu_moe: int = 0
    # A build from before CUDA graphs and the fused kernels of mid 2024 (the published
    # spring-2024 tables): more fixed cost per layer (`legacy_layer_us`). Projections of
    # today's builds leave it False.
    legacy_build: bool = False

    @property
    def partial(self) -> bool:
        """Whether any weight stays in system RAM."""
        return self.n_gpu_layers is not None or self.n_cpu_moe > 0

    def describe(self, flash: bool = True) -> str:
        """Short label: "all on GPU", "-ngl 16", "--n-cpu-moe 24", with "fa on/off" unless
        `flash` is False."""
        parts = []
        if self.n_gpu_layers is not None:
            parts.append(f"-ngl {self.n_gpu_layers}")
        if self.n_cpu_moe:
            parts.append(f"--n-cpu-moe {self.n_cpu_moe}")
        if not parts:
            parts.append("all on GPU")
        if flash and self.flash_attn is not None:
            parts.append("fa on" if self.flash_attn else "fa off")
        return ", ".join(parts)


@dataclass(frozen=True)
class Host:
    """The host side of a partly offloaded run: system RAM bandwidth and the host-device
    link (GB/s, peak as the maker states them; the priors hold the shares llama.cpp gets)."""

    cpu_bw_gbs: float
    link_gbs: float
    ram_gb: float | None = None


@dataclass(frozen=True)
class Split:
    """Where a model's bytes and layers sit under a RunConfig."""

    gpu_layers: int           # repeating layers whose attention and dense weights are on the GPU
    cpu_layers: int           # repeating layers run by the CPU entirely
    moe_cpu_layers: int       # layers on the GPU whose routed experts run on the CPU
    output_on_gpu: bool
    gpu_decode_bytes: float   # bytes a generated token reads from GPU memory
    cpu_decode_bytes: float   # ... and from system RAM
    gpu_weight_bytes: float   # weights resident on the GPU
    cpu_weight_bytes: float   # weights resident in system RAM
    cpu_batch_bytes: float    # weights in RAM that a prompt ubatch copies to the GPU

    @property
    def switches(self) -> int:
        """CPU<->GPU hand-overs in one token's pass: one at the edge of the CPU layers, two
        around each layer whose experts run on the CPU."""
        return (2 if self.cpu_layers else 0) + 2 * self.moe_cpu_layers

    @property
    def all_on_gpu(self) -> bool:
        return self.cpu_decode_bytes == 0 and self.cpu_weight_bytes == 0


def output_bytes(shape: ModelShape) -> float:
    """Bytes of the output projection (n_vocab x n_embd at the file's average width)."""
    return shape.n_vocab * shape.n_embd * shape.model_bytes / shape.n_params


def check_config(shape: ModelShape, config: RunConfig) -> None:
    """A placement the model can take, else one error naming the option."""
    if config.n_gpu_layers is not None and config.n_gpu_layers < 0:
        raise BenchkitError(f"must be 0 or more, got {config.n_gpu_layers}",
                            field="--n-gpu-layers")
    if config.n_cpu_moe < 0:
        raise BenchkitError(f"must be 0 or more, got {config.n_cpu_moe}", field="--n-cpu-moe")
    if config.n_cpu_moe > shape.n_layers:
        raise BenchkitError(f"the model has {shape.n_layers} layers, got {config.n_cpu_moe}",
                            field="--n-cpu-moe")
    if config.n_cpu_moe and not shape.is_moe:
        raise BenchkitError(f"keeps experts in system RAM, but the model ({shape.source}) is "
                            "not a mixture of experts: use --n-gpu-layers", field="--n-cpu-moe")


def split(shape: ModelShape, config: RunConfig, ubatch: int = 512) -> Split:
    """Which bytes a decode step and a prompt ubatch read where.

    llama.cpp's -ngl N puts the last N repeating layers on the GPU and, when N exceeds the
    layer count, the output layer too; --n-cpu-moe N keeps the routed experts of the first
    N layers in RAM (their attention stays on the GPU). A prompt ubatch large enough
    (llama.cpp offloads an op of 32 tokens or more) copies the RAM-resident weights it
    uses to the GPU and computes there: the experts it touches, every dense weight.
    """
    check_config(shape, config)
    layers = shape.n_layers
    ngl = layers + 1 if config.n_gpu_layers is None else config.n_gpu_layers
    gpu_layers = min(ngl, layers)
    cpu_layers = layers - gpu_layers
    out = output_bytes(shape)
    output_on_gpu = ngl > layers
    body = max(shape.model_bytes - shape.embedding_bytes - out, 0.0)   # repeating layers
    expert_per_layer = shape.expert_bytes / layers
    dense_per_layer = max(body - shape.expert_bytes, 0.0) / layers
    moe_cpu = min(config.n_cpu_moe, layers)
    moe_cpu_on_gpu = max(moe_cpu - cpu_layers, 0)         # of those, layers otherwise on GPU
    active = shape.active_share
    # Resident weights.
    cpu_resident = (cpu_layers * (dense_per_layer + expert_per_layer)
                    + moe_cpu_on_gpu * expert_per_layer + (0 if output_on_gpu else out))
    gpu_resident = max(body + out - cpu_resident, 0.0)
    # One token's reads.
    cpu_decode = (cpu_layers * (dense_per_layer + expert_per_layer * active)
                  + moe_cpu_on_gpu * expert_per_layer * active + (0 if output_on_gpu else out))
    gpu_decode = max(shape.streamed_bytes - cpu_decode, 0.0)
    touched = shape.touched_share(ubatch)
    cpu_batch = (cpu_layers * (dense_per_layer + expert_per_layer * touched)
                 + moe_cpu_on_gpu * expert_per_layer * touched + (0 if output_on_gpu else out))
    return Split(gpu_layers, cpu_layers, moe_cpu_on_gpu, output_on_gpu, gpu_decode, cpu_decode,
                 gpu_resident, cpu_resident, cpu_batch)

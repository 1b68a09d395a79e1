"""Chip physics: what a chip's bandwidth, cores, clock and power let llama.cpp's kernels
do before any measurement calibrates it: seconds per token, the kernels' units, the
sustained clock, and the memory a model needs."""

from __future__ import annotations

import math
from typing import Mapping

from benchkit.core.errors import BenchkitError
from benchkit.projection.chips import Chip
from benchkit.projection.placement import Host, RunConfig, Split, split
from benchkit.projection.priors import PRIORS_FILE, BackendPriors, Priors
from benchkit.projection.shapes import GB, ModelShape, guess_shape, quant_kind

FULL = RunConfig()


def _clock_mhz(chip: Chip, priors: Priors) -> tuple[float, bool]:
    """The chip's GPU clock and whether it is known (else derived or assumed)."""
    if chip.gpu_clock_mhz:
        return chip.gpu_clock_mhz, True
    if chip.fp32_tflops and chip.vendor != "cpu":
        return chip.fp32_tflops * 1e6 / (chip.gpu_cores * 256), True
    clock = priors.assumed_clock_mhz.get(chip.family) or priors.assumed_clock_mhz.get(chip.vendor)
    if clock is None:
        raise BenchkitError(f"{chip.id} has no gpu_clock_mhz or fp32_tflops and its family "
                            f"{chip.family!r} no assumed clock", file=PRIORS_FILE,
                            field="assumed_clock_mhz")
    return float(clock), False


def compute_tflops(chip: Chip, priors: Priors) -> tuple[float, bool]:
    """The chip's FP32 TFLOPS and whether it is known (else cores x an assumed clock)."""
    if chip.fp32_tflops:
        return chip.fp32_tflops, True
    clock, _ = _clock_mhz(chip, priors)
    return chip.gpu_cores * 128 * 2 * clock / 1e6, False


def core_rate(chip: Chip, priors: Priors) -> float:
    """Cores x clock (GHz): the issue rate that dequantization work runs at.

    Dequantizing is integer and shuffle work on the cores' vector lanes, not FP32 FMA:
    an A100 (19.5 FP32 TFLOPS) and an RTX 4090 (82.6) differ 2x in cores x clock and 4x
    in FP32, and llama.cpp's quantized decode on them follows the former.
    """
    clock, _ = _clock_mhz(chip, priors)
    return chip.gpu_cores * clock / 1000


def efficiency(chip: Chip, b: BackendPriors) -> float:
    """Achieved share of peak bandwidth for the chip's backend and memory class."""
    eta = b.efficiency.get(chip.memory_class, b.efficiency.get("default",
                                                               b.efficiency_single_die))
    return eta * (b.efficiency_multi_die if chip.multi_die else 1.0)


def weight_group(quant: str | None) -> str:
    """"f16" for unquantized weights, "quant" for the rest: the two prompt kernel paths."""
    return "f16" if quant_kind(quant) == "f16" else "quant"


def prompt_unit(b: BackendPriors, quant: str | None,
                units: Mapping[str, str] | None = None) -> str:
    """The unit llama.cpp's prompt kernels use for this type: the backend's, unless the
    build that measured it ran other kernels (`units`, from the measurement)."""
    group = weight_group(quant)
    return (units or {}).get(group) or b.prompt_units.get(group, b.compute)


def prompt_gemm(chip: Chip, b: BackendPriors, quant: str | None,
                units: Mapping[str, str] | None = None) -> str:
    """The `prompt_efficiency` entry of the GEMM this type runs on this chip.

    "f16" for F16 weights and for a build that dequantizes to an F16 copy; "quant" for the
    quantized kernels on matrix units; "dot4" where those kernels run on a chip whose INT8
    figure is 4-way dot products on the vector lanes (Pascal, GCN 5, RDNA 2: no matrix
    units), which also unpack the quantized tiles, and the backend has that entry;
    "coopmat2" where a backend running FP16 matrix kernels has that entry and the chip is an
    NVIDIA card with tensor cores (Vulkan's NV_cooperative_matrix2 shaders, which only
    NVIDIA's driver offers; other chips run the KHR cooperative-matrix ones).
    """
    unit = prompt_unit(b, quant, units)
    if unit == "dequant-f16" or weight_group(quant) == "f16":
        return "f16"
    path = {"int8": "dot4" if chip.int8_unit == "dot4" else None,
            "matrix": "coopmat2" if chip.vendor == "nvidia" and chip.int8_matrix_units
            else None}.get(unit)
    return path if path in b.prompt_efficiency else "quant"


def prompt_unit_tflops(chip: Chip, b: BackendPriors, quant: str | None,
                       units: Mapping[str, str] | None = None,
                       priors: Priors | None = None) -> float | None:
    """Throughput (T ops/s) of the units llama.cpp's prompt kernels use for this type.

    F16 weights go to FP16 GEMMs (tensor cores / WMMA / MFMA / XMX); quantized weights to
    the INT8 matrix kernels (MMQ) where the backend has them, or, in builds older than
    those (`dequant-f16`), to a dequantized F16 copy and the same FP16 GEMM; Metal runs
    simdgroup matrices on its FP32 ALUs. A chip without the unit falls back to the next
    slower one.
    """
    unit = prompt_unit(b, quant, units)
    figures = {"int8": chip.int8_matrix_tops, "matrix": chip.matrix_tflops,
               "fp32": chip.fp32_tflops}
    # llama.cpp's MMQ kernels issue warp-level int8 MMA and unpack the quantized tiles on
    # the SM's integer lanes: past a rate per SM (CU) and clock the matrix units of
    # data-center parts (A100 / H100: 2-4x a GeForce SM's int8 rate) sit idle. A backend
    # whose FP16 GEMMs are its own shaders (Vulkan's cooperative matrices, which no driver
    # maps onto Hopper's asynchronous warpgroup MMA) meets the same limit on its FP16
    # matrix figure; vendor BLAS does not, and CUDA's F16 path keeps the full figure.
    per_core_clock = {"int8": b.mmq_ops_per_core_clock,
                      "matrix": b.matrix_ops_per_core_clock}.get(unit)
    if per_core_clock and figures[unit] and chip.int8_matrix_units and chip.vendor != "cpu":
        figures[unit] = min(figures[unit], core_rate(chip, priors) * per_core_clock / 1000)
    chain = {"int8": ("int8", "matrix", "fp32"), "matrix": ("matrix", "fp32"),
             "dequant-f16": ("matrix", "fp32"), "fp32": ("fp32",)}[unit]
    for name in chain:
        if figures[name]:
            return figures[name]
    return None


def sustained_clock_share(chip: Chip, b: BackendPriors, priors: Priors) -> float:
    """Share of its boost clock a chip holds under the prompt kernels' load.

    Prompt processing keeps every SM's matrix units busy, and the board's power limit,
    not the boost clock, then sets the clock. Dynamic power grows as cores x f x V^2: with
    V in step with f that is f^3, with V at its floor f^1. The power the kernels draw at
    clock f is `prompt_power` x cores x f^a (W, f in GHz, a = `prompt_power_exponent`),
    two constants per backend, never per chip. A card whose limit is below that at its
    boost clock runs at boost x (limit / need)^(1/a). Cards with a generous limit for
    their cores and clock (GeForce, SXM modules, the slower-clocked Ampere and Hopper
    parts) keep boost; the workstation and data-center Ada cards that run 2.5 GHz silicon
    at 130-350 W do not. Decode draws far less (it waits on memory) and is not limited.
    A chip without a `board_power_w` figure, or a backend without the constant, keeps
    its boost clock.
    """
    if not (b.prompt_power and chip.board_power_w):
        return 1.0
    clock, _ = _clock_mhz(chip, priors)
    alpha = b.prompt_power_exponent
    need = b.prompt_power * chip.gpu_cores * (clock / 1000) ** alpha
    return min(1.0, (chip.board_power_w / need) ** (1 / alpha))


def prompt_compute(chip: Chip, priors: Priors, quant: str | None = None,
                   units: Mapping[str, str] | None = None) -> float | None:
    """Effective compute for prompt processing (TFLOPS), or None when the chip's is unknown."""
    b = priors.backend(chip.backend)
    tflops = prompt_unit_tflops(chip, b, quant, units, priors)
    if not tflops:
        return None
    return tflops * (b.prompt_multi_die_share if chip.multi_die else 1.0)


def _as_shape(model: ModelShape | float, n_layers: int | None, priors: Priors) -> ModelShape:
    if isinstance(model, ModelShape):
        return model
    return guess_shape(None, float(model), n_layers, None, priors)


def flash_attn(config: RunConfig, b: BackendPriors) -> bool:
    """The flash-attention setting in force: the config's, else the backend's default."""
    return b.default_flash_attn if config.flash_attn is None else config.flash_attn


def decode_terms(chip: Chip, model: ModelShape | float, n_layers: int | None,
                 priors: Priors, depth: float = 0, n_gen: int = 128,
                 config: RunConfig = FULL) -> tuple[float, float]:
    """Seconds per token on the GPU before calibration: (bytes-and-dequant term, fixed term).

    The first term is the smooth maximum of streaming the GPU's share of the active
    weights (a mixture of experts reads the k of n experts a token is routed to) and the
    KV cache at the current depth, and of dequantizing them on the cores: whichever is
    slower sets the pace, and near the crossover both cost. The second does not grow with
    bytes: per layer on the GPU, kernel launches and small work (a fixed time plus cycles
    at the chip's clock), more kernels for a routed-expert layer (router, top-k, gathered
    expert products) and for attention without flash attention (separate KQ, softmax and
    KQV kernels). The CPU's share of a partly offloaded model is host_decode_seconds'.
    """
    shape = _as_shape(model, n_layers, priors)
    b = priors.backend(chip.backend)
    place = split(shape, config, priors.ubatch)
    gpu_share = place.gpu_layers / shape.n_layers
    kv = shape.kv_bytes(depth + n_gen / 2) * gpu_share
    memory_s = (place.gpu_decode_bytes + kv) / (efficiency(chip, b) * chip.bandwidth_gbs * GB)
    gpu_params = shape.matmul_params * place.gpu_decode_bytes / max(shape.streamed_bytes, 1.0)
    dequant_s = gpu_params * b.dequant.get(quant_kind(shape.quant), 0.0) / (
        core_rate(chip, priors) * 1e9)
    p = priors.overlap
    stream_s = (memory_s ** p + dequant_s ** p) ** (1 / p)
    tflops, _ = compute_tflops(chip, priors)
    clock, _ = _clock_mhz(chip, priors)
    layers = place.gpu_layers if n_layers is None or config.partial else n_layers
    per_layer_us = (b.layer_tensor_us * shape.tensors_per_layer
                    + (b.moe_layer_us if shape.is_moe else 0.0)
                    + (0.0 if flash_attn(config, b) else b.fa_off_layer_us)
                    + (b.legacy_layer_us if config.legacy_build else 0.0))
    per_layer_ms = (b.layer_latency_ms + b.layer_compute_ms_tflops / tflops
                    + b.layer_kcycles / clock + per_layer_us / 1000)
    return stream_s, layers * per_layer_ms / 1000


def _offloaded(shape: ModelShape, config: RunConfig, host: Host | None, priors: Priors,
               needs: str, option: str) -> Split | None:
    """The placement's split when some weight is in system RAM (None: all on the GPU), else
    one error naming the host figure it needs."""
    place = split(shape, config, priors.ubatch)
    if place.all_on_gpu:
        return None
    if host is None:
        raise BenchkitError(f"a partly offloaded placement needs {needs}", field=option)
    return place


def host_decode_seconds(shape: ModelShape, config: RunConfig, host: Host | None,
                        priors: Priors) -> float:
    """Seconds per token the CPU side of a partly offloaded model adds: the weights a
    token reads from system RAM at the host's achieved bandwidth, the CPU's share of the
    KV cache, and a fixed cost per CPU<->GPU hand-over (a synchronisation and a copy of
    one token's activations). 0 when every weight is on the GPU."""
    place = _offloaded(shape, config, host, priors, "the host's memory bandwidth", "--cpu-bw")
    if place is None:
        return 0.0
    h = priors.host
    memory_s = place.cpu_decode_bytes / (h["cpu_efficiency"] * host.cpu_bw_gbs * GB)
    return (memory_s + place.switches * h["switch_us"] / 1e6
            + place.cpu_layers * h["cpu_layer_us"] / 1e6)


def host_prompt_seconds(shape: ModelShape, config: RunConfig, host: Host | None,
                        priors: Priors, n_prompt: int = 512) -> float:
    """Seconds per prompt token for copying RAM-resident weights to the GPU: llama.cpp
    computes a large batch on the GPU and copies the weights it needs over the link once
    per ubatch (from pageable memory: `link_efficiency` of the link's peak)."""
    place = _offloaded(shape, config, host, priors, "the host-device link", "--link-gbs")
    if place is None:
        return 0.0
    passes = math.ceil(n_prompt / priors.ubatch)
    return (place.cpu_batch_bytes * passes / n_prompt
            / (priors.host["link_efficiency"] * host.link_gbs * GB))


def expert_batch_penalty(shape: ModelShape, b: BackendPriors, priors: Priors) -> float:
    """Extra matrix work (in weights per token) for the routed experts' small batches.

    A prompt ubatch sends each expert only ubatch x k / n tokens (32 for Qwen3-30B-A3B's
    8 of 128, 64 for gpt-oss-20b's 4 of 32), and a matrix kernel on so few rows runs
    below its full-batch rate: at tokens / (tokens + `moe_prompt_tokens_half`) of it.
    """
    if not (shape.is_moe and b.moe_prompt_tokens_half):
        return 0.0
    per_expert = priors.ubatch * shape.active_share
    active_expert = shape.expert_params * shape.active_share
    return active_expert * b.moe_prompt_tokens_half / per_expert


def prompt_seconds(chip: Chip, shape: ModelShape, priors: Priors, depth: float = 0,
                   n_prompt: int = 512, units: Mapping[str, str] | None = None,
                   config: RunConfig = FULL) -> float | None:
    """Seconds per prompt token before calibration, or None without a compute figure.

    `units` are the measuring build's kernels where they differ from the backend's (see
    prompt_unit). On the `dequant-f16` path the GEMM is the F16 one (its efficiency) and
    every ubatch also writes an F16 copy of the weights and reads it back (4 bytes a weight).
    """
    b = priors.backend(chip.backend)
    compute = prompt_compute(chip, priors, shape.quant, units)
    if compute is None:
        return None
    group = weight_group(shape.quant)
    dequant_copy = prompt_unit(b, shape.quant, units) == "dequant-f16"
    gemm = prompt_gemm(chip, b, shape.quant, units)
    matrix_s = 2 * (shape.matmul_params + expert_batch_penalty(shape, b, priors)) / (
        b.prompt_efficiency[gemm] * compute * 1e12)
    passes = math.ceil(n_prompt / priors.ubatch)
    read = (shape.batch_bytes(min(n_prompt, priors.ubatch))
            + (4 * shape.matmul_params if dequant_copy else 0.0))
    bandwidth = efficiency(chip, b) * chip.bandwidth_gbs * GB
    weights_s = read * passes / n_prompt / bandwidth
    # Without flash attention the KQ matrix (heads x tokens x context, F32) is written,
    # soft-maxed and read back through memory: `fa_off_kq_passes` trips per element.
    # Each prompt token attends to the depth and half the prompt before it on average, a
    # sliding layer to at most its window (shape.attended).
    attended = shape.attended(depth + n_prompt / 2)
    kq_s = 0.0 if flash_attn(config, b) else (
        b.fa_off_kq_passes * 4 * shape.n_head * attended / bandwidth)
    attn_compute = (prompt_compute(chip, priors, "F16") or compute)
    attn_s = 4 * shape.n_head * shape.head_dim * attended / (
        (b.prompt_attention or b.prompt_efficiency["f16"]) * attn_compute * 1e12)
    vector_s = shape.matmul_params * b.prompt_vector.get(group, 0.0) / (
        core_rate(chip, priors) * 1e9 * priors.ubatch)
    clock = sustained_clock_share(chip, b, priors)
    return ((matrix_s + attn_s + vector_s) / clock + weights_s + kq_s
            + shape.n_layers * (b.prompt_layer_us + (b.moe_prompt_layer_us if shape.is_moe
                                                     else 0.0)) / 1e6)


def usable_memory_gb(chip: Chip, memory_gb: float, priors: Priors) -> float:
    """How much of a memory size the GPU may use (macOS caps Apple's GPU working set), in
    GB (10^9 bytes) like the model sizes.

    Memory is sold in binary units: a "16 GB" card or Mac holds 16 GiB (17.2 x 10^9 bytes;
    an RTX 4080 runs LLaMA 3 8B F16, 16.1 x 10^9 bytes of weights, in llama-bench).
    """
    mem = priors.memory
    if chip.vendor == "apple":
        share = (mem["apple_share_small"] if memory_gb <= mem["apple_small_up_to_gb"]
                 else mem["apple_share"])
    elif chip.vendor == "cpu" or chip.memory_class == "lpddr":
        share = mem["shared_share"]
    else:
        share = mem["gpu_share"]
    return memory_gb * 2 ** 30 / GB * share


def memory_breakdown(shape: ModelShape, priors: Priors, depth: int = 0,
                     n_tokens: int = 512) -> dict[str, float]:
    """GB needed: weights, KV cache for depth + n_tokens, compute buffer, and their sum.

    The compute buffer is llama.cpp's for one ubatch: the logits (n_vocab floats a token)
    and a few activations of the embedding width, which is what the measured CUDA buffers
    of the committed runs show (66.5 MiB TinyLlama, 89 MiB LLaMA-2 7B, 97 MiB SmolLM2).
    """
    weights = shape.model_bytes
    kv = shape.kv_cache_bytes(depth + n_tokens, priors.ubatch)
    compute = priors.ubatch * 4 * (shape.n_vocab + 2 * shape.n_embd)
    extra = priors.memory["overhead_gb"] * GB
    return {"weights_gb": weights / GB, "kv_gb": kv / GB, "compute_gb": compute / GB,
            "memory_needed_gb": (weights + kv + compute + extra) / GB}


def memory_needed_gb(model_bytes: float, priors: Priors, shape: ModelShape | None = None,
                     depth: int = 0) -> float:
    """Weights plus KV cache and compute buffers (from the shape when known)."""
    if shape is None:
        mem = priors.memory
        return model_bytes / GB * (1 + mem["overhead_share"]) + mem["overhead_gb"]
    return memory_breakdown(shape, priors, depth)["memory_needed_gb"]


def fitting_memory(chip: Chip, model_bytes: float, priors: Priors,
                   need_gb: float | None = None) -> tuple[float, ...]:
    """The chip's memory configurations that can hold the model."""
    need = need_gb if need_gb is not None else memory_needed_gb(model_bytes, priors)
    return tuple(m for m in chip.memory_gb if usable_memory_gb(chip, m, priors) >= need)


def prompt_prior(chip: Chip, shape: ModelShape, priors: Priors, depth: float = 0,
                 n_prompt: int = 512, units: Mapping[str, str] | None = None,
                 config: RunConfig = FULL) -> tuple[float | None, float]:
    """Prompt tok/s the priors expect on the GPU (None without a compute figure), and the
    share of that time the context depth adds (`attention_share`)."""
    seconds = prompt_seconds(chip, shape, priors, depth, n_prompt, units, config)
    if not seconds:
        return None, 0.0
    bare = (prompt_seconds(chip, shape, priors, 0, n_prompt, units, config) if depth
            else seconds)
    return 1 / seconds, 1 - bare / seconds


def attention_share(chip: Chip, shape: ModelShape, priors: Priors, depth: float,
                    n_prompt: int = 512, units: Mapping[str, str] | None = None) -> float:
    """The share of the projected prompt time that the context depth adds: 1 - t(0) / t(d).

    It is the part of a prompt projection that rests on `prompt_attention`, the term the
    depth checks find least certain (its share of FP16 peak differs about threefold
    between model shapes), so a prediction interval widens with it."""
    return prompt_prior(chip, shape, priors, depth, n_prompt, units)[1]

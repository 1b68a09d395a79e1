"""Project measured llama.cpp throughput onto other chips, and check the projection.

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
unless a model size is given.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

import yaml

from benchkit.projection.chips import Chip, get_chip, load_chips
from benchkit.core.errors import BenchkitError
from benchkit.models.quants import bits_per_weight
from benchkit.workloads.testnames import parse as parse_test   # "tg128 @ d4096" -> (tg, 128, 4096)

METHODS = ("roofline", "bandwidth")
PRIORS_FILE = "benchkit/data/projection.yaml"
DEFAULT_QUANT = "Q4_K_M"
GB = 1e9
PROMPT_PRIOR_SIGMA = 100.0   # effectively flat: see fit_prompt
VENDOR_SETS = ("apple", "nvidia", "amd", "intel", "cpu")
QUANT_KINDS = ("f16", "q8", "q4", "k", "iq")
PROMPT_UNITS = ("fp32", "matrix", "int8", "dequant-f16")
# Engines whose tg / pp figures time llama.cpp's kernels: in process and llama.cpp's own
# benchmark. A server (llama-server, Ollama, an OpenAI-compatible endpoint) adds HTTP,
# tokenization and scheduling to every token, which no chip parameter describes.
KERNEL_ENGINES = ("llama-cpp-python", "llama-bench")


# ----------------------------------------------------------------------------- model shapes

def quant_kind(quant: str | None) -> str:
    """The kernel family llama.cpp runs for a GGUF type: f16, q8, q4 (legacy), k or iq.

    Dequantization work differs by family (K-quants unpack sub-block scales, IQ types
    look up grids), so the decode model carries one dequant cost per family.
    """
    q = (quant or DEFAULT_QUANT).upper().replace("-", "_")
    if q in ("F32", "F16", "BF16"):
        return "f16"
    if q.startswith("Q8"):
        return "q8"
    if q.startswith(("IQ", "TQ")):
        return "iq"
    if "_K" in q:
        return "k"
    return "q4"


@dataclass(frozen=True)
class ModelShape:
    """What the model does per token: bytes, layers, KV-cache and matrix shapes.

    Comes from a GGUF header, a preset (benchkit/data/presets.yaml) or, failing both, the
    typical shape for the parameter count (`source` says which).
    """

    n_params: float
    model_bytes: float
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    tied_embeddings: bool
    quant: str
    source: str

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V, F16, every layer: what each token of context adds to the cache."""
        return 2 * self.n_layers * self.n_head_kv * self.head_dim * 2

    @property
    def embedding_bytes(self) -> float:
        """Bytes of an untied token-embedding table: looked up one row a token, not streamed."""
        if self.tied_embeddings or not self.n_params:
            return 0.0
        # The file's average bytes per weight: no lookup of the type, which may be one
        # quants.yaml does not list (the embedding's own type often differs anyway).
        return self.n_vocab * self.n_embd * self.model_bytes / self.n_params

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes every generated token reads."""
        return max(self.model_bytes - self.embedding_bytes, 0.5 * self.model_bytes)

    @property
    def matmul_params(self) -> float:
        """Weights that take part in matrix products (the embedding lookup does not)."""
        unused = 0 if self.tied_embeddings else self.n_vocab * self.n_embd
        return max(self.n_params - unused, 0.5 * self.n_params)

    def kv_bytes(self, tokens: float) -> float:
        return self.kv_bytes_per_token * max(tokens, 0)


def shape_from_preset(key: str, quant: str, model_bytes: float | None = None) -> ModelShape:
    """The shape of a preset model in a GGUF type (file size from the type if not given)."""
    from benchkit.models import synth

    p = synth.get_preset(key, field="preset")
    n = float(synth.n_params(p))
    nbytes = model_bytes or n * bits_per_weight(quant) / 8
    return ModelShape(n, nbytes, p.n_layers, p.n_embd, p.n_head, p.n_head_kv, p.head_dim,
                      p.n_vocab, p.tied_embeddings, quant.upper(), f"preset {key}")


def shape_from_gguf(path: str) -> ModelShape:
    """The shape a GGUF header states (llama-style metadata keys)."""
    from benchkit.models.gguf import read_gguf_info

    info = read_gguf_info(path)
    meta, arch = info.metadata, info.architecture or "llama"
    names = {t[0]: t for t in info.tensors}

    def key(name: str) -> int | None:
        value = meta.get(f"{arch}.{name}")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    n_embd = key("embedding_length") or 0
    n_head = key("attention.head_count") or 1
    head_dim = key("attention.key_length") or (n_embd // n_head if n_head else 0)
    embd = names.get("token_embd.weight")
    n_vocab = key("vocab_size") or (max(embd[1]) if embd else 0)
    if not (n_embd and info.n_layers):
        raise BenchkitError("the GGUF header lacks the layer count or embedding length",
                            file=path, field=f"{arch}.embedding_length")
    return ModelShape(float(info.n_params), float(info.size_bytes), int(info.n_layers), n_embd,
                      n_head, key("attention.head_count_kv") or n_head, head_dim, n_vocab,
                      "output.weight" not in names, info.file_type or DEFAULT_QUANT,
                      f"GGUF header of {path}")


def guess_shape(n_params: float | None, model_bytes: float | None, n_layers: int | None,
                quant: str | None, priors: Priors, preset: str | None = None) -> ModelShape:
    """The best shape known for a model: a named preset, a preset with the same parameter
    and layer counts (a stand-in, or the real model it was made from), else the typical
    shape of its size from projection.yaml (`source` then says "typical")."""
    quant = (quant or DEFAULT_QUANT).upper()
    if preset:
        try:
            return shape_from_preset(preset, quant, model_bytes)
        except BenchkitError:
            pass
    if n_params is None and model_bytes:
        n_params = model_bytes * 8 / bits_per_weight(quant)
    if n_params is None:
        raise BenchkitError("the model's size is unknown: give --model-gb (or a result file)",
                            field="--model-gb")
    match = _preset_by_counts(round(n_params), n_layers)
    if match:
        return shape_from_preset(match, quant, model_bytes)
    typical = _typical(n_params, priors)
    layers = int(n_layers or estimate_layers(n_params, priors))
    head_dim = int(typical["head_dim"])
    n_embd = int(typical["n_embd"])
    return ModelShape(float(n_params), float(model_bytes or n_params * bits_per_weight(quant) / 8),
                      layers, n_embd, max(n_embd // head_dim, 1), int(typical["n_head_kv"]),
                      head_dim, int(typical["n_vocab"]), False, quant,
                      f"typical shape of a {n_params / 1e9:.3g}B model ({typical['model']})")


@functools.lru_cache(maxsize=1)
def _preset_counts() -> dict[tuple[int, int], str]:
    from benchkit.models import synth

    out = {}
    for key in synth.preset_names():
        p = synth.get_preset(key)
        out[(synth.n_params(p), p.n_layers)] = key
    return out


def _preset_by_counts(n_params: int, n_layers: int | None) -> str | None:
    for (n, layers), key in _preset_counts().items():
        if abs(n / n_params - 1) < 0.005 and (n_layers is None or layers == n_layers):
            return key
    return None


def _typical(n_params: float, priors: Priors) -> dict[str, Any]:
    """The typical shape nearest in log(parameters)."""
    return min(priors.typical_shapes,
               key=lambda s: abs(math.log(n_params / (s["params_b"] * 1e9))))


# ----------------------------------------------------------------------------- data types

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

    def units_on(self, backend: str) -> Mapping[str, str] | None:
        """The prompt kernels the measuring build ran on a backend, where they differ from
        projection.yaml's (`prompt_units`: backend -> {f16|quant: unit})."""
        return (self.prompt_units or {}).get(backend)


@dataclass(frozen=True)
class BackendPriors:
    """Per-backend parameters of the roofline model (projection.yaml says what each means)."""

    efficiency: Mapping[str, float]
    efficiency_multi_die: float
    layer_latency_ms: float
    layer_compute_ms_tflops: float
    dequant: Mapping[str, float]
    prompt_units: Mapping[str, str]
    prompt_efficiency: Mapping[str, float]
    prompt_multi_die_share: float
    prompt_layer_us: float
    prompt_vector: Mapping[str, float] = field(default_factory=dict)
    prompt_power: float = 0.0
    prompt_power_exponent: float = 3.0
    prompt_attention: float = 0.0
    compute: str = "fp32"
    fitted_on: str = ""

    @property
    def efficiency_single_die(self) -> float:
        """The share of peak bandwidth of the backend's most common memory class."""
        return max(self.efficiency.values())


@dataclass(frozen=True)
class Priors:
    """Everything the roofline method assumes before it sees a measurement."""

    backends: Mapping[str, BackendPriors]
    interval: float
    overlap: float
    ubatch: int
    decode_sigma: Mapping[str, float]
    prompt_sigma: Mapping[str, float]
    calibration_sigma: float
    cross_quant_sigma: Mapping[str, float]
    depth_attention_sigma: Mapping[str, float]
    cross_backend_sigma: float
    unknown_compute_sigma: float
    observation_sigma: float
    assumed_clock_mhz: Mapping[str, float]
    memory: Mapping[str, float]
    typical_shapes: tuple[dict[str, Any], ...]
    calibrated: Mapping[str, Mapping[str, Any]]

    @property
    def z(self) -> float:
        """Half-width of the central interval in standard deviations (1.645 for 90%)."""
        return NormalDist().inv_cdf(0.5 + self.interval / 2)

    @property
    def model_shapes(self) -> tuple[tuple[float, int], ...]:
        return tuple((float(s["params_b"]), int(s["layers"])) for s in self.typical_shapes)

    @property
    def decode_model_sigma(self) -> float:
        return self.observation_sigma

    @property
    def prompt_model_sigma(self) -> float:
        return self.observation_sigma

    def backend(self, name: str) -> BackendPriors:
        if name not in self.backends:
            raise BenchkitError(f"no priors for backend {name!r}", file=PRIORS_FILE,
                                field="backends")
        return self.backends[name]


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


# Optional per-backend scalars and their values when absent (BackendPriors' defaults, so
# the two cannot drift): no power limit modelled (prompt_power 0), attention at the F16
# GEMM's share (prompt_attention 0).
OPTIONAL_SCALARS = {f.name: f.default for f in fields(BackendPriors)
                    if f.name in ("prompt_power", "prompt_power_exponent", "prompt_attention")}


def _optional(entry: Mapping[str, Any], key: str, default: float, file: str,
              where: str) -> float:
    """An optional scalar: a number >= 0 (an exponent > 0), or the default."""
    value = entry.get(key, default)
    if not _positive(value) or (key.endswith("exponent") and not value):
        need = "a positive number" if key.endswith("exponent") else "a number >= 0"
        raise BenchkitError(f"must be {need}, got {value!r}", file=file,
                            field=f"{where}.{key}")
    return float(value)


def _parse_backend(name: str, entry: Any, file: str) -> BackendPriors:
    if not isinstance(entry, dict):
        raise BenchkitError("must be a mapping", file=file, field=f"backends.{name}")
    where = f"backends.{name}"
    for key in ("efficiency", "dequant", "prompt_efficiency", "prompt_units"):
        if not isinstance(entry.get(key), dict) or not entry[key]:
            raise BenchkitError("must be a non-empty mapping", file=file, field=f"{where}.{key}")
    for key in ("efficiency", "dequant", "prompt_efficiency"):
        for sub, value in entry[key].items():
            if not _positive(value):
                raise BenchkitError(f"must be a number >= 0, got {value!r}", file=file,
                                    field=f"{where}.{key}.{sub}")
    for sub, unit in entry["prompt_units"].items():
        if unit not in PROMPT_UNITS:
            raise BenchkitError(f"must be one of {', '.join(PROMPT_UNITS)}, got {unit!r}",
                                file=file, field=f"{where}.prompt_units.{sub}")
    scalars = ("efficiency_multi_die", "layer_latency_ms", "layer_compute_ms_tflops",
               "prompt_multi_die_share", "prompt_layer_us")
    for key in scalars:
        if not _positive(entry.get(key)):
            raise BenchkitError(f"missing or invalid ({entry.get(key)!r})", file=file,
                                field=f"{where}.{key}")
    optional = {key: _optional(entry, key, default, file, where)
                for key, default in OPTIONAL_SCALARS.items()}
    return BackendPriors(
        efficiency=dict(entry["efficiency"]), dequant=dict(entry["dequant"]),
        prompt_units=dict(entry["prompt_units"]),
        prompt_efficiency=dict(entry["prompt_efficiency"]),
        prompt_vector=dict(entry.get("prompt_vector") or {}),
        **optional, **{k: float(entry[k]) for k in scalars},
        compute=str(entry.get("compute", "fp32")), fitted_on=str(entry.get("fitted_on", "")))


# The per-backend sigmas of projection.yaml's `uncertainty` (each a mapping with a default).
SIGMA_TABLES = ("decode_sigma", "prompt_sigma", "cross_quant_sigma", "depth_attention_sigma")


def parse_priors(doc: Mapping[str, Any], file: str = PRIORS_FILE) -> Priors:
    """Check the priors document and build Priors; errors name the field."""
    if not isinstance(doc, Mapping):
        raise BenchkitError("expected a mapping", file=file, field="backends")
    backends = {name: _parse_backend(name, entry, file)
                for name, entry in (doc.get("backends") or {}).items()}
    if not backends:
        raise BenchkitError("needs at least one backend", file=file, field="backends")
    unc = doc.get("uncertainty") or {}
    for key in ("calibration_sigma", "cross_backend_sigma", "unknown_compute_sigma",
                "observation_sigma"):
        if not _positive(unc.get(key)):
            raise BenchkitError("missing or invalid", file=file, field=f"uncertainty.{key}")
    for key in SIGMA_TABLES:
        if not isinstance(unc.get(key), dict) or "default" not in unc[key]:
            raise BenchkitError("needs a mapping with a `default`", file=file,
                                field=f"uncertainty.{key}")
    shapes = tuple(sorted((dict(s) for s in doc.get("model_shapes") or []),
                          key=lambda s: s["params_b"]))
    if not shapes:
        raise BenchkitError("needs at least one entry", file=file, field="model_shapes")
    for i, s in enumerate(shapes):
        for key in ("params_b", "layers", "n_embd", "n_head_kv", "head_dim", "n_vocab"):
            if not _positive(s.get(key)):
                raise BenchkitError("missing or invalid", file=file, field=f"model_shapes[{i}].{key}")
    return Priors(backends=backends, interval=float(doc.get("interval", 0.9)),
                  overlap=float(doc.get("overlap", 4.0)), ubatch=int(doc.get("ubatch", 512)),
                  **{k: dict(unc[k]) for k in SIGMA_TABLES},
                  **{k: float(unc[k]) for k in ("calibration_sigma", "cross_backend_sigma",
                                                "unknown_compute_sigma", "observation_sigma")},
                  assumed_clock_mhz=dict(doc.get("assumed_clock_mhz") or {}),
                  memory=dict(doc.get("memory") or {}), typical_shapes=shapes,
                  calibrated=dict(doc.get("calibrated") or {}))


@functools.lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (`benchkit/data/projection.yaml`)."""
    text = resources.files("benchkit").joinpath("data/projection.yaml").read_text(encoding="utf-8")
    return parse_priors(yaml.safe_load(text))


def with_backend(priors: Priors, name: str, backend: BackendPriors) -> Priors:
    """Priors with one backend's parameters replaced (what the fit and its checks use)."""
    return replace(priors, backends={**priors.backends, name: backend})


# ----------------------------------------------------------------------------- chip physics

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


def prompt_unit_tflops(chip: Chip, b: BackendPriors, quant: str | None,
                       units: Mapping[str, str] | None = None) -> float | None:
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
    tflops = prompt_unit_tflops(chip, b, quant, units)
    if not tflops:
        return None
    return tflops * (b.prompt_multi_die_share if chip.multi_die else 1.0)


def _as_shape(model: ModelShape | float, n_layers: int | None, priors: Priors) -> ModelShape:
    if isinstance(model, ModelShape):
        return model
    return guess_shape(None, float(model), n_layers, None, priors)


def decode_terms(chip: Chip, model: ModelShape | float, n_layers: int | None,
                 priors: Priors, depth: float = 0, n_gen: int = 128) -> tuple[float, float]:
    """Seconds per token before calibration: (bytes-and-dequant term, fixed per-token term).

    The first term is the smooth maximum of streaming the weights and the KV cache at
    the current depth, and of dequantizing the weights on the cores: whichever is slower
    sets the pace, and near the crossover both cost. The second does not grow with bytes:
    kernel launches and small per-layer work.
    """
    shape = _as_shape(model, n_layers, priors)
    b = priors.backend(chip.backend)
    kv = shape.kv_bytes(depth + n_gen / 2)
    memory_s = (shape.streamed_bytes + kv) / (efficiency(chip, b) * chip.bandwidth_gbs * GB)
    dequant_s = shape.matmul_params * b.dequant.get(quant_kind(shape.quant), 0.0) / (
        core_rate(chip, priors) * 1e9)
    p = priors.overlap
    stream_s = (memory_s ** p + dequant_s ** p) ** (1 / p)
    tflops, _ = compute_tflops(chip, priors)
    layers = n_layers or shape.n_layers
    fixed_s = layers * (b.layer_latency_ms + b.layer_compute_ms_tflops / tflops) / 1000
    return stream_s, fixed_s


def prompt_seconds(chip: Chip, shape: ModelShape, priors: Priors, depth: float = 0,
                   n_prompt: int = 512, units: Mapping[str, str] | None = None) -> float | None:
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
    gemm = "f16" if dequant_copy else group
    matrix_s = 2 * shape.matmul_params / (b.prompt_efficiency[gemm] * compute * 1e12)
    passes = math.ceil(n_prompt / priors.ubatch)
    read = shape.streamed_bytes + (4 * shape.matmul_params if dequant_copy else 0.0)
    weights_s = read * passes / n_prompt / (efficiency(chip, b) * chip.bandwidth_gbs * GB)
    attn_compute = (prompt_compute(chip, priors, "F16") or compute)
    attn_s = 4 * shape.n_layers * shape.n_head * shape.head_dim * (depth + n_prompt / 2) / (
        (b.prompt_attention or b.prompt_efficiency["f16"]) * attn_compute * 1e12)
    vector_s = shape.matmul_params * b.prompt_vector.get(group, 0.0) / (
        core_rate(chip, priors) * 1e9 * priors.ubatch)
    clock = sustained_clock_share(chip, b, priors)
    return ((matrix_s + attn_s + vector_s) / clock + weights_s
            + shape.n_layers * b.prompt_layer_us / 1e6)


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
    kv = shape.kv_bytes(depth + n_tokens)
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


def _same_case(a: Measurement, b: Measurement) -> bool:
    """Same model at the same context depth."""
    return _same_model(a, b) and (a.depth or 0) == (b.depth or 0)


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


def chip_of(m: Measurement, chips: Mapping[str, Chip]) -> Chip:
    return m.chip if m.chip is not None else chips[m.chip_id]


def shape_of(m: Measurement, priors: Priors) -> ModelShape | None:
    """The measurement's model shape (as given, from its preset, or guessed)."""
    if m.shape is not None:
        return m.shape
    if not (m.model_bytes or m.n_params):
        return None
    return guess_shape(m.n_params, m.model_bytes, m.n_layers, m.quant, priors, m.preset)


def fit_decode(measurements: Sequence[Measurement], chips: Mapping[str, Chip],
               priors: Priors) -> Fit | None:
    """Calibrate the streaming and fixed-cost scale factors on every usable decode figure."""
    import numpy as np

    obs = []
    for m in measurements:
        shape = shape_of(m, priors)
        if m.tg_tps and shape:
            stream, fixed = decode_terms(chip_of(m, chips), shape, m.n_layers, priors,
                                         m.depth, m.tg_tokens)
            obs.append((stream, fixed, math.log(1 / m.tg_tps),
                        _obs_sigma(priors.observation_sigma, m.tg_cv, m.tg_n)))
    if not obs:
        return None
    stream, fixed, y, sig = (np.array(col) for col in zip(*obs))

    def residuals(theta):
        t = np.exp(theta[0]) * stream + np.exp(theta[1]) * fixed
        return (np.log(t) - y) / sig

    theta, cov = _solve(residuals, 2, priors.calibration_sigma)
    return Fit(theta, cov, frozenset(chip_of(m, chips).backend for m in measurements), len(obs))


def _prompt_prior(chip: Chip, shape: ModelShape, priors: Priors, depth: float = 0,
                  n_prompt: int = 512, units: Mapping[str, str] | None = None
                  ) -> tuple[float | None, float]:
    """Prompt tok/s the priors expect (None without a compute figure), and the share of
    that time the context depth adds (`attention_share`)."""
    seconds = prompt_seconds(chip, shape, priors, depth, n_prompt, units)
    if not seconds:
        return None, 0.0
    bare = prompt_seconds(chip, shape, priors, 0, n_prompt, units) if depth else seconds
    return 1 / seconds, 1 - bare / seconds


def attention_share(chip: Chip, shape: ModelShape, priors: Priors, depth: float,
                    n_prompt: int = 512, units: Mapping[str, str] | None = None) -> float:
    """The share of the projected prompt time that the context depth adds: 1 - t(0) / t(d).

    It is the part of a prompt projection that rests on `prompt_attention`, the term the
    depth checks find least certain (its share of FP16 peak differs about threefold
    between model shapes), so a prediction interval widens with it."""
    return _prompt_prior(chip, shape, priors, depth, n_prompt, units)[1]


def fit_prompt(measurements: Sequence[Measurement], chips: Mapping[str, Chip],
               priors: Priors) -> Fit | None:
    """Calibrate the prompt-processing scale factor on every usable prompt figure."""
    import numpy as np

    obs = []
    for m in measurements:
        shape = shape_of(m, priors)
        if not (m.pp_tps and shape):
            continue
        chip = chip_of(m, chips)
        prior, share = _prompt_prior(chip, shape, priors, m.depth, m.pp_tokens,
                                     m.units_on(chip.backend))
        if prior:
            obs.append((math.log(m.pp_tps / prior),
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
            ms = [m for m in self.measurements
                  if backend is None or chip_of(m, self.chips).backend == backend]
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
                   n_gen: int = 128) -> tuple[float, float, float] | None:
    """Decode tok/s with its prediction interval for one chip, from the calibration.

    The interval's width is the leave-one-chip-out spread of the model on the validation
    data (projection.yaml `uncertainty.decode_sigma`), widened by the calibration's own
    uncertainty and, across backends or for an unknown clock, by the sigmas stated there.
    """
    fit, crossed = cal.decode_fit(chip)
    if fit is None:
        return None
    priors = cal.priors
    stream, fixed = decode_terms(chip, model, n_layers, priors, depth, n_gen)
    a, b = math.exp(fit.theta[0]) * stream, math.exp(fit.theta[1]) * fixed
    t = a + b
    g = (a / t, b / t)
    var = sum(g[i] * fit.cov[i][j] * g[j] for i in range(2) for j in range(2))
    var += _sigma(priors.decode_sigma, chip.backend) ** 2
    if crossed or chip.backend not in priors.calibrated:
        var += priors.cross_backend_sigma ** 2
    if not compute_tflops(chip, priors)[1]:
        var += (priors.unknown_compute_sigma * b / t) ** 2
    return _interval(1 / t, math.sqrt(var), priors)


def predict_prompt(cal: Calibration, chip: Chip, model: ModelShape | float,
                   model_bytes: float | None = None, depth: float = 0,
                   n_prompt: int = 512, units: Mapping[str, str] | None = None
                   ) -> tuple[float, float, float] | None:
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
    prior, share = _prompt_prior(chip, shape, priors, depth, n_prompt, units)
    if fit is None or prior is None or crossed:
        return None
    var = fit.cov[0][0] + _sigma(priors.prompt_sigma, chip.backend) ** 2
    if other_group:
        var += _sigma(priors.cross_quant_sigma, chip.backend) ** 2
    # The calibration absorbs the attention term's error at the anchors' depths, not at
    # another depth: widen by how much more (or less) of the time it makes here.
    deeper = share - fit.attention_share
    var += (deeper * _sigma(priors.depth_attention_sigma, chip.backend)) ** 2
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


def _select_chips(chips_arg: Iterable[str | Chip] | str | None, anchor: Chip,
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
    same = [m for m in measurements if _same_model(m, target)]
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
            shape: ModelShape | None = None, quant: str | None = None) -> list[dict[str, Any]]:
    """One dict per chip: projected decode / prompt tok/s with ranges, fit and status.

    The first measurement is the anchor; the model projected is the anchor's unless
    `model_bytes` (or `shape`) is given, at the anchor's context depth unless `depth` is.
    `chips` takes ids, Chip objects (a --chip-spec), "apple" / "nvidia" / "amd" / "intel" /
    "cpu" / "all"; the default is every chip of the anchor's vendor. Rows for chips whose
    memory cannot hold the model (weights, KV cache at the depth, compute buffer) carry
    status "does not fit" and no figures; rows outside what the model was fitted and
    checked on say so (`in_range` False, `range_note`).
    """
    if method not in METHODS:
        raise BenchkitError(f"unknown method {method!r}; use one of {', '.join(METHODS)}",
                            field="method")
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = [_complete(m, priors) for m in _check_measurements(measurements, all_chips)]
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
    need = memory_breakdown(target_shape, priors, depth) if target_shape else None
    if nbytes is not None:
        _check_fits_somewhere(nbytes, all_chips, priors)
    target = Measurement(chip_id=anchor.chip_id, tg_tps=None, model_bytes=nbytes, depth=depth,
                         model_key=anchor.model_key if nbytes == anchor.model_bytes else None)
    cal = Calibration(ms, all_chips, priors)
    bw_tg, bw_pp = _bandwidth_factors(ms, anchor, all_chips)
    size_ratio = (anchor.model_bytes / nbytes) if (anchor.model_bytes and nbytes) else 1.0
    anchor_chip = chip_of(anchor, all_chips)
    rows = []
    for chip in _select_chips(chips, anchor_chip, all_chips):
        measured = next((m for m in ms if chip_of(m, all_chips).id == chip.id
                         and _same_case(m, target)), None)
        fits_mem = fitting_memory(chip, nbytes, priors, need["memory_needed_gb"]) \
            if need else None
        row = _row(chip, method, target_shape, estimated, depth, measured, fits_mem, need)
        if row["fits"]:
            if method == "bandwidth":
                _bandwidth_row(row, chip, bw_tg, bw_pp, size_ratio)
            else:
                _roofline_row(row, cal, chip, target_shape, depth, anchor)
        rows.append(row)
    return rows


def _bandwidth_row(row: dict[str, Any], chip: Chip, bw_tg: float | None, bw_pp: float | None,
                   size_ratio: float) -> None:
    if bw_tg:
        tg = bw_tg * chip.bandwidth_gbs * size_ratio
        row.update(tg_tps=tg, tg_low=tg, tg_high=tg)
    if bw_pp:
        pp = bw_pp * chip.bandwidth_gbs * size_ratio
        row.update(pp_tps=pp, pp_low=pp, pp_high=pp)


def _roofline_row(row: dict[str, Any], cal: Calibration, chip: Chip, shape: ModelShape,
                  depth: int, anchor: Measurement) -> None:
    tg = predict_decode(cal, chip, shape, shape.n_layers, depth, anchor.tg_tokens)
    if tg:
        row.update(tg_tps=tg[0], tg_low=tg[1], tg_high=tg[2])
    pp = predict_prompt(cal, chip, shape, shape.model_bytes, depth, anchor.pp_tokens,
                        anchor.units_on(chip.backend))
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


def typical_shape(size_b: float, quant: str, priors: Priors) -> ModelShape:
    """The shape `--sizes` projects for a size in billions of parameters: the typical
    llama-style decoder of that size (layers interpolated, widths of the nearest)."""
    n_params = size_b * 1e9
    typical = _typical(n_params, priors)
    head_dim, n_embd = int(typical["head_dim"]), int(typical["n_embd"])
    return ModelShape(n_params, n_params * bits_per_weight(quant) / 8,
                      estimate_layers(n_params, priors), n_embd, max(n_embd // head_dim, 1),
                      int(typical["n_head_kv"]), head_dim, int(typical["n_vocab"]), False,
                      quant.upper(), f"typical shape ({typical['model']})")


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


def _model_label(m: Measurement) -> str:
    label = m.model_name or (f"{m.model_bytes / GB:.2f} GB model" if m.model_bytes else "model")
    return f"{label} @ d{m.depth}" if m.depth else label


def validate(measurements: Iterable[Measurement], *,
             methods: Sequence[str] = ("bandwidth", "roofline"),
             anchors: Iterable[str] | None = None,
             priors: Priors | None = None,
             targets: Iterable[str] | None = None) -> dict[str, Any]:
    """Project from each anchor chip onto every other chip measured on the same model.

    Each anchor is calibrated on its own measurements only (all its model sizes), so every
    comparison is out of sample for the calibration (whether the priors saw the target is
    the caller's business: scripts/projection_accuracy.py refits them without it). Returns
    the pairs with their errors (projected / measured - 1), per-chip mean absolute errors
    and the mean absolute percentage error per method.
    """
    priors = priors or load_priors()
    all_chips = load_chips()
    ms = _check_measurements(measurements, all_chips)
    wanted = set(targets) if targets is not None else None
    anchor_ids = list(dict.fromkeys(anchors)) if anchors else list(
        dict.fromkeys(m.chip_id for m in ms))
    pairs = []
    for anchor_id in anchor_ids:
        anchor = get_chip(anchor_id, all_chips).id
        own = [m for m in ms if m.chip_id == anchor]
        for base in own:
            others = [m for m in ms if m.chip_id != base.chip_id and _same_case(m, base)
                      and (wanted is None or m.chip_id in wanted)]
            if not others:
                continue
            calib = [base] + [m for m in own if m is not base]
            chip_ids = list(dict.fromkeys(m.chip_id for m in others))
            projected = {meth: {r["chip"]: r for r in project(
                calib, method=meth, chips=chip_ids, priors=priors)} for meth in methods}
            for other in others:
                pairs.append(_pair(base, other, projected, methods))
    return {"pairs": pairs, "methods": list(methods), "per_chip": _per_chip(pairs, methods),
            "mape": {meth: {kind: _mape([p[meth][f"{kind}_error"] for p in pairs])
                            for kind in ("tg", "pp")} for meth in methods}}


def _pair(base: Measurement, other: Measurement, projected: dict[str, dict[str, Any]],
          methods: Sequence[str]) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "anchor": base.chip_id, "chip": other.chip_id, "model": _model_label(base),
        "depth": base.depth, "measured_tg": other.tg_tps, "measured_pp": other.pp_tps,
        "source": other.source}
    for meth in methods:
        row = projected[meth][other.chip_id]
        pair[meth] = {
            "tg": row["tg_tps"], "tg_low": row["tg_low"], "tg_high": row["tg_high"],
            "pp": row["pp_tps"], "pp_low": row["pp_low"], "pp_high": row["pp_high"],
            "tg_error": _err(row["tg_tps"], other.tg_tps),
            "pp_error": _err(row["pp_tps"], other.pp_tps)}
    return pair


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
        return [first] + [m for m in rest if m.chip_id != anchor_id and _same_case(m, first)]
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
        m.chip_id == anchor_id or _same_model(m, first))]

"""The roofline method's priors: the per-backend parameters and the uncertainties of
benchkit/data/projection.yaml, checked field by field (errors name the field)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from statistics import NormalDist
from typing import Any, Mapping

import yaml

from benchkit.core.errors import BenchkitError

PRIORS_FILE = "benchkit/data/projection.yaml"
PROMPT_UNITS = ("fp32", "matrix", "int8", "dequant-f16")


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
    # Projection v3 terms (docs/projection.md): per-layer cycles at the chip's clock, the
    # extra per-layer costs of a routed-expert layer and of attention without flash
    # attention, the KQ matrix's trips through memory without it (prompt), the MMQ
    # kernels' int8 ops per SM (CU) per clock, the FP16 flops per SM (CU) per clock a
    # backend's own matrix shaders reach, and the flash-attention default.
    layer_kcycles: float = 0.0
    layer_tensor_us: float = 0.0
    legacy_layer_us: float = 0.0
    moe_layer_us: float = 0.0
    moe_prompt_layer_us: float = 0.0
    moe_prompt_tokens_half: float = 0.0
    fa_off_layer_us: float = 0.0
    fa_off_kq_passes: float = 0.0
    mmq_ops_per_core_clock: float = 0.0
    matrix_ops_per_core_clock: float = 0.0
    default_flash_attn: bool = False
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
    model_transfer_sigma: Mapping[str, float]
    cross_backend_sigma: float
    unknown_compute_sigma: float
    observation_sigma: float
    host_sigma: float
    assumed_clock_mhz: Mapping[str, float]
    memory: Mapping[str, float]
    typical_shapes: tuple[dict[str, Any], ...]
    calibrated: Mapping[str, Mapping[str, Any]]
    host: Mapping[str, float] = field(default_factory=dict)

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
                    if f.name in ("prompt_power", "prompt_power_exponent", "prompt_attention",
                                  "layer_kcycles", "layer_tensor_us", "legacy_layer_us", "moe_layer_us", "moe_prompt_layer_us",
                                  "moe_prompt_tokens_half",
                                  "fa_off_layer_us", "fa_off_kq_passes",
                                  "mmq_ops_per_core_clock", "matrix_ops_per_core_clock")}


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
    fa = entry.get("default_flash_attn", False)
    if not isinstance(fa, bool):
        raise BenchkitError(f"must be true or false, got {fa!r}", file=file,
                            field=f"{where}.default_flash_attn")
    return BackendPriors(
        efficiency=dict(entry["efficiency"]), dequant=dict(entry["dequant"]),
        prompt_units=dict(entry["prompt_units"]),
        prompt_efficiency=dict(entry["prompt_efficiency"]),
        prompt_vector=dict(entry.get("prompt_vector") or {}),
        **optional, **{k: float(entry[k]) for k in scalars}, default_flash_attn=fa,
        compute=str(entry.get("compute", "fp32")), fitted_on=str(entry.get("fitted_on", "")))


SCALAR_SIGMAS = ("calibration_sigma", "cross_backend_sigma", "unknown_compute_sigma",
                 "observation_sigma", "host_sigma")

# The host side of a partly offloaded model (projection.yaml `host`).
HOST_KEYS = ("cpu_efficiency", "link_efficiency", "switch_us", "cpu_layer_us")

# The per-backend sigmas of projection.yaml's `uncertainty` (each a mapping with a default).
SIGMA_TABLES = ("decode_sigma", "prompt_sigma", "cross_quant_sigma", "depth_attention_sigma",
                "model_transfer_sigma")


def parse_priors(doc: Mapping[str, Any], file: str = PRIORS_FILE) -> Priors:
    """Check the priors document and build Priors; errors name the field."""
    if not isinstance(doc, Mapping):
        raise BenchkitError("expected a mapping", file=file, field="backends")
    backends = {name: _parse_backend(name, entry, file)
                for name, entry in (doc.get("backends") or {}).items()}
    if not backends:
        raise BenchkitError("needs at least one backend", file=file, field="backends")
    unc = doc.get("uncertainty") or {}
    for key in SCALAR_SIGMAS:
        if not _positive(unc.get(key)):
            raise BenchkitError("missing or invalid", file=file, field=f"uncertainty.{key}")
    for key in SIGMA_TABLES:
        if not isinstance(unc.get(key), dict) or "default" not in unc[key]:
            raise BenchkitError("needs a mapping with a `default`", file=file,
                                field=f"uncertainty.{key}")
    host = doc.get("host") or {}
    for key in HOST_KEYS:
        if not _positive(host.get(key)):
            raise BenchkitError("missing or invalid", file=file, field=f"host.{key}")
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
                  **{k: float(unc[k]) for k in SCALAR_SIGMAS},
                  assumed_clock_mhz=dict(doc.get("assumed_clock_mhz") or {}),
                  memory=dict(doc.get("memory") or {}), typical_shapes=shapes,
                  calibrated=dict(doc.get("calibrated") or {}),
                  host={k: float(host[k]) for k in HOST_KEYS})


@functools.lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (`benchkit/data/projection.yaml`)."""
    text = resources.files("benchkit").joinpath("data/projection.yaml").read_text(encoding="utf-8")
    return parse_priors(yaml.safe_load(text))


def with_backend(priors: Priors, name: str, backend: BackendPriors) -> Priors:
    """Priors with one backend's parameters replaced (what the fit and its checks use)."""
    return replace(priors, backends={**priors.backends, name: backend})

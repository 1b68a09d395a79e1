"""What a projection is asked about, as the command line names it: a model
("PRESET:QUANT" or a GGUF file), a flash-attention setting, a placement and a host.
Each bad value is one error naming its option."""

from __future__ import annotations

from pathlib import Path

from benchkit.core.errors import BenchkitError
from benchkit.projection.placement import Host, RunConfig
from benchkit.projection.shapes import DEFAULT_QUANT, ModelShape, shape_from_gguf, shape_from_preset

# A host's link when none is given: PCIe 4.0 x16, 31.5 GB/s per direction (PCI-SIG), what
# most desktop GPUs of 2021-2026 sit on.
DEFAULT_LINK_GBS = 31.5
FA_WORDS = {"on": True, "off": False, "auto": None}


def model_shape(spec: str, option: str, quant: str | None = None) -> ModelShape:
    """The shape of `PRESET[:QUANT]` or of a GGUF file (`option` names the flag)."""
    from benchkit.models import presets

    path = Path(spec)
    if spec.endswith(".gguf") or path.exists():
        if not path.is_file():
            raise BenchkitError("no such model file (give a .gguf file or PRESET:QUANT)",
                                file=spec, field=option)
        try:
            return shape_from_gguf(spec)
        except BenchkitError as exc:
            raise BenchkitError(f"not a model: {exc.message}", file=spec, field=option) from None
    name, _, q = spec.partition(":")
    if name not in presets.preset_names():
        raise BenchkitError(f"unknown preset {name!r}; use one of "
                            f"{', '.join(presets.preset_names())}, or a .gguf file",
                            field=option)
    q = q or quant or DEFAULT_QUANT
    try:
        presets.check_quant(q, field=option)
    except BenchkitError:
        raise BenchkitError(f"unknown quantization {q!r}; use one of "
                            f"{', '.join(presets.quant_names())}", field=option) from None
    return shape_from_preset(name, presets.canonical_quant(q))


def flash_attn(value: str | None, option: str) -> bool | None:
    """on / off / auto (None: the backend's default)."""
    if value is None:
        return None
    if value.lower() not in FA_WORDS:
        raise BenchkitError(f"must be on, off or auto, got {value!r}", field=option)
    return FA_WORDS[value.lower()]


def run_config(fa: str | None, n_gpu_layers: int | None, n_cpu_moe: int | None,
               option: str = "--fa") -> RunConfig | None:
    """The target's settings, or None when none was given (the anchor's then apply)."""
    if fa is None and n_gpu_layers is None and not n_cpu_moe:
        return None
    for name, value in (("--n-gpu-layers", n_gpu_layers), ("--n-cpu-moe", n_cpu_moe)):
        if value is not None and value < 0:
            raise BenchkitError(f"must be 0 or more, got {value}", field=name)
    return RunConfig(flash_attn=flash_attn(fa, option), n_gpu_layers=n_gpu_layers,
                     n_cpu_moe=n_cpu_moe or 0)


def host(cpu_bw: float | None, link_gbs: float | None, ram_gb: float | None = None,
         needed: bool = False) -> Host | None:
    """The host of a partly offloaded placement (None when not needed and not given)."""
    for name, value in (("--cpu-bw", cpu_bw), ("--link-gbs", link_gbs), ("--ram", ram_gb)):
        if value is not None and not value > 0:
            raise BenchkitError(f"must be a positive number, got {value:g}", field=name)
    if cpu_bw is None:
        if needed:
            raise BenchkitError("a placement with weights in system RAM needs the host's "
                                "memory bandwidth in GB/s (dual-channel DDR5-6000: 96)",
                                field="--cpu-bw")
        return None
    return Host(cpu_bw_gbs=cpu_bw, link_gbs=link_gbs or DEFAULT_LINK_GBS, ram_gb=ram_gb)

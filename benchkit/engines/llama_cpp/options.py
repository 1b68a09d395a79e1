"""The llama.cpp settings shared by every engine that runs llama.cpp itself.

llama-cpp-python in process, llama-bench and llama-server take the same knobs under
different spellings (`n_gpu_layers`, `-ngl`, `--n-gpu-layers`); they are declared once
here, with llama-bench's defaults, and each engine maps them to its own spelling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from benchkit.engines.base import Options, setting

INT32_MAX = 2**31 - 1          # llama.cpp keeps these settings in C ints
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")

_POSINT = {"type": "integer", "minimum": 1, "maximum": INT32_MAX,
           "x-error": f"must be a positive integer (at most {INT32_MAX})"}
_BOOL = {"type": "boolean", "x-error": "must be true or false"}
_KV = {"enum": list(KV_TYPES), "x-error": f"must be one of {', '.join(KV_TYPES)}"}


@dataclass(frozen=True)
class LlamaCppOptions(Options):
    """One llama.cpp configuration; defaults are llama-bench's."""

    n_gpu_layers: int = setting(
        -1, {"type": "integer", "minimum": -1, "maximum": INT32_MAX,
             "x-error": f"must be an integer >= -1 (-1 = all layers), at most {INT32_MAX}"},
        "layers on the GPU; -1 = all (llama-bench -ngl)")
    n_ctx: int | None = setting(
        None, {"anyOf": [{"type": "null"}, _POSINT], "x-error": _POSINT["x-error"]},
        "context size; default: exactly what the workload needs, as llama-bench")
    n_batch: int = setting(2048, _POSINT, "logical batch size (llama-bench -b)")
    n_ubatch: int = setting(512, _POSINT, "physical batch size (llama-bench -ub)")
    n_threads: int | None = setting(
        None, {"anyOf": [{"type": "null"}, _POSINT], "x-error": _POSINT["x-error"]},
        "CPU threads; default: the number of physical cores (llama-bench -t)")
    flash_attn: str = setting(
        "auto", {"anyOf": [{"enum": ["auto", "on", "off"]}, {"type": "boolean"}],
                 "x-error": "must be auto, on or off"},
        "flash attention: auto, on, off (llama-bench -fa)")
    type_k: str = setting("f16", _KV, "K cache type (llama-bench -ctk)")
    type_v: str = setting("f16", _KV, "V cache type (llama-bench -ctv)")
    use_mmap: bool = setting(True, _BOOL, "memory-map the model file (llama-bench -mmp)")
    op_offload: bool = setting(
        True, _BOOL, "with n_gpu_layers 0 on a GPU build, still run large batches' matrix "
        "products on the GPU (llama.cpp's default); false keeps CPU-only runs CPU-only "
        "(llama-bench -nopo 1)")

    def __post_init__(self) -> None:
        # YAML reads on/off as booleans; record the words llama.cpp uses
        if isinstance(self.flash_attn, bool):
            object.__setattr__(self, "flash_attn", "on" if self.flash_attn else "off")

    def resolved(self) -> LlamaCppOptions:
        return self if self.n_threads is not None else replace(
            self, n_threads=default_threads())

    def flash_attn_flag(self) -> str:
        """llama-bench / llama-server's -fa value."""
        return self.flash_attn


def default_threads() -> int:
    """Physical cores: hyper-threads share execution units and slow llama.cpp down."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1

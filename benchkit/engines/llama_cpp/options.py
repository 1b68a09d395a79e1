"""The llama.cpp settings shared by every engine that runs llama.cpp itself.

llama-cpp-python in process, llama-bench and llama-server take the same knobs under
different spellings (`n_gpu_layers`, `-ngl`, `--n-gpu-layers`); they are declared once
here, with llama-bench's defaults, and each engine maps them to its own spelling.

The multi-device settings (`split_mode`, `tensor_split`, `main_gpu`, `devices`) are
llama.cpp's `llama_model_params` of the same names (llama-bench `-sm -ts -mg -dev`,
llama-server `--split-mode --tensor-split --main-gpu --device`); at their defaults they
are left off the command lines, which is what llama.cpp does without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from benchkit.engines.base import Options, setting

INT32_MAX = 2**31 - 1          # llama.cpp keeps these settings in C ints
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")

_POSINT = {"type": "integer", "minimum": 1, "maximum": INT32_MAX,
           "x-error": f"must be a positive integer (at most {INT32_MAX})"}
_BOOL = {"type": "boolean", "x-error": "must be true or false"}
_KV = {"enum": list(KV_TYPES), "x-error": f"must be one of {', '.join(KV_TYPES)}"}
# llama.h enum llama_split_mode; `tensor` (llama.cpp's tensor-parallel meta device) is
# what recent CUDA builds run in parallel, as their CUDA backend no longer has `row` buffers
SPLIT_MODES = ("none", "layer", "row", "tensor")
MAX_DEVICES = 16               # llama_max_devices() (src/llama.cpp): tensor_split's length
DEVICE_NAME = r"^[A-Za-z][A-Za-z0-9_.:\[\]-]*$"   # CUDA0, Vulkan1, ROCm0, MTL0, RPC[host:port]
_SPLIT = {"enum": list(SPLIT_MODES),
          "x-error": f"must be one of {', '.join(SPLIT_MODES)} (llama.cpp's split modes)"}
_TENSOR_SPLIT = {
    "anyOf": [{"type": "null"},
              {"type": "array", "minItems": 1, "maxItems": MAX_DEVICES,
               "items": {"type": "number", "minimum": 0},
               "contains": {"type": "number", "exclusiveMinimum": 0}}],
    "x-error": f"must be a list of 1 to {MAX_DEVICES} proportions >= 0, not all 0, one per "
               "device (e.g. [3, 1])"}
_MAIN_GPU = {"type": "integer", "minimum": 0, "maximum": MAX_DEVICES - 1,
             "x-error": f"must be a device index from 0 to {MAX_DEVICES - 1}"}
_DEVICES = {
    "anyOf": [{"type": "null"},
              {"type": "array", "minItems": 1, "maxItems": MAX_DEVICES, "uniqueItems": True,
               "items": {"type": "string", "pattern": DEVICE_NAME}}],
    "x-error": "must be a list of distinct llama.cpp device names (e.g. [CUDA0, CUDA1]; "
               "llama-bench --list-devices names them)"}


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
        "CPU threads; default: $BENCHKIT_THREADS, else physical cores (llama-bench -t)")
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
    split_mode: str = setting(
        "layer", _SPLIT, "how several GPUs share the model: none (main_gpu only), layer "
        "(consecutive layers per GPU), row (each matrix's rows across GPUs), tensor "
        "(tensor parallel) (llama-bench -sm)")
    tensor_split: tuple[float, ...] | None = setting(
        None, _TENSOR_SPLIT, "share of the model per device, e.g. [3, 1]; default: in "
        "proportion to each device's free memory (llama-bench -ts)", listed=True)
    main_gpu: int = setting(
        0, _MAIN_GPU, "the device of split_mode none, and of the intermediate results and "
        "KV cache of row (llama-bench -mg)")
    devices: tuple[str, ...] | None = setting(
        None, _DEVICES, "the devices to offload to, by llama.cpp's names; default: every "
        "GPU (llama-bench -dev)", listed=True)

    def __post_init__(self) -> None:
        # YAML reads on/off as booleans; record the words llama.cpp uses
        if isinstance(self.flash_attn, bool):
            object.__setattr__(self, "flash_attn", "on" if self.flash_attn else "off")
        # lists as tuples (a frozen configuration), proportions as floats: [3, 1] and
        # [3.0, 1.0] are one configuration and group as one
        if self.tensor_split is not None:
            object.__setattr__(self, "tensor_split",
                               tuple(float(x) for x in self.tensor_split))
        if self.devices is not None:
            object.__setattr__(self, "devices", tuple(self.devices))

    def resolved(self) -> LlamaCppOptions:
        return self if self.n_threads is not None else replace(
            self, n_threads=default_threads())

    def flash_attn_flag(self) -> str:
        """llama-bench / llama-server's -fa value."""
        return self.flash_attn

    def split_asked(self) -> dict[str, Any]:
        """What a placement records of the multi-device settings asked for (what llama.cpp
        made of them is in its log: the buffers and layers per device)."""
        return {"split_mode": self.split_mode, "main_gpu": self.main_gpu,
                "tensor_split": list(self.tensor_split) if self.tensor_split else None,
                "devices_requested": list(self.devices) if self.devices else None}

    def multi_device_flags(self, *, sep: str, long: bool = False) -> list[str]:
        """The multi-device settings that differ from llama.cpp's defaults, as flags:
        llama-bench's short ones with `/` inside one value (its `,` separates a sweep),
        llama-server's long ones with `,`."""
        names = (("--split-mode", "--tensor-split", "--main-gpu", "--device") if long
                 else ("-sm", "-ts", "-mg", "-dev"))
        flags: list[str] = []
        if self.split_mode != "layer":
            flags += [names[0], self.split_mode]
        if self.tensor_split:
            flags += [names[1], sep.join(f"{x:g}" for x in self.tensor_split)]
        if self.main_gpu:
            flags += [names[2], str(self.main_gpu)]
        if self.devices:
            flags += [names[3], sep.join(self.devices)]
        return flags


THREADS_ENV = "BENCHKIT_THREADS"


def default_threads() -> int:
    """The machine's default for `n_threads`: BENCHKIT_THREADS where set, else physical cores.

    Physical cores, because hyper-threads share execution units and slow llama.cpp down. The
    variable is for machines that run other work beside benchkit (a test suite in two
    processes, a build): llama.cpp's threads wait for each other at every operation, so two
    threads on one free core run many times slower than one thread."""
    import psutil

    from benchkit.core.errors import BenchkitError

    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if not text.isdigit() or not 1 <= int(text) <= INT32_MAX:
        raise BenchkitError(f"environment variable {THREADS_ENV}: must be a positive integer "
                            f"(the default n_threads), got {text[:40]!r}")
    return int(text)

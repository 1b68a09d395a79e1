"""Where llama.cpp put a model, read from its own log: layers, buffers and devices, in all
and per device.

llama.cpp reports placement only in its log, never through its API, so every figure
here is a line it printed (the formats are those of src/llama-model.cpp, llama.cpp,
llama-kv-cache.cpp and llama-context.cpp at llama.cpp 0c1e570):

- `llama_model_load_from_file_impl: using device CUDA0 (NVIDIA GeForce RTX 3090)
  (0000:01:00.0) - 23871 MiB free`: a device the model may use, with its free memory;
- `load_tensors: layer  12 assigned to device CUDA1, is_swa = 0` (debug level): where
  each layer went; layer n_layer is the output layer;
- `load_tensors: offloaded 33/33 layers to GPU`: how many went to any GPU;
- `load_tensors:        CUDA1 model buffer size =  3647.87 MiB`, `llama_kv_cache:
  CUDA1 KV buffer size = ...`, `sched_reserve: CUDA1 compute buffer size = ...`: memory
  per buffer type, named after its device (`CPU_Mapped`, `CUDA_Host` pinned host
  memory, `CUDA_Split` / `Meta(CUDA0,CUDA1)` for a model split by rows or tensors);
- `llama_context: pipeline parallelism enabled`: layer split overlapping ubatches.

This module loads nothing of llama.cpp: the in-process engine feeds it the lines its log
callback captured, llama-server's log file feeds it the same lines when the server's
verbosity prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PLACEMENT_LINE = re.compile(
    r"offload|buffer size|flash_attn|Flash Attention|n_ctx\b|n_batch|n_ubatch|load_mode"
    r"|using device|pipeline parallelism|failed|error", re.IGNORECASE)
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute|RS) buffer size\s*=\s*([\d.]+) MiB")
_BUFFER_SUFFIX = re.compile(r"_(Mapped|REPACK)$")
_USING = re.compile(r"using device (\S+) \((.+?)\)(?: \(([^()]*)\))? - (\d+) MiB free")
ASSIGNED = re.compile(r"layer\s+(\d+) assigned to device (\S+?),")
_META = re.compile(r"^Meta\((.*)\)$")
HOST_DEVICES = re.compile(r"^CPU$|_Host$")      # host memory: the CPU's, or pinned for a GPU
_KINDS = {"model": "model_mib", "kv": "kv_mib", "compute": "compute_mib", "rs": "rs_mib"}


@dataclass
class Placement:
    """Where llama.cpp put the model, as its log says."""

    n_gpu_layers_requested: int
    layers_offloaded: int = 0
    layers_total: int | None = None
    buffers: list[dict[str, Any]] = field(default_factory=list)
    flash_attn: bool | None = None
    n_ctx: int | None = None        # the context llama.cpp made (it rounds the request up)
    gpu_offload_supported: bool = False
    log: list[str] = field(default_factory=list)
    note: str | None = None
    using: list[dict[str, Any]] = field(default_factory=list)     # `using device` lines
    layer_devices: dict[int, str] = field(default_factory=dict)   # layer -> device
    pipeline_parallel: bool | None = None
    asked: dict[str, Any] = field(default_factory=dict)           # split settings asked

    @property
    def devices(self) -> list[str]:
        """Devices holding model weights, in the order the log names them."""
        seen: list[str] = []
        for buf in self.buffers:
            if buf["kind"] == "model" and buf["device"] not in seen:
                seen.append(buf["device"])
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers_offloaded": self.layers_offloaded,
            "layers_total": self.layers_total,
            "n_gpu_layers_requested": self.n_gpu_layers_requested,
            "devices": self.devices,
            "device_kind": "gpu" if self.layers_offloaded > 0 else "cpu",
            "buffers": self.buffers,
            "flash_attn": self.flash_attn,
            "n_ctx": self.n_ctx,
            "gpu_offload_supported": self.gpu_offload_supported,
            **self.asked,
            "pipeline_parallel": self.pipeline_parallel,
            "per_device": per_device(self),
            "note": self.note,
            "log": self.log,
        }


def parse_placement(lines: list[str], placement: Placement) -> None:
    """Fill `placement` from llama.cpp log lines (load and context creation)."""
    for line in lines:
        if m := ASSIGNED.search(line):
            placement.layer_devices[int(m[1])] = m[2]
            continue                 # one a layer: counted, not kept in the log
        if m := _OFFLOADED.search(line):
            placement.layers_offloaded, placement.layers_total = int(m[1]), int(m[2])
        elif m := _BUFFER.search(line):
            kind = {"KV": "kv", "RS": "rs"}.get(m[2], m[2])
            device = _BUFFER_SUFFIX.sub("", m[1])
            placement.buffers.append({"device": device, "buffer": m[1], "kind": kind,
                                      "mib": float(m[3])})
        elif m := _USING.search(line):
            placement.using.append({"device": m[1], "description": m[2],
                                    "free_mib_at_load": int(m[4])})
        elif "pipeline parallelism enabled" in line:
            placement.pipeline_parallel = True
        elif m := re.search(r"llama_context: n_ctx\s*=\s*(\d+)", line):
            placement.n_ctx = int(m[1])
        elif "Flash Attention enabled" in line:
            placement.flash_attn = True
        elif "Flash Attention not supported" in line or "flash_attn is not compatible" in line:
            placement.flash_attn = False
        elif m := re.search(r"flash_attn\s*=\s*(\w+)", line):
            if placement.flash_attn is None and m[1] in ("enabled", "disabled"):
                placement.flash_attn = m[1] == "enabled"
        if PLACEMENT_LINE.search(line):
            placement.log.append(line.strip())


def per_device(p: Placement) -> list[dict[str, Any]]:
    """One entry per device the log names: its layers (where the debug lines were
    captured), whether it holds the output layer, and its model, KV and compute MiB.

    GPUs come in the order llama.cpp listed them (`using device`), then the other
    buffers' devices (the CPU, pinned host memory). A buffer split over several devices
    (`Meta(CUDA0,CUDA1)`, `CUDA_Split`) is an entry of its own that names them: the log
    gives its total only, and tensor_split says how it was cut.
    """
    order = [u["device"] for u in p.using]
    for b in p.buffers:
        if b["device"] not in order:
            order.append(b["device"])
    for dev in p.layer_devices.values():
        if dev not in order:
            order.append(dev)
    using = {u["device"]: u for u in p.using}
    output = p.layer_devices.get(max(p.layer_devices)) if p.layer_devices else None
    out = []
    for dev in order:
        entry: dict[str, Any] = {"device": dev, "kind": _device_kind(dev)}
        if dev in using:
            entry.update(description=using[dev]["description"],
                         free_mib_at_load=using[dev]["free_mib_at_load"])
        if m := _META.match(dev):
            entry["spread_over"] = m[1].split(",")
        if p.layer_devices:
            entry["layers"] = sum(1 for d in p.layer_devices.values() if d == dev)
            entry["output_layer"] = dev == output
        for kind, key in _KINDS.items():
            sizes = [b["mib"] for b in p.buffers if b["device"] == dev and b["kind"] == kind]
            entry[key] = round(sum(sizes), 2) if sizes else None
        out.append(entry)
    return out


def _device_kind(device: str) -> str:
    """host (the CPU's memory, or a GPU's pinned host buffers), split (one buffer over
    several GPUs) or gpu."""
    if HOST_DEVICES.search(device):
        return "host"
    if _META.match(device) or device.endswith("_Split"):
        return "split"
    return "gpu"


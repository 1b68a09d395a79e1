"""llama-bench's output format, the part both sides share: its fields, their types, its
defaults and its test names.

`llama_bench.py` writes these fields from a benchkit result and `llama_bench_import.py`
reads them back into one; both take the tables from here, so a field llama-bench adds is
added once (tools/llama-bench/llama-bench.cpp at llama.cpp 0c1e570: `test::get_fields`,
`get_field_type`, `cmd_params_defaults`).
"""

from __future__ import annotations

from typing import Any

from benchkit.workloads.testnames import name as test_name  # noqa: F401 - llama-bench's test names, one grammar

# llama-bench's fields in order, with their types (test::get_fields / get_field_type).
FIELDS = (
    "build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename",
    "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads",
    "cpu_mask", "cpu_strict", "poll", "type_k", "type_v", "n_gpu_layers", "n_cpu_moe",
    "split_mode", "main_gpu", "no_kv_offload", "flash_attn", "devices", "tensor_split",
    "tensor_buft_overrides", "load_mode", "lazy_mode", "embeddings", "no_op_offload",
    "no_host", "repack", "fit_target", "fit_min_ctx", "n_prompt", "n_gen", "n_depth",
    "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
)
INT_FIELDS = frozenset({
    "build_number", "n_batch", "n_ubatch", "n_threads", "poll", "model_size", "model_n_params",
    "n_gpu_layers", "main_gpu", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns",
    "no_op_offload", "n_cpu_moe", "fit_target", "fit_min_ctx", "flash_attn"})
BOOL_FIELDS = frozenset({"f16_kv", "no_kv_offload", "cpu_strict", "embeddings", "no_host",
                         "repack", "use_mmap"})
FLOAT_FIELDS = frozenset({"avg_ts", "stddev_ts"})

# What llama-bench prints for the settings benchkit does not vary (its defaults).
DEFAULTS: dict[str, Any] = {
    "cpu_mask": "0x0", "cpu_strict": False, "poll": 50, "n_cpu_moe": 0, "split_mode": "layer",
    "main_gpu": 0, "no_kv_offload": False, "devices": "auto", "tensor_split": "0.00",
    "tensor_buft_overrides": "none", "lazy_mode": "auto", "embeddings": False,
    "no_host": False, "repack": True, "fit_target": 0, "fit_min_ctx": 0,
}
# flash_attn as llama.cpp numbers it since 2025, by benchkit's (and the suite's) name
FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}
# benchkit's environment.backend -> llama-bench's `backends` name
BACKEND_NAMES = {"cuda": "CUDA", "metal": "MTL", "hip": "ROCm", "vulkan": "Vulkan",
                 "sycl": "SYCL", "cpu": "CPU"}

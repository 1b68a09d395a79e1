"""Shared by the multi-GPU tests: llama.cpp's log of a two-GPU load, written with the exact
printf formats of the vendored llama.cpp (0c1e570), since no multi-GPU run is recorded here."""

from __future__ import annotations

# The format strings, copied from the vendored llama.cpp source:
USING = "%s: using device %s (%s) (%s) - %d MiB free"            # src/llama.cpp
ASSIGNED = "load_tensors: layer %3d assigned to device %s, is_swa = %d"   # src/llama-model.cpp
OFFLOADED = "%s: offloaded %d/%d layers to GPU"                  # src/llama-model.cpp
MODEL_BUF = "%s: %12s model buffer size = %8.2f MiB"             # src/llama-model.cpp
KV_BUF = "%s: %10s KV buffer size = %8.2f MiB"                   # src/llama-kv-cache.cpp
COMPUTE_BUF = "%s: %10s compute buffer size = %8.2f MiB"         # src/llama-context.cpp
PIPELINE = "%s: pipeline parallelism enabled"                    # src/llama-context.cpp


def two_gpu_layer_log() -> list[str]:
    """LLaMA-2 7B (32 layers + output) split by layers over two RTX 3090s, as llama.cpp
    prints it: 17 layers on CUDA0, 15 and the output layer on CUDA1."""
    lines = [USING % ("llama_model_load_from_file_impl", "CUDA0", "NVIDIA GeForce RTX 3090",
                      "0000:01:00.0", 23871),
             USING % ("llama_model_load_from_file_impl", "CUDA1", "NVIDIA GeForce RTX 3090",
                      "0000:02:00.0", 23958)]
    lines += [ASSIGNED % (il, "CUDA0" if il < 17 else "CUDA1", 0) for il in range(33)]
    lines += [OFFLOADED % ("load_tensors", 33, 33),
              MODEL_BUF % ("load_tensors", "CPU_Mapped", 70.31),
              MODEL_BUF % ("load_tensors", "CUDA0", 1925.04),
              MODEL_BUF % ("load_tensors", "CUDA1", 1711.84),
              KV_BUF % ("llama_kv_cache", "CUDA0", 34.0),
              KV_BUF % ("llama_kv_cache", "CUDA1", 30.0),
              PIPELINE % "llama_context",
              COMPUTE_BUF % ("sched_reserve", "CUDA0", 96.01),
              COMPUTE_BUF % ("sched_reserve", "CUDA1", 104.02),
              COMPUTE_BUF % ("sched_reserve", "CUDA_Host", 24.02)]
    return lines

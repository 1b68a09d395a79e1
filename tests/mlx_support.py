"""MLX stand-ins for the mlx tests: made once by benchkit itself (`synthesize_mlx`, cached
like the GGUF stand-ins) and shared by the test modules that need them."""

from __future__ import annotations

from pathlib import Path

# SmolLM2-135M's shapes with 2 of its 30 layers and its real 49,152-token vocabulary: the
# tokenizer comes from the SmolLM2 GGUF, the layers are few so that MLX's CPU backend
# runs the engine's paths in seconds (tests of the path, not of MLX's speed)
SMOLLM2_REDUCED = {"n_layers": 2}
# Qwen3-30B-A3B's layout (qwen3_moe in mlx-lm) at toy figures, with a byte-level tokenizer
QWEN3_MOE_REDUCED = {"n_layers": 2, "n_embd": 256, "n_expert": 8, "n_ff_expert": 128,
                     "n_vocab": 2048, "n_head": 4, "n_head_kv": 2, "head_dim": 64}


def mlx_standin(preset: str, reduce: dict[str, int] | None, bits: int = 4) -> Path:
    from benchkit.models.mlx import synthesize_mlx

    return synthesize_mlx(preset, bits, reduce=reduce).path

"""Sliding-window attention in the projection: Gemma 3 (5 of every 6 layers attend to the
last 1024 tokens) and gpt-oss (every other layer, 128 tokens) read and keep far less K and
V at long contexts than a model whose every layer attends to the whole context.

The memory side is checked against llama.cpp itself: a reduced Gemma 3 stand-in (7 layers:
6 sliding, then a global one) is loaded by benchkit's in-process engine (which keeps a
window-sized cache on sliding layers, as llama-bench and llama-server do; llama.cpp's C API
default is a full-size one) and the KV buffers llama.cpp's log reports are what
`kv_cache_bytes` says, at a context inside the window and one far past it; a full
attention stand-in (Qwen3) is the control.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchkit.models import presets, synth
from benchkit.projection.fit import window_depth_pairs
from benchkit.projection.physics import memory_breakdown
from benchkit.projection.priors import load_priors
from benchkit.projection.published import all_measurements, depth_run_measurements
from benchkit.projection.shapes import shape_from_gguf, shape_from_preset

MIB = 2 ** 20
SMALL = {"n_layers": 7, "n_embd": 256, "n_head": 4, "n_head_kv": 2, "head_dim": 64,
         "n_vocab": 2048, "n_ff": 512}


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Reduced stand-ins in a private cache, made once per module."""
    old = os.environ.get(synth.CACHE_ENV)
    os.environ[synth.CACHE_ENV] = str(tmp_path_factory.mktemp("swa-cache"))

    def make(preset: str) -> Path:
        return synth.synthesize(preset, "Q8_0", reduce=SMALL, threads=1, progress=False).path

    yield make
    if old is None:
        os.environ.pop(synth.CACHE_ENV)
    else:
        os.environ[synth.CACHE_ENV] = old


def _llama_cpp_kv_bytes(path: Path, n_ctx: int) -> float:
    """The KV buffers llama.cpp's log reports for a context of n_ctx tokens (CPU)."""
    from benchkit.engines.llama_cpp.native import LlamaModel
    from benchkit.engines.llama_cpp.options import LlamaCppOptions

    with LlamaModel(path, LlamaCppOptions(n_gpu_layers=0, n_threads=1)) as eng:
        eng.new_context(n_ctx)
        kv = [b["mib"] for b in eng.placement.buffers if b["kind"] == "kv"]
    assert kv, "llama.cpp's log named no KV buffer"
    return sum(kv) * MIB


def test_presets_say_which_layers_slide_as_llama_cpp_does() -> None:
    """llama.cpp's rule (llama-hparams.cpp, set_swa_pattern): layer il slides when
    il % N < N - 1, N = 6 for Gemma 3 and 2 for gpt-oss (the first layer slides)."""
    cases = {"gemma-3-4b": (34, 1024, 29), "gemma-3-12b": (48, 1024, 40),
             "gemma-3-27b": (62, 1024, 52), "gpt-oss-20b": (24, 128, 12),
             "gpt-oss-120b": (36, 128, 18), "qwen3-8b": (36, 0, 0), "llama-2-7b": (32, 0, 0)}
    for key, expected in cases.items():
        shape = shape_from_preset(key, "Q4_K_M")
        assert (shape.n_layers, shape.sliding_window, shape.n_swa_layers) == expected, key
    assert presets.swa_layer_count("gemma3", 7, None) == 6
    assert presets.swa_layer_count("gemma3", 7, [True, False] * 3 + [True]) == 4
    assert presets.swa_layer_count("gemma3", 4, 0) == 4          # 0: every layer slides
    assert presets.swa_layer_count("llama", 32, None) == 0        # no default, no window


def test_decode_reads_the_window_not_the_context_on_sliding_layers() -> None:
    """At 32k tokens of context Gemma-3-12B reads the whole context on its 8 global layers
    and 1024 tokens on its 40 sliding ones; inside the window nothing changes."""
    gemma = shape_from_preset("gemma-3-12b", "Q4_K_M")
    per_layer_token = gemma.kv_bytes_per_token / gemma.n_layers
    assert gemma.kv_bytes(32768) == pytest.approx(per_layer_token * (8 * 32768 + 40 * 1024))
    assert gemma.kv_bytes(1000) == pytest.approx(gemma.kv_bytes_per_token * 1000)
    qwen = shape_from_preset("qwen3-8b", "Q4_K_M")
    assert qwen.kv_bytes(32768) == pytest.approx(qwen.kv_bytes_per_token * 32768)


def test_kv_cache_memory_is_what_llama_cpp_allocates(standin) -> None:
    """A real load: the stand-in's GGUF header gives the window (1024) and, with no pattern
    key, Gemma 3's default of 6 (6 of 7 layers slide); llama.cpp's KV buffers at 512 tokens
    (inside the window: every layer holds every cell) and at 8192 (the sliding layers hold
    1024 + one ubatch of 512, padded to 256) are what the projection's memory says, and
    the full-attention control holds every cell on every layer."""
    gemma = standin("gemma-3-4b")
    shape = shape_from_gguf(str(gemma))
    assert (shape.sliding_window, shape.n_swa_layers) == (1024, 6)
    for n_ctx in (512, 8192):
        measured = _llama_cpp_kv_bytes(gemma, n_ctx)
        assert measured == pytest.approx(shape.kv_cache_bytes(n_ctx, 512), rel=0.01), n_ctx
    full_rate = shape.kv_bytes_per_token * 8192
    assert _llama_cpp_kv_bytes(gemma, 8192) < 0.5 * full_rate
    qwen = standin("qwen3-8b")
    control = shape_from_gguf(str(qwen))
    assert control.n_swa_layers == 0
    assert _llama_cpp_kv_bytes(qwen, 8192) == pytest.approx(
        control.kv_cache_bytes(8192, 512), rel=0.01)


def test_will_it_fit_counts_the_window() -> None:
    """Gemma-3-27B at a 32k context: the KV cache of 62 full layers would be 16.6 GB; with
    52 sliding layers it is about 3.3 GB, so the memory needed drops by about 13 GB."""
    priors = load_priors()
    shape = shape_from_preset("gemma-3-27b", "Q4_K_M")
    need = memory_breakdown(shape, priors, depth=32768 - 512)
    assert need["kv_gb"] == pytest.approx(
        shape.kv_bytes_per_token / 62 * (10 * 32768 + 52 * 1536) / 1e9, rel=1e-6)
    assert 3.0 < need["kv_gb"] < 3.6
    assert shape.kv_bytes_per_token * 32768 / 1e9 > 16


def test_the_h100_depth_run_of_2026_models_is_projected_with_its_windows() -> None:
    """reports/nvidia/v3-depth (llama-bench on an H100, in no fit): Qwen3-8B, Gemma-3-12B
    and gpt-oss-20b at depth 4096 / 16384 / 32768, each projected from its depth-0 figure
    with the shipped values. Decode lands within 10% on every case; without its windows
    Gemma-3-12B at 32k would be projected over 30% too slow; the full-attention Qwen3 has
    no window to drop."""
    ms = depth_run_measurements()
    assert len(ms) == 12 and {m.depth for m in ms} == {0, 4096, 16384, 32768}
    assert not {m.source for m in ms} & {m.source for m in all_measurements()}
    pairs = window_depth_pairs(ms, load_priors())
    assert len(pairs) == 9
    assert all(abs(p["roofline"]["tg_error"]) < 0.10 for p in pairs), \
        [(p["model"], p["depth"], p["roofline"]["tg_error"]) for p in pairs]
    gemma = next(p for p in pairs if p["model"].startswith("gemma3") and p["depth"] == 32768)
    assert gemma["no_window"]["tg_error"] < -0.30 < gemma["roofline"]["tg_error"]
    assert all("no_window" not in p for p in pairs if p["model"].startswith("qwen3"))

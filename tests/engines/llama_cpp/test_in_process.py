"""The engine on the real SmolLM2 model, and placement read from llama.cpp's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.engines.llama_cpp.native import LlamaModel as Engine, Placement, parse_placement
from benchkit.engines.llama_cpp.options import LlamaCppOptions as EngineSettings
from benchkit.core.errors import BenchkitError


@pytest.fixture(scope="module")
def engine(smollm2_model: Path):
    with Engine(smollm2_model, EngineSettings(n_gpu_layers=0, n_threads=1)) as eng:
        yield eng


def test_pp_and_tg_are_timed(engine: Engine) -> None:
    assert engine.time_pp(32) > 0
    assert engine.n_ctx >= 32
    assert engine.time_tg(8) > 0
    assert engine.time_pp_tg(16, 4) > 0


def test_context_grows_when_a_workload_needs_more(engine: Engine) -> None:
    engine.new_context(16)
    engine.time_pp(64)
    assert engine.n_ctx == 64


def test_kv_cache_is_cleared_between_iterations(engine: Engine) -> None:
    """Repeated iterations in one context never run out of KV cells."""
    engine.new_context(40)
    for _ in range(4):
        engine.time_pp(40)


def test_chat_generates_exactly_max_tokens(engine: Engine) -> None:
    seen: list[int] = []
    c = engine.chat("Explain quantum computing in simple terms.", 12, seed=1,
                    on_token=seen.append)
    assert c.n_generated == 12 and len(c.token_latencies_s) == 11
    assert seen == list(range(1, 12))
    assert c.n_prompt == len(engine.tokenize("Explain quantum computing in simple terms."))
    assert 0 < c.ttft_s < c.total_s and c.decode_tps > 0


def test_greedy_chat_is_deterministic(engine: Engine) -> None:
    """temperature 0 is greedy: the same prompt gives the same tokens (sanity of decoding)."""
    got = []
    for _ in range(2):
        tokens: list[int] = []
        original = engine.llama.llama_sampler_sample

        def spy(smpl, ctx, idx, _orig=original, _out=tokens):
            tok = _orig(smpl, ctx, idx)
            _out.append(tok)
            return tok

        engine.llama.llama_sampler_sample = spy
        try:
            engine.chat("The capital of France is", 6, temperature=0)
        finally:
            engine.llama.llama_sampler_sample = original
        got.append(tokens)
    assert got[0] == got[1] and len(got[0]) == 6


def test_placement_is_read_from_the_real_log(engine: Engine, smollm2_model: Path) -> None:
    engine.new_context(128)
    p = engine.placement.to_dict()
    assert p["layers_total"] == 31 and p["n_gpu_layers_requested"] == 0
    model = [b for b in p["buffers"] if b["kind"] == "model"]
    assert model and abs(sum(b["mib"] for b in model) - smollm2_model.stat().st_size / 2**20) < 5
    assert [b["kind"] for b in p["buffers"]].count("kv") >= 1
    assert p["n_ctx"] >= 128
    assert all("graph" not in line for line in p["log"])   # debug noise stays out


def test_placement_parser_on_gpu_log_lines() -> None:
    """Lines in the exact format llama.cpp prints on an offloading (Metal / CUDA) build."""
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True)
    parse_placement([
        "load_tensors: offloading output layer to GPU",
        "load_tensors: offloading 22 repeating layers to GPU",
        "load_tensors: offloaded 23/23 layers to GPU",
        "load_tensors: Metal_Mapped model buffer size =   636.18 MiB",
        "load_tensors:   CPU_Mapped model buffer size =    35.16 MiB",
        "llama_context: flash_attn            = auto",
        "llama_kv_cache:      Metal KV buffer size =    44.00 MiB",
        "resolve_fused_ops: Flash Attention enabled",
        "sched_reserve:      Metal compute buffer size =    66.50 MiB",
        "sched_reserve:        CPU compute buffer size =     5.01 MiB",
    ], p)
    d = p.to_dict()
    assert (d["layers_offloaded"], d["layers_total"], d["device_kind"]) == (23, 23, "gpu")
    assert d["devices"] == ["Metal", "CPU"]
    assert {(b["device"], b["kind"], b["mib"]) for b in d["buffers"]} == {
        ("Metal", "model", 636.18), ("CPU", "model", 35.16), ("Metal", "kv", 44.0),
        ("Metal", "compute", 66.5), ("CPU", "compute", 5.01)}
    assert d["flash_attn"] is True


def test_flash_attention_off_when_llama_cpp_says_so() -> None:
    p = Placement(n_gpu_layers_requested=0)
    parse_placement(["llama_context: flash_attn            = disabled"], p)
    assert p.flash_attn is False


def test_a_model_llama_cpp_cannot_load_names_the_reason(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "nohparams.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(BenchkitError, match="could not load the model: .*key not found"):
        Engine(path, EngineSettings(n_threads=1), label="suite.yaml [models.0.path]")

"""gguf_info reads the real SmolLM2 header, and refuses missing, non-GGUF and truncated files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from benchkit.errors import BenchkitError
from benchkit.gguf_info import read_gguf_info, sha256_file


def test_reads_real_smollm2_header(smollm2_model: Path) -> None:
    info = read_gguf_info(smollm2_model)
    assert info.architecture == "llama"
    assert info.file_type == "Q4_1"
    assert info.n_layers == 30
    # SmolLM2-135M: about 135 million parameters, counted from the tensor shapes.
    assert 120_000_000 < info.n_params < 150_000_000
    assert info.context_length and info.context_length >= 2048
    assert info.synthetic is False and info.preset is None
    assert info.size_bytes == smollm2_model.stat().st_size
    names = {name for name, _, _ in info.tensors}
    assert "token_embd.weight" in names and "blk.0.attn_q.weight" in names
    assert not any(k.startswith("tokenizer.ggml.") for k in info.metadata)


def test_sha256_matches_hashlib(smollm2_model: Path) -> None:
    assert sha256_file(smollm2_model) == hashlib.sha256(smollm2_model.read_bytes()).hexdigest()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchkitError, match="does not exist") as exc:
        read_gguf_info(tmp_path / "nope.gguf")
    assert exc.value.file == str(tmp_path / "nope.gguf")


def test_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_text("this is not a model\n")
    with pytest.raises(BenchkitError, match="not a GGUF file"):
        read_gguf_info(bad)


@pytest.mark.parametrize("keep", [64, 4096, 0.5, 0.999])
def test_truncated(smollm2_model: Path, tmp_path: Path, keep: float) -> None:
    data = smollm2_model.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:n])
    with pytest.raises(BenchkitError, match="truncated") as exc:
        read_gguf_info(cut)
    assert exc.value.file == str(cut)


def test_synthetic_flag_and_preset_come_from_metadata(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "synth.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_bool("benchkit.synthetic", True)
    writer.add_string("benchkit.preset", "tiny-test")
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((8, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = read_gguf_info(path)
    assert info.synthetic is True and info.preset == "tiny-test"
    assert info.n_params == 128 and info.tensors == (("blk.0.ffn_up.weight", (16, 8), "F32"),)
    assert info.file_type == "F32"  # no general.file_type: the dominant weight type

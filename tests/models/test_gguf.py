"""gguf_info reads the real SmolLM2 header exactly as gguf-py does, and refuses missing,
non-GGUF, truncated, corrupt and hostile files with one line, without allocating."""

from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.models.gguf import read_gguf_info, sha256_file


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


# --------------------------------------------------------------------------- one fast reader

def test_agrees_with_gguf_py_reader_on_the_real_file(smollm2_model: Path) -> None:
    """gguf-py's GGUFReader (llama.cpp's own, slow) is the oracle for every field."""
    from gguf import GGUFReader, GGUFValueType

    from benchkit.models.gguf import read_header

    ref = GGUFReader(smollm2_model, "r")
    head = read_header(smollm2_model)
    assert head.version == 3 and head.data_offset == ref.data_offset
    assert head.alignment == ref.alignment
    assert [(t.name, t.shape, t.type, head.data_offset + t.offset, t.n_bytes)
            for t in head.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type.name, int(t.data_offset),
         int(t.n_bytes)) for t in ref.tensors]
    fields = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    assert list(head.metadata) == list(fields)
    for key, f in fields.items():
        if f.types[0] == GGUFValueType.ARRAY and len(f.data) > 16:
            assert head.metadata[key] == len(f.data), key      # skipped: its length
        else:
            assert head.metadata[key] == f.contents(), key


def test_type_tables_match_gguf_py() -> None:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

    from benchkit.models.gguf import FILE_TYPES, GGML_TYPES

    assert GGML_TYPES == {t.value: (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType}
    assert FILE_TYPES == {t.value: {"ALL_F32": "F32"}.get(t.name, t.name.removeprefix("MOSTLY_"))
                          for t in LlamaFileType}


def test_reading_the_header_loads_neither_numpy_nor_gguf_py(smollm2_model: Path) -> None:
    """llama.cpp must load before numpy on CUDA builds; the header is read first."""
    code = ("import sys; from benchkit.models.gguf import read_gguf_info; "
            f"info = read_gguf_info({str(smollm2_model)!r}); "
            "print(info.file_type, 'numpy' in sys.modules, 'gguf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["Q4_1", "False", "False"]


def test_header_truncated_anywhere_is_one_clear_error(smollm2_model: Path,
                                                      tmp_path: Path) -> None:
    from benchkit.models.gguf import read_header

    data = smollm2_model.read_bytes()
    end = read_header(smollm2_model).data_offset
    cut = tmp_path / "cut.gguf"
    for n in sorted({5, 9, 17, 24, 25, 30, *range(31, end, end // 40), end - 1}):
        cut.write_bytes(data[:n])
        with pytest.raises(BenchkitError, match="truncated") as exc:
            read_gguf_info(cut)
        assert exc.value.file == str(cut), n


def test_corrupted_header_bytes_give_a_benchkit_error_or_a_header(smollm2_model: Path,
                                                                  tmp_path: Path) -> None:
    """Seeded random byte damage in the key/value and tensor tables: never another
    exception type (struct.error, MemoryError, UnicodeDecodeError...)."""
    from benchkit.models.gguf import read_header

    data = bytearray(smollm2_model.read_bytes()[:read_header(smollm2_model).data_offset])
    rng = random.Random(15)
    bad = tmp_path / "bad.gguf"
    outcomes = set()
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(24, len(damaged))] = rng.randrange(256)
        bad.write_bytes(bytes(damaged))
        try:
            read_header(bad)
            outcomes.add("read")
        except BenchkitError as exc:
            assert exc.file == str(bad) and "\n" not in exc.message
            outcomes.add("refused")
    assert "refused" in outcomes


# Hand-built headers: little helpers writing the GGUF layout with struct.
def _str(s: bytes | str) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", vtype) + payload


def _tensor(name: str, dims: tuple[int, ...], ttype: int = 0, offset: int = 0) -> bytes:
    return (_str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<IQ", ttype, offset))


def _gguf(kvs: list[bytes], tensors: list[bytes], *, n_kv: int | None = None,
          n_tensors: int | None = None, version: int = 3) -> bytes:
    return (b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None
                                  else n_tensors, len(kvs) if n_kv is None else n_kv)
            + b"".join(kvs) + b"".join(tensors))


_ARCH = _kv("general.architecture", 8, _str("llama"))


@pytest.mark.parametrize("name, blob, message", [
    ("string length 2^60", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60)
     + b"general.architecture", "needs 1152921504606846976 bytes"),
    ("2^40 tensors", _gguf([_ARCH], [], n_tensors=1 << 40), "claims 1099511627776 tensors"),
    ("2^50 key/values", _gguf([_ARCH], [], n_kv=1 << 50), "key/value pairs"),
    ("a 50 MB array that is not there",
     _gguf([_kv("big", 9, struct.pack("<IQ", 4, 12_500_000))], []), "the 12500000 values"),
    ("2^61 strings in an array", _gguf([_kv("tok", 9, struct.pack("<IQ", 8, 1 << 61))], []),
     "strings in 'tok'"),
    ("unknown value type", _gguf([_kv("x", 13, b"\0" * 8)], []), "unknown value type 13"),
    ("arrays nested too deep", _gguf([_kv("deep", 9, struct.pack("<IQ", 9, 1) * 12)], []),
     "nested deeper"),
    ("5 dimensions", _gguf([_ARCH], [_tensor("t", (1, 1, 1, 1, 1))]), "5 dimensions"),
    ("unknown tensor type", _gguf([_ARCH], [_tensor("t", (32,), ttype=99)]),
     "unknown ggml type 99"),
    ("partial quant block", _gguf([_ARCH], [_tensor("t", (33,), ttype=2)]), "whole Q4_0 blocks"),
    ("alignment 0", _gguf([_ARCH, _kv("general.alignment", 4, struct.pack("<I", 0))], []),
     "not a power of two"),
])
def test_hostile_headers_are_refused_without_allocating(tmp_path: Path, name: str, blob: bytes,
                                                        message: str) -> None:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(BenchkitError, match="truncated or corrupt GGUF") as exc:
            read_gguf_info(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in exc.value.message and exc.value.file == str(path)
    assert peak < 1 << 20, f"{name}: {peak} bytes allocated"


def test_a_real_50_mb_array_is_skipped_not_read(tmp_path: Path) -> None:
    """A 50 MB key/value array (sparse on disk) is stepped over: its length is kept, its
    bytes are never copied."""
    n = 50_000_000
    head = _gguf([_ARCH, _kv("big.blob", 9, struct.pack("<IQ", 0, n))], [], n_tensors=1)
    path = tmp_path / "big.gguf"
    with open(path, "wb") as fh:
        fh.write(head)
        fh.seek(n, 1)
        fh.write(_tensor("w", (8, 4)))
        fh.seek(-fh.tell() % 32 + 128 - 1, 1)
        fh.write(b"\0")
    tracemalloc.start()
    try:
        info = read_gguf_info(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.tensors == (("w", (8, 4), "F32"),) and info.tensor_bytes == 128
    assert "big.blob" not in info.metadata and info.architecture == "llama"
    assert peak < 1 << 20


def test_small_arrays_are_read_and_big_endian_files_too(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_block_count(2)
    writer.add_array("general.languages", ["en", "fr"])
    writer.add_array("llama.some_ints", list(range(17)))
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((2, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = read_gguf_info(path)
    assert info.metadata["general.languages"] == ["en", "fr"]
    assert "llama.some_ints" not in info.metadata          # 17 elements: skipped
    assert info.n_layers == 2 and info.tensors == (("blk.0.ffn_up.weight", (32, 2), "F32"),)


@pytest.mark.parametrize("version", [1, 4])
def test_unsupported_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "v.gguf"
    path.write_bytes(_gguf([_ARCH], [], version=version))
    with pytest.raises(BenchkitError, match=f"unsupported GGUF version {version}"):
        read_gguf_info(path)


def test_file_type_falls_back_to_the_most_common_weight_type() -> None:
    from benchkit.models.gguf import file_type_name

    tensors = [("a", (32, 2), "Q8_0"), ("b", (32, 2), "Q4_0"), ("c", (32,), "F32"),
               ("d", (32,), "F32"), ("e", (32, 2), "Q4_0")]
    assert file_type_name(None, tensors) == "Q4_0"
    assert file_type_name(None, tensors[:2]) == "Q4_0"       # a tie: alphabetical
    assert file_type_name(None, list(reversed(tensors[:2]))) == "Q4_0"
    assert file_type_name(15, []) == "Q4_K_M" and file_type_name(999, []) == "file_type_999"


def _moe_file(path: Path, n_expert: int | None, n_used: int | None) -> Path:
    """A two-tensor file: a shared matrix and 4 stacked experts (ggml 8 x 2 x 4)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "qwen3moe")
    writer.add_block_count(1)
    if n_expert is not None:
        writer.add_expert_count(n_expert)
    if n_used is not None:
        writer.add_expert_used_count(n_used)
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    writer.add_tensor("blk.0.ffn_up_exps.weight", np.zeros((4, 2, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_active_counts_take_k_of_n_experts(tmp_path: Path) -> None:
    info = read_gguf_info(_moe_file(tmp_path / "moe.gguf", 4, 1))
    assert (info.n_expert, info.n_expert_used) == (4, 1)
    assert info.n_params_total == info.n_params == 64 + 64
    assert info.n_params_active == 64 + 16
    assert info.bytes_total == 64 * 4 + 64 * 2
    assert info.bytes_active == 64 * 4 + 16 * 2


@pytest.mark.parametrize("n_expert, n_used", [(None, None), (4, None), (None, 2)])
def test_without_expert_keys_everything_is_active(tmp_path: Path, n_expert, n_used) -> None:
    info = read_gguf_info(_moe_file(tmp_path / "moe.gguf", n_expert, n_used))
    assert info.n_params_active == info.n_params and info.bytes_active == info.bytes_total


def test_dense_real_model_is_all_active(smollm2_model: Path) -> None:
    info = read_gguf_info(smollm2_model)
    assert info.n_expert is None
    assert info.n_params_active == info.n_params and info.bytes_active == info.tensor_bytes

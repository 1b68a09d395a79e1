"""Read a GGUF header: what a model is, from the file itself.

The result file records architecture, parameter count and quantization as the GGUF
header states them, never as a file name suggests: a file called "7b-q4" may be
anything.

This is benchkit's one GGUF header reader (the runner, `benchkit models inspect` and the
stand-in cache all use it). It parses the header with `struct` over a memory map and
SKIPS the large metadata arrays (the tokenizer's ~50k strings, scores and merges) by
seeking over their bytes instead of building an object per element, as gguf-py's
`GGUFReader` does: milliseconds instead of seconds per model on the run path
(`scripts/gguf_header_speed.py` measures both). Every length and count is checked
against the bytes left in the file before it is used, so a truncated, corrupt or
hostile file (a string length of 2^60, 2^40 tensors) gives one "truncated or corrupt
GGUF" line at once and never a large allocation.

It imports neither gguf-py nor numpy: llama.cpp's libraries must load before numpy's on
CUDA builds (see benchkit/engines/llama_cpp/native.py), and the header is read first. The
ggml type table below is llama.cpp's (ggml.h / gguf-py constants.py); a test keeps it
equal to the installed gguf-py's.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchkit.core.errors import BenchkitError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32      # GGUF_DEFAULT_ALIGNMENT
GGML_MAX_DIMS = 4
MAX_NESTING = 8             # arrays of arrays deeper than this are refused as corrupt

# Metadata keys we never copy into `metadata`: huge arrays that say nothing about speed.
_SKIP_PREFIXES = ("tokenizer.ggml.", "tokenizer.chat_template")
_MAX_ARRAY = 16             # arrays up to this length are read; longer ones are skipped

# ggml_type id -> (name, elements per block, bytes per block)  (gguf-py GGML_QUANT_SIZES)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# general.file_type (enum llama_ftype) -> the name llama.cpp's tools print
# (gguf-py LlamaFileType without its MOSTLY_ prefix; ALL_F32 as F32).
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 1024: "GUESSED",
}

# GGUF metadata value types: id -> struct code of a scalar (8 string, 9 array).
_SCALAR_CODES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
                 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# The fewest bytes one key/value pair and one tensor info can take: a count larger than
# the rest of the file could hold is refused before any loop runs.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    shape: tuple[int, ...]   # ggml order: ne[0] (the contiguous dimension) first
    type: str                # ggml type name: Q4_K, F32...
    offset: int              # from the start of the data region
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    """A GGUF header as stored: every key/value (long arrays as `LongArray`, their length)
    and the tensor table, with where the data region starts."""

    path: str
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int         # absolute file offset of the first tensor's data
    size_bytes: int          # the file's size

    @property
    def data_end(self) -> int:
        """The file offset where the last tensor's data ends."""
        return self.data_offset + max((t.offset + t.n_bytes for t in self.tensors), default=0)

    @property
    def complete(self) -> bool:
        """Whether every tensor's data lies inside the file."""
        return self.data_end <= self.size_bytes

    @property
    def tensor_span(self) -> int:
        """Bytes from the first tensor's data to the last one's end (padding included):
        what llama.cpp allocates as one model buffer."""
        if not self.tensors:
            return 0
        return (max(t.offset + t.n_bytes for t in self.tensors)
                - min(t.offset for t in self.tensors))


class LongArray(int):
    """Stands for an array longer than _MAX_ARRAY, which the reader skipped: its length.
    Never copied into GGUFInfo.metadata."""


@dataclass(frozen=True)
class GGUFInfo:
    """What the header of one GGUF file says about the model inside it."""

    path: str
    architecture: str | None
    n_params: int
    file_type: str | None
    n_layers: int | None
    context_length: int | None
    tensors: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape in ggml order, type)
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    synthetic: bool = False
    preset: str | None = None
    name: str | None = None
    size_bytes: int = 0
    tensor_bytes: int = 0
    # A mixture of experts: what one token runs through (see `active_counts`); for a
    # dense model the same as n_params and tensor_bytes.
    n_params_active: int = 0
    bytes_active: int = 0
    n_expert: int | None = None
    n_expert_used: int | None = None

    @property
    def n_params_total(self) -> int:
        return self.n_params

    @property
    def bytes_total(self) -> int:
        """Bytes of tensor data (padding left out)."""
        return self.tensor_bytes


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks so a large model never sits in memory."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise BenchkitError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    return digest.hexdigest()


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Parse the header of a GGUF file.

    Raises BenchkitError for a missing file, a file that is not GGUF (wrong magic), and
    a truncated or corrupt one (a header that cannot be parsed, or tensor data that runs
    past the end of the file), so that the runner fails before llama.cpp is involved.
    """
    header = read_header(path)
    if not header.complete:
        raise BenchkitError(
            f"truncated GGUF: tensor data needs {header.data_end} bytes, the file has "
            f"{header.size_bytes}", file=header.path)
    fields = header.metadata
    tensors = tuple((t.name, t.shape, t.type) for t in header.tensors)
    arch = _as_str(fields.get("general.architecture"))
    counts = active_counts(header)
    return GGUFInfo(
        path=header.path,
        architecture=arch,
        n_params=sum(math.prod(shape) for _, shape, _ in tensors),
        file_type=file_type_name(fields.get("general.file_type"), tensors),
        n_layers=_as_int(fields.get(f"{arch}.block_count")) if arch else None,
        context_length=_as_int(fields.get(f"{arch}.context_length")) if arch else None,
        tensors=tensors,
        metadata={k: v for k, v in fields.items() if _keep(k, v)},
        synthetic=bool(fields.get("benchkit.synthetic", False)),
        preset=_as_str(fields.get("benchkit.preset")),
        name=_as_str(fields.get("general.name")),
        size_bytes=header.size_bytes,
        tensor_bytes=counts.bytes_total,
        n_params_active=counts.n_params_active,
        bytes_active=counts.bytes_active,
        n_expert=counts.n_expert,
        n_expert_used=counts.n_expert_used,
    )


@dataclass(frozen=True)
class ActiveCounts:
    """Parameters and tensor bytes of a file, in all and per token (`active_counts`)."""

    n_params_total: int
    n_params_active: int
    bytes_total: int
    bytes_active: int
    n_expert: int | None
    n_expert_used: int | None


def is_expert_tensor(name: str) -> bool:
    """A routed-expert tensor: llama.cpp's blk.N.ffn_{gate,up,down}[_up]_exps.{weight,bias}
    (LLM_TENSOR_FFN_*_EXPS), n_expert experts stacked along its last ggml dimension.
    Shared experts (`_shexp`) and the router (`ffn_gate_inp`) run for every token."""
    return "_exps." in name


def active_counts(header: GGUFHeader) -> ActiveCounts:
    """Total and per-token ("active") parameters and bytes, from the tensor table.

    Active: every tensor in full, except the routed-expert tensors, of which
    n_expert_used of n_expert (the GGUF's {arch}.expert_used_count / expert_count) count:
    what one token's matrix products read. The embedding tables count in full (a token
    reads one row of token_embd, so a decode step reads less than bytes_active by about
    that table where it is not tied to the output); model cards differ on this (Qwen3
    counts both tables, gpt-oss's card leaves the input one out). A dense file, or one
    without the expert keys (or with a per-layer expert_used_count longer than the reader
    keeps, _MAX_ARRAY), has active = total.
    """
    arch = _as_str(header.metadata.get("general.architecture")) or ""
    n_expert = _as_int(header.metadata.get(f"{arch}.expert_count"))
    n_used = _expert_used(header.metadata.get(f"{arch}.expert_used_count"))
    params = sum(math.prod(t.shape) for t in header.tensors)
    nbytes = sum(t.n_bytes for t in header.tensors)
    if not n_expert or not n_used:
        return ActiveCounts(params, params, nbytes, nbytes, n_expert or None, n_used or None)
    act_params, act_bytes = 0, 0
    for t in header.tensors:
        if is_expert_tensor(t.name):
            act_params += math.prod(t.shape) // n_expert * n_used
            act_bytes += t.n_bytes // n_expert * n_used
        else:
            act_params += math.prod(t.shape)
            act_bytes += t.n_bytes
    return ActiveCounts(params, act_params, nbytes, act_bytes, n_expert, n_used)


def _expert_used(raw: Any) -> int | None:
    """expert_used_count: one number, or one per layer (the largest then: an upper bound)."""
    if isinstance(raw, list):
        values = [v for v in (_as_int(x) for x in raw) if v is not None]
        return max(values) if values else None
    return _as_int(raw)


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """The raw header of a GGUF file; the data region is not checked against the file
    size here (see `GGUFHeader.complete`), so that a partly written file can be looked at.

    Raises BenchkitError (one line naming the file) for a missing or unreadable file, a
    file without the GGUF magic, an unsupported version, and a header that is truncated
    or corrupt.
    """
    p = str(path)
    with _map(p) as buf:
        if buf[:4] != GGUF_MAGIC:
            raise BenchkitError(f"not a GGUF file (starts with {bytes(buf[:4])!r}, expected "
                                f"{GGUF_MAGIC!r})", file=p)
        try:
            return _parse(buf, p)
        except _Corrupt as exc:
            raise BenchkitError(f"truncated or corrupt GGUF file ({exc})", file=p) from None


class _map:
    """The file memory-mapped read-only (an empty file as b""), closed on exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.buf: Any = b""

    def __enter__(self) -> Any:
        from benchkit.core.safeio import file_kind

        try:      # stat first: open() of a FIFO would wait for a writer for ever
            kind = file_kind(os.stat(self.path).st_mode)
        except OSError:
            kind = None                   # open() below says what is wrong
        if kind not in (None, "a directory"):
            raise BenchkitError(f"model file is {kind}, not a regular file", file=self.path)
        try:
            with open(self.path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size:
                    self.buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise BenchkitError("model file does not exist", file=self.path) from None
        except IsADirectoryError:
            raise BenchkitError("model path is a directory, not a GGUF file",
                                file=self.path) from None
        except (OSError, ValueError) as exc:
            raise BenchkitError(f"cannot read model file: {getattr(exc, 'strerror', None) or exc}",
                                file=self.path) from None
        return self.buf

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()


class _Corrupt(Exception):
    """A header that cannot be what it claims to be; the message says where."""


class _Cursor:
    """Reads little- or big-endian values from a buffer, checking every length first."""

    def __init__(self, buf: Any, endian: str) -> None:
        self.buf, self.pos, self.size = buf, 0, len(buf)
        self.e = endian
        self.u32 = struct.Struct(endian + "I")
        self.u64 = struct.Struct(endian + "Q")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Corrupt(f"{what} at byte {self.pos} needs {n} bytes, "
                           f"{self.size - self.pos} are left")

    def uint32(self, what: str) -> int:
        self.need(4, what)
        (v,) = self.u32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def uint64(self, what: str) -> int:
        self.need(8, what)
        (v,) = self.u64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(self, what: str) -> str:
        n = self.uint64(f"length of {what}")
        self.need(n, what)
        start, self.pos = self.pos, self.pos + n
        return bytes(self.buf[start:self.pos]).decode("utf-8", "replace")

    def skip_strings(self, count: int, what: str) -> None:
        """Move past `count` length-prefixed strings: the hot loop of a tokenizer's
        vocabulary, so it works on locals."""
        unpack, buf, pos, size = self.u64.unpack_from, self.buf, self.pos, self.size
        for i in range(count):
            if pos + 8 > size:
                raise _Corrupt(f"string {i} of {what} at byte {pos} runs past the end")
            (n,) = unpack(buf, pos)
            pos += 8 + n
            if pos > size:
                raise _Corrupt(f"string {i} of {what} ({n} bytes) runs past the end")
        self.pos = pos

    def scalar(self, vtype: int) -> Any:
        fmt = self.e + _SCALAR_CODES[vtype]
        size = struct.calcsize(fmt)
        self.need(size, f"a value of type {vtype}")
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v


def _parse(buf: Any, path: str) -> GGUFHeader:
    """Magic already checked: version, counts, key/values, tensor table, data offset."""
    cur = _Cursor(buf, "<")
    cur.pos = 4
    version = cur.uint32("version")
    if version & 0xFFFF == 0 and version:          # written on a big-endian machine
        cur = _Cursor(buf, ">")
        cur.pos = 4
        version = cur.uint32("version")
    if version not in (2, 3):
        raise BenchkitError(f"unsupported GGUF version {version} (benchkit reads 2 and 3)",
                            file=path)
    n_tensors = cur.uint64("tensor count")
    n_kv = cur.uint64("key/value count")
    _check_count(cur, n_kv, _MIN_KV_BYTES, "key/value pairs")
    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = cur.string(f"key {i}")
        metadata[key] = _value(cur, cur.uint32(f"type of {key!r}"), key, 0)
    _check_count(cur, n_tensors, _MIN_TENSOR_BYTES, "tensors")
    tensors = tuple(_tensor(cur) for _ in range(n_tensors))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"general.alignment is {alignment!r}, not a power of two")
    data_offset = -(-cur.pos // alignment) * alignment
    return GGUFHeader(path, version, metadata, tensors, alignment, data_offset, cur.size)


def _check_count(cur: _Cursor, count: int, min_bytes: int, what: str) -> None:
    """Refuse a count the rest of the file could not hold, before looping over it."""
    if count * min_bytes > cur.size - cur.pos:
        raise _Corrupt(f"the header claims {count} {what}; the {cur.size - cur.pos} bytes "
                       "left cannot hold them")


def _value(cur: _Cursor, vtype: int, key: str, depth: int) -> Any:
    """One metadata value; arrays longer than _MAX_ARRAY are skipped (LongArray)."""
    if vtype in _SCALAR_CODES:
        return cur.scalar(vtype)
    if vtype == _STRING:
        return cur.string(f"the value of {key!r}")
    if vtype != _ARRAY:
        raise _Corrupt(f"unknown value type {vtype} of {key!r}")
    if depth >= MAX_NESTING:
        raise _Corrupt(f"{key!r}: arrays nested deeper than {MAX_NESTING}")
    sub = cur.uint32(f"element type of {key!r}")
    count = cur.uint64(f"length of {key!r}")
    if count <= _MAX_ARRAY:
        return [_value(cur, sub, key, depth + 1) for _ in range(count)]
    _skip_array(cur, sub, count, key, depth)
    return LongArray(count)


def _skip_array(cur: _Cursor, sub: int, count: int, key: str, depth: int) -> None:
    """Move past `count` elements of type `sub` without building them."""
    if sub in _SCALAR_CODES:
        n = count * struct.calcsize(_SCALAR_CODES[sub])
        cur.need(n, f"the {count} values of {key!r}")
        cur.pos += n
    elif sub == _STRING:
        _check_count(cur, count, 8, f"strings in {key!r}")
        cur.skip_strings(count, repr(key))
    elif sub == _ARRAY:
        _check_count(cur, count, 12, f"arrays in {key!r}")
        for _ in range(count):
            _value(cur, _ARRAY, key, depth + 1)
    else:
        raise _Corrupt(f"unknown element type {sub} of {key!r}")


def _tensor(cur: _Cursor) -> TensorInfo:
    """One tensor info: name, dims, ggml type, offset; its byte size from the type table."""
    name = cur.string("a tensor name")
    n_dims = cur.uint32(f"dimension count of tensor {name!r}")
    if not 0 < n_dims <= GGML_MAX_DIMS:
        raise _Corrupt(f"tensor {name!r} has {n_dims} dimensions (1 to {GGML_MAX_DIMS})")
    shape = tuple(cur.uint64(f"dimensions of tensor {name!r}") for _ in range(n_dims))
    type_id = cur.uint32(f"type of tensor {name!r}")
    offset = cur.uint64(f"data offset of tensor {name!r}")
    if type_id not in GGML_TYPES:
        raise _Corrupt(f"tensor {name!r} has unknown ggml type {type_id}")
    type_name, block, type_size = GGML_TYPES[type_id]
    n_elements = math.prod(shape)
    if n_elements % block:
        raise _Corrupt(f"tensor {name!r}: {n_elements} elements do not fill whole "
                       f"{type_name} blocks of {block}")
    return TensorInfo(name, shape, type_name, offset, n_elements * type_size // block)


def file_type_name(raw: Any, tensors: Any) -> str | None:
    """general.file_type as llama.cpp names it (Q4_K_M, Q4_1, F16...).

    Files without the key (some converters omit it) fall back to the most common
    type among the 2-D weight tensors, which is what the quantization is in practice
    (a tie goes to the first name in alphabetical order, whatever the tensor order).
    `tensors` are (name, shape, type) triples.
    """
    if raw is not None and _as_int(raw) is not None:
        return FILE_TYPES.get(int(raw), f"file_type_{int(raw)}")
    weights = Counter(t for _, shape, t in tensors if len(shape) >= 2)
    return min(weights, key=lambda t: (-weights[t], t)) if weights else None


def _keep(key: str, value: Any) -> bool:
    return not key.startswith(_SKIP_PREFIXES) and not isinstance(value, LongArray)


def _as_int(v: Any) -> int | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, (bool, LongArray))
    return int(v) if ok else None


def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None

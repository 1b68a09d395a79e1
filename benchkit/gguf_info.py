"""Read a GGUF header: what a model is, from the file itself.

The result file records architecture, parameter count and quantization as the GGUF
header states them, never as a file name suggests: a file called "7b-q4" may be
anything. Parsing is gguf-py's `GGUFReader` (llama.cpp's own reader), memory-mapped,
so reading the header of a multi-GiB model costs almost nothing.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.errors import BenchkitError

GGUF_MAGIC = b"GGUF"

# Metadata keys we never copy into `metadata`: huge arrays that say nothing about speed.
_SKIP_PREFIXES = ("tokenizer.ggml.", "tokenizer.chat_template")
_MAX_ARRAY = 16


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
    p = Path(path)
    _check_magic(p)
    reader = _open_reader(p)
    tensors = tuple((t.name, tuple(int(d) for d in t.shape), t.tensor_type.name)
                    for t in reader.tensors)
    size = p.stat().st_size
    ends = [int(t.data_offset) + int(t.n_bytes) for t in reader.tensors]
    if ends and max(ends) > size:
        raise BenchkitError(
            f"truncated GGUF: tensor data needs {max(ends)} bytes, the file has {size}",
            file=str(p))
    fields = {name: _field_value(f) for name, f in reader.fields.items()
              if not name.startswith("GGUF.")}
    arch = _as_str(fields.get("general.architecture"))
    return GGUFInfo(
        path=str(p),
        architecture=arch,
        n_params=sum(math.prod(shape) for _, shape, _ in tensors),
        file_type=_file_type(fields.get("general.file_type"), tensors),
        n_layers=_as_int(fields.get(f"{arch}.block_count")) if arch else None,
        context_length=_as_int(fields.get(f"{arch}.context_length")) if arch else None,
        tensors=tensors,
        metadata={k: v for k, v in fields.items() if _keep(k, v)},
        synthetic=bool(fields.get("benchkit.synthetic", False)),
        preset=_as_str(fields.get("benchkit.preset")),
        name=_as_str(fields.get("general.name")),
        size_bytes=size,
        tensor_bytes=sum(int(t.n_bytes) for t in reader.tensors),
    )


def _check_magic(p: Path) -> None:
    """Refuse a missing file or one without the GGUF magic, with a plain message."""
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise BenchkitError("model file does not exist", file=str(p)) from None
    except IsADirectoryError:
        raise BenchkitError("model path is a directory, not a GGUF file", file=str(p)) from None
    except OSError as exc:
        raise BenchkitError(f"cannot read model file: {exc.strerror or exc}",
                            file=str(p)) from None
    if magic != GGUF_MAGIC:
        raise BenchkitError(
            f"not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})", file=str(p))


def _open_reader(p: Path) -> Any:
    """GGUFReader, with any parse failure turned into one 'truncated or corrupt' line."""
    from gguf import GGUFReader

    try:
        return GGUFReader(p, "r")
    except Exception as exc:  # noqa: BLE001 - gguf-py raises many types for a bad header
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise BenchkitError(f"truncated or corrupt GGUF file ({type(exc).__name__}: {detail})",
                            file=str(p)) from None


def _field_value(f: Any) -> Any:
    """A metadata value as plain Python (str, int, float, bool or a list of them)."""
    from gguf import GGUFValueType

    if not f.types:
        return None
    if f.types[0] == GGUFValueType.ARRAY and len(f.data) > _MAX_ARRAY:
        return _LongArray(len(f.data))
    value = f.contents()
    if f.types[0] == GGUFValueType.BOOL:
        return bool(value)
    return value


class _LongArray(int):
    """Stands for an array too long to keep: its length, never copied into `metadata`."""


def _keep(key: str, value: Any) -> bool:
    return not key.startswith(_SKIP_PREFIXES) and not isinstance(value, _LongArray)


def _file_type(raw: Any, tensors: tuple[tuple[str, tuple[int, ...], str], ...]) -> str | None:
    """general.file_type as llama.cpp names it (Q4_K_M, Q4_1, F16...).

    Files without the key (some converters omit it) fall back to the most common
    type among the 2-D weight tensors, which is what the quantization is in practice.
    """
    from gguf import LlamaFileType

    if raw is not None:
        try:
            name = LlamaFileType(int(raw)).name
        except ValueError:
            return f"file_type_{int(raw)}"
        return {"ALL_F32": "F32"}.get(name, name.removeprefix("MOSTLY_"))
    weights = Counter(t for _, shape, t in tensors if len(shape) >= 2)
    return weights.most_common(1)[0][0] if weights else None


def _as_int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None

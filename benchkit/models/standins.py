"""Stand-in files beside the recipe: what `benchkit models inspect` and `list` show, and a
suite's `standin:` entry resolved to a cached (or newly made) stand-in whose tensors are
checked against what the suite expects."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.models.presets import get_preset, n_params, n_params_active, preset_names
from benchkit.models.synth import cache_dir, read_header, synthesize

STANDIN_KEYS = {"preset", "quant", "token_embedding_type", "output_tensor_type", "seed",
                "fill", "signature", "model_buffer_mib", "tensor_types"}
MIB = 1024 * 1024

# --------------------------------------------------------------------------- inspect / list

def inspect_model(path: str | os.PathLike[str], *, sha256: bool = True) -> dict[str, Any]:
    """What `benchkit models inspect` shows about any GGUF, real or synthetic."""
    from benchkit.models.gguf import active_counts, sha256_file
    from benchkit.models.gguf import read_header as read_full_header

    full = read_full_header(path)
    h = read_header(path)
    if not h.complete:
        raise BenchkitError("truncated GGUF: the tensor data runs past the end of the file",
                            file=str(path))
    meta = h.metadata
    arch = meta.get("general.architecture")
    synthetic = bool(meta.get("benchkit.synthetic", False))
    standin = ({k.removeprefix("benchkit."): v for k, v in meta.items()
                if k.startswith("benchkit.") and k != "benchkit.synthetic"}
               if synthetic else None)
    counts = active_counts(full)
    return {
        "file": str(path), "name": meta.get("general.name"), "architecture": arch,
        "n_params": counts.n_params_total,
        "n_params_total": counts.n_params_total, "n_params_active": counts.n_params_active,
        "bytes_total": counts.bytes_total, "bytes_active": counts.bytes_active,
        "n_expert": counts.n_expert, "n_expert_used": counts.n_expert_used,
        "file_type": _file_type(meta.get("general.file_type"), h.tensors),
        "n_layers": meta.get(f"{arch}.block_count"),
        "context_length": meta.get(f"{arch}.context_length"), "n_tensors": len(h.tensors),
        "tensor_types": type_histogram(h.tensors), "size_bytes": h.size_bytes,
        "model_buffer_mib": round(h.tensor_span / MIB, 2),
        "signature": tensor_signature(h.tensors),
        "sha256": sha256_file(path) if sha256 else None,
        "synthetic": synthetic, "standin": standin,
    }


def _file_type(raw: Any, tensors: list[tuple[str, tuple[int, ...], str]]) -> str | None:
    """general.file_type as llama.cpp names it (Q4_K_M...), as benchkit.models.gguf does."""
    from benchkit.models.gguf import file_type_name

    return file_type_name(raw, tensors)


def cached_standins() -> list[dict[str, Any]]:
    """The stand-ins in the cache folder, with what their headers say (partial files skipped)."""
    folder = cache_dir()
    out = []
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        try:
            h = read_header(path)
        except BenchkitError:
            continue
        row = {"file": str(path), "preset": h.metadata.get("benchkit.preset"),
               "quant": h.metadata.get("benchkit.quant"),
               "synthetic": bool(h.metadata.get("benchkit.synthetic", False)),
               "size_bytes": h.size_bytes}
        if h.metadata.get("benchkit.reduced"):     # never listed as the model's shapes
            row["reduced"] = h.metadata["benchkit.reduced"]
        out.append(row)
    return out


def preset_table() -> list[dict[str, Any]]:
    """Every preset's figures plus its parameter count, for `benchkit models list`."""
    rows = []
    for key in preset_names():
        p = get_preset(key)
        rows.append({"preset": key, "model": p.name, "architecture": p.architecture,
                     "n_layers": p.n_layers, "n_embd": p.n_embd, "n_ff": p.n_ff,
                     "n_head": p.n_head, "n_head_kv": p.n_head_kv, "n_vocab": p.n_vocab,
                     "n_ctx_train": p.n_ctx_train, "rope_theta": p.rope_theta,
                     "norm_eps": p.norm_eps, "tied_embeddings": p.tied_embeddings,
                     "head_dim": p.head_dim, "n_expert": p.n_expert,
                     "n_expert_used": p.n_expert_used, "n_ff_expert": p.n_ff_expert,
                     "n_params": n_params(p), "n_params_active": n_params_active(p),
                     "source": p.source})
    return rows


# --------------------------------------------------------------------------- suites

def tensor_signature(tensors: Any) -> str:
    """A short hash of every tensor's name, shape and type: equal signatures, equal layout.

    Order-independent (sorted by name), because llama.cpp's quantizer has changed the
    order it writes tensors in between versions without changing the model.
    """
    lines = sorted(f"{name}\t{'x'.join(map(str, shape))}\t{ttype}\n"
                   for name, shape, ttype in tensors)
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:16]


def type_histogram(tensors: Any) -> dict[str, int]:
    """How many tensors of each type, most common first."""
    counts: dict[str, int] = {}
    for _, _, ttype in tensors:
        counts[ttype] = counts.get(ttype, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def model_buffer_mib(path: str | os.PathLike[str]) -> float:
    """The span of the file's tensor data in MiB: what llama.cpp reports as the model
    buffer when the whole model sits in one buffer (CPU, Metal), known before loading."""
    return read_header(path).tensor_span / MIB


def standin_path(standin: dict[str, Any], *, suite_file: str, field: str) -> Path:
    """The stand-in a suite asks for (cached, made if needed), checked against the suite.

    `standin` is the suite's mapping: `preset` and `quant` (required); optional
    `token_embedding_type`, `output_tensor_type`, `seed`, `fill`, and what the file must
    match: `signature` (see `benchkit models inspect`), `model_buffer_mib`, `tensor_types`
    (a type -> count mapping).
    """
    if not isinstance(standin, dict):
        raise BenchkitError("must be a mapping with preset and quant", file=suite_file,
                            field=field)
    unknown = sorted(set(standin) - STANDIN_KEYS)
    if unknown:
        raise BenchkitError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(STANDIN_KEYS))}",
                            file=suite_file, field=f"{field}.{unknown[0]}")
    for key in ("preset", "quant"):
        if not isinstance(standin.get(key), str):
            raise BenchkitError(f"{key} is required (a string)", file=suite_file,
                                field=f"{field}.{key}")
    seed = standin.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise BenchkitError("seed must be a non-negative integer", file=suite_file,
                            field=f"{field}.seed")
    result = synthesize(standin["preset"], standin["quant"], seed=seed,
                        fill=standin.get("fill", "normal"),
                        token_embedding_type=standin.get("token_embedding_type"),
                        output_tensor_type=standin.get("output_tensor_type"),
                        progress=sys.stderr.isatty(), announce=True, file=suite_file,
                        field=field)
    _check_expectations(result.path, standin, suite_file=suite_file, field=field)
    return result.path


def _check_expectations(path: Path, standin: dict[str, Any], *, suite_file: str,
                        field: str) -> None:
    """The stand-in must have the tensor layout the suite names (when it names one)."""
    header = read_header(path)
    want = standin.get("signature")
    if want is not None:
        have = tensor_signature(header.tensors)
        if str(want) != have:
            raise BenchkitError(
                f"the stand-in's tensor signature is {have}, the suite names {want}: "
                "its tensor shapes or types differ (another llama.cpp version's "
                "quantizer?); `benchkit models inspect` lists them", file=suite_file,
                field=f"{field}.signature")
    want_mib = standin.get("model_buffer_mib")
    if want_mib is not None:
        have_mib = header.tensor_span / MIB
        if abs(float(want_mib) - have_mib) > 0.005:
            raise BenchkitError(f"the stand-in's model buffer is {have_mib:.2f} MiB, the "
                                f"suite names {float(want_mib):.2f} MiB", file=suite_file,
                                field=f"{field}.model_buffer_mib")
    want_types = standin.get("tensor_types")
    if want_types is not None:
        have_types = type_histogram(header.tensors)
        if {str(k).upper(): int(v) for k, v in dict(want_types).items()} != have_types:
            raise BenchkitError(f"the stand-in's tensor types are {have_types}, the suite "
                                f"names {dict(want_types)}", file=suite_file,
                                field=f"{field}.tensor_types")

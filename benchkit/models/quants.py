"""Bits per weight of GGUF file types (`benchkit/data/quants.yaml`).

A projection for "a 13B model in Q4_K_M" needs the file size, and a file size with a
type gives back the parameter count; both go through the averages in the data file.
"""

from __future__ import annotations

import functools
from importlib import resources

import yaml

from benchkit.core.errors import BenchkitError

DATA_FILE = "benchkit/data/quants.yaml"


@functools.lru_cache(maxsize=1)
def load_quants() -> dict[str, float]:
    """GGUF type name (upper case) -> average bits per weight."""
    text = resources.files("benchkit").joinpath("data/quants.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    types = doc.get("types") if isinstance(doc, dict) else None
    if not isinstance(types, dict):
        raise BenchkitError("expected a `types:` mapping", file=DATA_FILE, field="types")
    out: dict[str, float] = {}
    for name, entry in types.items():
        bpw = entry.get("bpw") if isinstance(entry, dict) else None
        if not isinstance(bpw, (int, float)) or bpw <= 0:
            raise BenchkitError("bpw must be a positive number", file=DATA_FILE,
                                field=f"types.{name}.bpw")
        out[str(name).upper()] = float(bpw)
    return out


def bits_per_weight(quant: str, *, field: str = "quant") -> float:
    """Average bits per weight of a GGUF type ("Q4_K_M", "q8_0", "F16"); unknown types fail."""
    quants = load_quants()
    key = quant.strip().upper().replace("-", "_")
    if key in quants:
        return quants[key]
    raise BenchkitError(f"unknown GGUF type {quant!r}; known: {', '.join(quants)}", field=field)


@functools.lru_cache(maxsize=1)
def _dense_types() -> dict[str, str]:
    text = resources.files("benchkit").joinpath("data/quants.yaml").read_text(encoding="utf-8")
    types = yaml.safe_load(text)["types"]
    return {str(name).upper(): str(entry["dense_type"]).upper()
            for name, entry in types.items() if isinstance(entry, dict) and entry.get("dense_type")}


def dense_bits_per_weight(quant: str) -> float:
    """Bits per weight of a mixture of experts' tensors outside the routed experts: the
    type's own, unless the file type quantizes only the experts (`dense_type`: llama.cpp's
    MXFP4_MOE keeps every other weight in Q8_0)."""
    key = quant.strip().upper().replace("-", "_")
    return bits_per_weight(_dense_types().get(key, key))

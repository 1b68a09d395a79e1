"""Shared by the projection tests: a published-style measurement."""

from __future__ import annotations

from benchkit.projection.measurements import Measurement
from benchkit.projection.shapes import shape_from_preset

GIB = 2 ** 30


def llama3_8b(chip: str, tg: float, pp: float | None = None, quant: str = "Q4_K_M") -> Measurement:
    size = {"Q4_K_M": 4.58, "F16": 14.96}[quant] * GIB
    return Measurement(chip, tg, pp, size, 32, 8030261248, source="published",
                       model_key=f"llama3-8b:{quant}", quant=quant,
                       shape=shape_from_preset("llama-3-8b", quant, size))

"""Shared by the projection tests: the accuracy script as a module, and a published-style measurement."""

from __future__ import annotations

import importlib.util
import sys

from benchkit.projection.model import Measurement, shape_from_preset
from paths import REPO

GIB = 2 ** 30


def accuracy_script():
    """scripts/projection_accuracy.py as a module (the docs' figures come from it)."""
    spec = importlib.util.spec_from_file_location("projection_accuracy",
                                                  REPO / "scripts/projection_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["projection_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def llama3_8b(chip: str, tg: float, pp: float | None = None, quant: str = "Q4_K_M") -> Measurement:
    size = {"Q4_K_M": 4.58, "F16": 14.96}[quant] * GIB
    return Measurement(chip, tg, pp, size, 32, 8030261248, source="published",
                       model_key=f"llama3-8b:{quant}", quant=quant,
                       shape=shape_from_preset("llama-3-8b", quant, size))

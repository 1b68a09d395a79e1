"""Hostile model files (the catalogue, tests/catalogue_support.py): a GGUF with a patched
header, a truncated one, a FIFO or a device given as a model, refused in one line by `run`
and by `models inspect`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue_support import (GOOD_SUITE, HANG_TIMEOUT, INSPECT, MODEL_FILES, cli, needs_posix,
                               no_result, refused, special_path, suite_text, write_suite)
from catalogue_support import patched_models  # noqa: F401 (fixtures)
from conftest import run_benchkit


@pytest.mark.parametrize("case", MODEL_FILES, ids=[c[0] for c in MODEL_FILES])
def test_model_file(case: tuple, tmp_path: Path, smollm2_model: Path, patched_models: dict,
                    capsys: pytest.CaptureFixture[str]) -> None:
    _, _, kind, expect, field_ = case
    needs_posix(kind)
    text = GOOD_SUITE
    if kind in patched_models:
        model = patched_models[kind]
    elif kind == "sha256":
        model = smollm2_model
        text = suite_text(models=f"  - {{path: @MODEL@, sha256: '{'ab' * 32}'}}")
    elif kind == "package":
        model = smollm2_model
        text = suite_text(models="  - package: no_such_package_here/model.gguf")
    else:
        model = special_path(kind, tmp_path, {"text": b"not a model\n"}.get(kind, b""))
    suite = write_suite(tmp_path, text, model)
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"))
    refused(proc, "hostile.yaml", expect, field_)
    no_result(tmp_path / "out")


@pytest.mark.parametrize("case", INSPECT, ids=[c[0] for c in INSPECT])
def test_models_inspect(case: tuple, tmp_path: Path) -> None:
    _, _, kind, expect = case
    needs_posix(kind)
    path = special_path(kind, tmp_path, b"not a model\n" if kind == "text" else b"")
    proc = run_benchkit("models", "inspect", str(path), timeout=HANG_TIMEOUT)
    refused(proc, path, expect)

"""Hostile suites (the catalogue, tests/catalogue_support.py): every suite text, suite path,
option and pre-measurement check a user can get wrong is refused in one line, and a refused
suite writes no result.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalogue_support import (GOOD_SUITE, HANG_TIMEOUT, PREFLIGHT, SUITE_FILES, SUITE_OPTIONS,
                               SUITE_TEXT, cli, needs_posix, no_result, refused, special_path,
                               write_suite)
from conftest import run_benchkit


@pytest.mark.parametrize("case", SUITE_TEXT, ids=[c[0] for c in SUITE_TEXT])
def test_suite_text(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, text, expect, field_ = case
    suite = write_suite(tmp_path, text, tmp_path / "model.gguf")
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"))
    refused(proc, "hostile.yaml", expect, field_)
    no_result(tmp_path / "out")


@pytest.mark.parametrize("case", SUITE_FILES, ids=[c[0] for c in SUITE_FILES])
def test_suite_file(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, kind, expect, subprocess_ = case
    needs_posix(kind)
    payloads = {"large": b"name: x\n" + b"#" * (2 << 20) + b"\n",
                "latin1": "name: caf\xe9\n".encode("latin-1")}
    if kind == "sparse":
        path = tmp_path / "big.yaml"
        with open(path, "wb") as fh:
            fh.truncate(50 * 10**6)
    else:
        path = special_path(kind, tmp_path, payloads.get(kind, b""))
    out = tmp_path / "out"
    if subprocess_:
        proc = run_benchkit("run", str(path), "-o", str(out), timeout=HANG_TIMEOUT)
    else:
        proc = cli(capsys, "run", str(path), "-o", str(out))
    refused(proc, path, expect)
    no_result(out)


@pytest.mark.parametrize("case", SUITE_OPTIONS, ids=[c[0] for c in SUITE_OPTIONS])
def test_suite_option(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      smollm2_model: Path) -> None:
    _, _, args, expect, field_ = case
    suite = write_suite(tmp_path, GOOD_SUITE, smollm2_model)
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"), *args)
    refused(proc, None, expect, field_)
    no_result(tmp_path / "out")


@pytest.mark.parametrize("case", PREFLIGHT, ids=[c[0] for c in PREFLIGHT])
def test_checked_before_measuring(case: tuple, tmp_path: Path, smollm2_model: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    name, _, text, expect, field_ = case
    if name == "threads-per-core" and 4 * (os.cpu_count() or 1) + 1 > 512:
        pytest.skip("on this many cores ggml's own limit of 512 threads comes first")
    suite = write_suite(tmp_path, text, smollm2_model)
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"))
    refused(proc, "hostile.yaml", expect, field_)
    no_result(tmp_path / "out")


@pytest.mark.parametrize("value, expect", [("two", "must be a positive integer"),
                                           ("0", "must be a positive integer"),
                                           ("100000", "logical cores")])
def test_a_bad_threads_variable_is_refused_before_measuring(
        value: str, expect: str, tmp_path: Path, smollm2_model: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """BENCHKIT_THREADS, the default n_threads, is held to the setting's own limits."""
    monkeypatch.setenv("BENCHKIT_THREADS", value)
    suite = write_suite(tmp_path, GOOD_SUITE, smollm2_model)
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"))
    line = refused(proc, None, expect)
    assert "BENCHKIT_THREADS" in line
    no_result(tmp_path / "out")

"""Hostile result files (the catalogue, tests/catalogue_support.py), through every reader
(validate, compare, report, project, load_results): each is accepted or refused in one
line, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from catalogue_support import (HANG_TIMEOUT, READERS, RESULT_DOCS, RESULT_PATH_CASES, cli,
                               needs_posix, refused, special_path)
from catalogue_support import real_result  # noqa: F401 (fixtures)
from community_support import REPO, load, write
from conftest import run_benchkit


# --- result files, through every reader ---------------------------------------------------


def _bad_result(real: Path, make: Callable[[dict], Any], folder: Path) -> Path:
    made = make(load(real))
    path = folder / "bad.json"
    if isinstance(made, bytes):
        path.write_bytes(made)
    else:
        path.write_text(json.dumps(made, indent=2), encoding="utf-8")   # NaN as NaN
    return path


def _read(reader: str, bad: Path, real: Path, tmp_path: Path, capsys: Any,
          subprocess_: bool = False) -> subprocess.CompletedProcess[str]:
    """`bad` through one reader: its CLI command, or load_results (one line, naming it)."""
    if reader == "load_results":
        from benchkit import load_results
        from benchkit.core.errors import BenchkitError

        with pytest.raises(BenchkitError) as exc:
            load_results([str(bad)])
        text = f"error: {exc.value}"
        assert "\n" not in text
        return subprocess.CompletedProcess([], 2, "", text + "\n")
    args = {"validate": ["validate", str(bad)],
            "compare": ["compare", str(real), str(bad)],
            "report": ["report", str(bad), "-o", str(tmp_path / "report" / "r")],
            "project": ["project", "--from", str(bad)]}[reader]
    if subprocess_:
        return run_benchkit(*args, cwd=REPO, timeout=HANG_TIMEOUT)
    return cli(capsys, *args)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", RESULT_DOCS, ids=[c[0] for c in RESULT_DOCS])
def test_result_document(case: tuple, reader: str, real_result: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    _, _, make, expect, field_ = case
    bad = _bad_result(real_result, make, tmp_path)
    refused(_read(reader, bad, real_result, tmp_path, capsys), bad, expect, field_)


@pytest.mark.parametrize(("reader", "case"), RESULT_PATH_CASES,
                         ids=[f"{c[0]}-{r}" for r, c in RESULT_PATH_CASES])
def test_result_path(case: tuple, reader: str, real_result: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    _, _, kind, expect, subprocess_ = case
    needs_posix(kind)
    bad = special_path(kind, tmp_path)
    if reader == "load_results" and subprocess_:
        proc = subprocess.run([sys.executable, "-c", "import sys, benchkit\n"
                               "from benchkit.core.errors import BenchkitError\n"
                               "try: benchkit.load_results([sys.argv[1]])\n"
                               "except BenchkitError as e: sys.exit(f'error: {e}')",
                               str(bad)], capture_output=True, text=True,
                              timeout=HANG_TIMEOUT)
        proc = subprocess.CompletedProcess([], 2 if proc.returncode == 1 else proc.returncode,
                                           proc.stdout, proc.stderr)
    else:
        proc = _read(reader, bad, real_result, tmp_path, capsys, subprocess_)
    shown = "zero" if kind == "devzero" else bad.name
    refused(proc, shown, expect)


def test_report_of_prompt_tests_only(real_result: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = load(real_result)
    doc["cases"] = [c for c in doc["cases"] if c["workload"]["kind"] == "pp"]
    src = write(doc, tmp_path / "prompt-only.json")
    proc = cli(capsys, "report", str(src), "-o", str(tmp_path / "r" / "p"), "--format", "md")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "pp512" in (tmp_path / "r" / "p.md").read_text(encoding="utf-8")

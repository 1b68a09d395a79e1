"""Hostile chip specs for `benchkit project --chip-spec` (the catalogue,
tests/catalogue_io.py): UTF-16 text, nesting 100,000 deep, an alias bomb, Latin-1; and a
FIFO, which would block. Each is one error line naming the file, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalogue_io import SPECS
from catalogue_support import HANG_TIMEOUT, cli, needs_posix, refused
from conftest import run_benchkit

PROJECT = ("project", "--anchor", "rtx4090", "--tg", "100", "--model-gb", "4.9")


@pytest.mark.parametrize("case", SPECS, ids=[c[0] for c in SPECS])
def test_chip_spec(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, data, expect = case
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(data)
    refused(cli(capsys, *PROJECT, "--chip-spec", str(spec)), spec, expect)


def test_a_fifo_as_chip_spec_is_refused_unread(tmp_path: Path) -> None:
    needs_posix("fifo")
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    proc = run_benchkit(*PROJECT, "--chip-spec", str(fifo), timeout=HANG_TIMEOUT)
    refused(proc, fifo, "FIFO")

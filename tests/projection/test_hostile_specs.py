"""Hostile files given to `benchkit project` (the catalogue, tests/catalogue_io.py): chip
specs in UTF-16, nested 100,000 deep, an alias bomb, Latin-1; and a FIFO as --chip-spec or
--gguf, which would block. Each is one error line naming the file, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalogue_io import PROJECT_FIFOS, SPECS
from catalogue_support import HANG_TIMEOUT, cli, needs_posix, refused
from conftest import run_benchkit

PROJECT = ("project", "--anchor", "rtx4090", "--tg", "100", "--model-gb", "4.9")


@pytest.mark.parametrize("case", SPECS, ids=[c[0] for c in SPECS])
def test_chip_spec(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, data, expect = case
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(data)
    refused(cli(capsys, *PROJECT, "--chip-spec", str(spec)), spec, expect)


@pytest.mark.parametrize("case", PROJECT_FIFOS, ids=[c[0] for c in PROJECT_FIFOS])
def test_a_fifo_is_refused_unread(case: tuple, tmp_path: Path) -> None:
    _, _, option, expect = case
    needs_posix("fifo")
    fifo = tmp_path / "input.gguf"
    os.mkfifo(fifo)
    proc = run_benchkit(*PROJECT, option, str(fifo), timeout=HANG_TIMEOUT)
    refused(proc, fifo, expect)

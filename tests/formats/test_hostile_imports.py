"""Hostile llama-bench files for `benchkit import` (the catalogue, tests/catalogue_io.py):
paths from test_time, NaN and Infinity, unknown values, deep nesting, and small files that
cost a lot of work (millions of rows, a SQL self-join, thousands of builds). Each is
refused in one line naming the file (and the field), writes nothing, and never writes
outside -o; each accepted one is written inside it.

The files that cost work if a cap regressed (gigabytes of memory, a join that never
ends) run in a subprocess with a timeout; the rest run the CLI in this process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalogue_io import IMPORTS, INSIDE
from catalogue_support import HANG_TIMEOUT, cli, refused
from conftest import run_benchkit

COSTLY = {"minimal-csv", "json-10001", "samples-200001", "sql-self-join", "builds-33",
          "deep-json", "sql-comments"}


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", IMPORTS, ids=[c[0] for c in IMPORTS])
def test_import(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, _, make, filename, expect, field, code = case
    source = tmp_path / "in" / filename
    source.parent.mkdir()
    source.write_bytes(make())
    out = tmp_path / "a" / "b" / "c" / "d" / "e" / "out"      # ../ x5 would reach tmp_path
    before = _tree(tmp_path)
    if name in COSTLY:
        proc = run_benchkit("import", str(source), "-o", str(out), timeout=HANG_TIMEOUT)
    else:
        proc = cli(capsys, "import", str(source), "-o", str(out))
    if code:
        refused(proc, source, expect, field)
        assert _tree(tmp_path) == before, "a refused import writes nothing"
        return
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    [written] = proc.stdout.split()
    path = Path(written)
    assert path.parent.resolve() == out.resolve(), INSIDE
    assert [p for p in _tree(tmp_path) if p not in before] == [
        "a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e", "a/b/c/d/e/out",
        f"a/b/c/d/e/out/{path.name}"]
    assert not list(Path("/tmp").glob("benchkit*-import-*")), "written outside -o"
    doc = json.loads(path.read_text(encoding="utf-8"))
    if name == "time-offset":
        assert path.name.startswith("20261201T171335Z-import-offset-")
        assert doc["started_at"] == "2026-12-01T17:13:35Z"
    else:                         # not a time: dated by the file, and the case says so
        assert path.name[:8].isdigit() and path.name[8] == "T"
        assert any("is not a time" in w for w in doc["cases"][0]["warnings"])


def test_the_caps_leave_a_real_import_alone(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The real llama-bench files import as before, and SQL is parsed exactly as sqlite
    reads it: every row's every value, with its type."""
    import sqlite3

    from benchkit.formats.llama_bench_read import read_rows
    from catalogue_io import LLAMA_BENCH, real

    db = sqlite3.connect(":memory:")
    db.executescript(real("sql"))
    cur = db.execute("SELECT * FROM llama_bench ORDER BY rowid")
    names = [d[0] for d in cur.description]
    expected = [dict(zip(names, values)) for values in cur.fetchall()]
    got = [fields for fields, _, _ in read_rows(real("sql"), "sql", "x.sql")]
    assert got == expected
    assert [[type(v) for v in row.values()] for row in got] == \
        [[type(v) for v in row.values()] for row in expected]
    for fmt in ("json", "jsonl", "csv", "sql"):
        proc = cli(capsys, "import", str(LLAMA_BENCH / f"smollm2-cpu.{fmt}"), "-o",
                   str(tmp_path / fmt))
        assert proc.returncode == 0, proc.stderr
        assert len(os.listdir(tmp_path / fmt)) == 1


def test_an_sqlite_dump_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sqlite3 llama-bench.sqlite .dump` (PRAGMA, BEGIN, INSERT without columns, COMMIT),
    as people keep llama-bench's SQL: read without running it."""
    import sqlite3

    from catalogue_io import real

    db = sqlite3.connect(":memory:")
    db.executescript(real("sql"))
    dump = "\n".join(db.iterdump())
    assert dump.startswith("BEGIN TRANSACTION;") and "INSERT INTO \"llama_bench\" VALUES" in dump
    source = tmp_path / "dump.sql"
    source.write_text("PRAGMA foreign_keys=OFF;\n" + dump + "\n", encoding="utf-8")
    proc = cli(capsys, "import", str(source), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(Path(proc.stdout.split()[0]).read_text(encoding="utf-8"))
    assert [c["test"] for c in doc["cases"]] == ["pp16", "tg4"]

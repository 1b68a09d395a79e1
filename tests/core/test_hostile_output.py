"""Output hygiene (the catalogue, tests/catalogue_support.py): hostile text in a result
(Markdown images and links, terminal escape sequences, newlines) never reaches the
report or the terminal live.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from catalogue_support import OUTPUT, cli, refused, suite_text, write_suite
from catalogue_support import real_result  # noqa: F401 (fixtures)
from community_support import load, write


# --- output hygiene ----------------------------------------------------------------------


@pytest.mark.parametrize("case", OUTPUT, ids=[c[0] for c in OUTPUT])
def test_output(case: tuple, real_result: Path, tmp_path: Path,
                capsys: pytest.CaptureFixture[str]) -> None:
    name, _, forbidden, command, _ = case
    doc = load(real_result)
    if command == "report":
        if name == "report-image":
            for c in doc["cases"]:
                c["model"]["name"] = "![x](http://tracker.example/p.png) model.gguf"
        elif name == "report-js-link":
            doc["cases"].append(copy.deepcopy(doc["cases"][0]))
            doc["cases"][-1].update(index=len(doc["cases"]) - 1, status="failed",
                                    error="[click me](javascript:alert(1))", iterations=[])
        else:
            doc["suite"]["description"] = "see <http://tracker.example/x> for details"
        src = write(doc, tmp_path / "hostile.json")
        proc = cli(capsys, "report", str(src), "-o", str(tmp_path / "r" / "hostile"),
                   "--format", "md")
        assert proc.returncode == 0, proc.stderr
        md = (tmp_path / "r" / "hostile.md").read_text(encoding="utf-8")
        assert not re.search(forbidden, md), re.search(forbidden, md)
        assert "tracker.example" in md or "click me" in md      # the text is still shown
        return
    if command == "compare":
        for c in doc["cases"]:
            c["model"]["name"] = "\x1b[2J\x1b]0;owned\x07model.gguf"
        base = write(doc, tmp_path / "base.json")     # the table names BASE's model
        proc = cli(capsys, "compare", str(base), str(real_result))
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr
        assert not re.search(forbidden, proc.stdout + proc.stderr)
        assert "model.gguf" in proc.stdout
        return
    if command == "validate":
        doc["status"], doc["cases"][0]["status"] = "complete", "failed"
        doc["cases"][0]["error"] = "\x1b[31mred\x1b[0m failure\x1b]0;title\x07"
        src = write(doc, tmp_path / "escapes.json")
        proc = cli(capsys, "validate", str(src))
        assert proc.returncode == 2 and "red failure" in proc.stderr
        assert not re.search(forbidden, proc.stderr + proc.stdout)
        return
    suite = write_suite(tmp_path, suite_text(models='  - path: "a\\nb.gguf"'), Path("x"))
    proc = cli(capsys, "run", str(suite), "-o", str(tmp_path / "out"))
    refused(proc, "hostile.yaml", "not found")

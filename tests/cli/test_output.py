"""Terminal output (the catalogue's output hygiene, tests/catalogue_io.py TERMINAL): text
from elsewhere with escape sequences in it (a tool's path and version line, a chip spec's
name, an imported file's name, a mistyped option) is printed readable, with no escape
sequence left: every command prints through `benchkit.cli.output.say`.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from catalogue_io import LLAMA_BENCH, TERMINAL
from catalogue_support import cli

ESC = "\x1b"
TITLE = "\x1b]0;owned\x07"            # sets the window title
CLEAR = "\x1b[2J\x1b[H"               # clears the screen


def _fake_tool(folder: Path) -> Path:
    """An executable that answers --version as llama.cpp's tools do, escape sequences in
    its version, commit and compiler, at a path with escape sequences in it."""
    tool = folder / f"llama{CLEAR}bench"
    tool.write_text("#!/bin/sh\n"
                    f"printf 'version: 9{TITLE} (build 7, commit ab{CLEAR}cd)\\n'\n"
                    "printf 'built with \\033[31mgcc\\033[0m for x86_64\\n'\n",
                    encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


@pytest.mark.parametrize("case", TERMINAL, ids=[c[0] for c in TERMINAL])
def test_terminal(case: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    name = case[0]
    if name == "engines-list-escapes":
        if shutil.which("sh") is None:
            pytest.skip("needs a POSIX shell for the fake tool")
        monkeypatch.setenv("BENCHKIT_LLAMA_BENCH", str(_fake_tool(tmp_path)))
        proc = cli(capsys, "engines", "list")
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout
        assert "llama-bench: " in shown and "commit abcd" in shown and "gcc" in shown
    elif name == "project-escapes":
        spec = tmp_path / "evil.yaml"
        spec.write_text(f'id: evil\nname: "Evil{TITLE}{CLEAR} GPU"\nbackend: cuda\n'
                        "gpu_cores: 100\nbandwidth_gbs: 1000\nfp32_tflops: 80\nmemory_gb: 24\n".replace(
                            ESC, "\\e").replace("\x07", "\\a"), encoding="utf-8")
        proc = cli(capsys, "project", "--anchor", "rtx4090", "--tg", "100", "--model-gb",
                   "4.9", "--chip-spec", str(spec))
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout
        assert "Evil" in shown and " GPU" in shown
    elif name == "import-escapes":
        source = tmp_path / f"run{TITLE}.json"
        source.write_bytes((LLAMA_BENCH / "smollm2-cpu.json").read_bytes())
        proc = cli(capsys, "import", str(source), "-o", str(tmp_path / "out"))
        assert proc.returncode == 0, proc.stderr
        shown = proc.stderr
        assert "imported run" in shown and ": 2 tests" in shown
    else:
        proc = cli(capsys, "report", "x.json", "--format", f"md{CLEAR}")
        assert proc.returncode == 2
        shown = proc.stderr
        assert "Invalid value for '--format'" in shown
    assert ESC not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr


def test_say_keeps_what_is_text(capsys: pytest.CaptureFixture[str]) -> None:
    """Newlines, tabs and Unicode stay; escape sequences and direction overrides go."""
    from benchkit.cli.output import say, say_line

    say(f"a\tb\nc {TITLE}d \u202eé")
    say_line("one\ntwo", err=True)
    out, err = capsys.readouterr()
    assert out == "a\tb\nc d é\n" and err == "one two\n"


def test_no_command_prints_but_through_say() -> None:
    """No command module calls click.echo or print itself."""
    commands = Path(__file__).resolve().parents[2] / "benchkit" / "cli" / "commands"
    offenders = [p.name for p in sorted(commands.glob("*.py"))
                 if "click.echo(" in p.read_text(encoding="utf-8")
                 or "print(" in p.read_text(encoding="utf-8")]
    assert offenders == []
    assert os.path.isdir(commands)

"""What every command prints goes through `say`: text made safe for a terminal.

Much of what benchkit prints was written by someone else: model names and notes from
result files, a GGUF's own metadata, chip names from a `--chip-spec`, a llama.cpp tool's
version line, a server's answer, a path. Printed as they are, escape sequences in any of
them would clear the screen, rewrite earlier lines or set the window title of whoever
runs the command. `say` removes them (benchkit.core.textsafe.terminal), so no command
module calls click.echo itself; JSON output, whose strings escape control characters,
passes unchanged.
"""

from __future__ import annotations

from typing import Any

import click

from benchkit.core.textsafe import terminal


def say(text: Any = "", *, err: bool = False, nl: bool = True) -> None:
    """click.echo of `text` with escape sequences and control characters removed (newlines
    and tabs kept)."""
    click.echo(terminal(text), err=err, nl=nl)


def say_line(text: Any, *, err: bool = False) -> None:
    """`say` for one line of text from elsewhere: its own newlines become spaces."""
    click.echo(terminal(text, one_line=True), err=err)

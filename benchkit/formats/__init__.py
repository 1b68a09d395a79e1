"""Output formats: the one registry of what `benchkit run --format` prints and
`benchkit report --format` writes.

Two kinds of writer register here, each by name, in the module that writes it:

- `@text_format(NAME, extension=..., commands=...)` on `fn(docs) -> str`: the results as
  one text. `run` prints it for its result; `report` writes it to OUTPUT + extension.
  (The end-of-run table in `table.py`; llama-bench's own outputs in `llama_bench.py`.)
- `@file_format(NAME)` on `fn(paths, out, *, method, title) -> [written paths]`: a
  `report` format that writes files of its own (the Markdown / HTML page, `page.py`).

A name is looked up per command: `md` is the end-of-run table for `run` and the
Markdown page for `report`. Every module of this package is imported when the formats
are first asked for, so adding a format is one decorated function; the commands'
`--format` choices, their order and the error for an unknown name come from here.
Modules register on import, so they import nothing heavy at the top (the `run` command
builds its choices before llama.cpp is loaded).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from benchkit.core.errors import BenchkitError

RUN, REPORT = "run", "report"
TextWriter = Callable[[list[dict[str, Any]]], str]
FileWriter = Callable[..., list[Path]]


@dataclass(frozen=True)
class Format:
    """A registered format: `text` (results -> text) or `files` (results -> files written)."""

    name: str
    command: str
    order: int
    text: TextWriter | None = None
    extension: str | None = None
    files: FileWriter | None = None

    def write(self, paths: Iterable[str | Path], out: Path, *, method: str = "roofline",
              title: str | None = None) -> list[Path]:
        """`report`'s side: write the format for the result files, return what was written."""
        if self.files is not None:
            return self.files(paths, out, method=method, title=title)
        from benchkit.report.context import load

        from benchkit.core.atomicio import write_file

        _, docs = load(paths)
        path = out.with_name(out.name + (self.extension or ""))
        return [write_file(path, self.text(list(docs.values())), f"{self.name} file")]


# (command, name) -> Format, filled by the decorators as this package's modules are imported
REGISTRY: dict[tuple[str, str], Format] = {}


def _add(fmt: Format) -> None:
    known = REGISTRY.get((fmt.command, fmt.name))
    writer = fmt.text or fmt.files
    if known is not None and (known.text or known.files).__module__ != writer.__module__:
        raise BenchkitError(f"format {fmt.name!r} of `benchkit {fmt.command}` is registered "
                            f"twice ({(known.text or known.files).__module__} and "
                            f"{writer.__module__})", field="--format")
    REGISTRY[(fmt.command, fmt.name)] = fmt


def text_format(name: str, *, extension: str | None = None,
                commands: tuple[str, ...] = (RUN, REPORT),
                order: int = 0) -> Callable[[TextWriter], TextWriter]:
    """Register `fn(docs) -> str` as format `name` of each command in `commands`.

    `order` places it in the `--format` list (benchkit's own formats 0, other tools' 1;
    the same order keeps registration order). `report` needs an `extension`."""
    if REPORT in commands and not extension:
        raise BenchkitError(f"format {name!r}: `benchkit report` writes a file and needs an "
                            "extension", field="--format")

    def register(fn: TextWriter) -> TextWriter:
        for command in commands:
            _add(Format(name=name, command=command, order=order, text=fn,
                        extension=extension))
        return fn
    return register


def file_format(name: str, *, order: int = 0) -> Callable[[FileWriter], FileWriter]:
    """Register `fn(paths, out, *, method, title) -> [paths]` as `report` format `name`."""
    def register(fn: FileWriter) -> FileWriter:
        _add(Format(name=name, command=REPORT, order=order, files=fn))
        return fn
    return register


def discover() -> None:
    """Import every module of this package, so each registers its formats."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


def names(command: str) -> list[str]:
    """The formats of `command`, in `--format` order."""
    discover()
    ordered = sorted(enumerate(f for f in REGISTRY.values() if f.command == command),
                     key=lambda item: (item[1].order, item[0]))
    return [f.name for _, f in ordered]


def get(command: str, name: str) -> Format:
    """Format `name` of `command`; an unknown one is refused with the registered ones."""
    discover()
    fmt = REGISTRY.get((command, name))
    if fmt is None:
        raise BenchkitError(f"unknown format {name!r} for `benchkit {command}` (registered: "
                            f"{', '.join(names(command))})", field="--format")
    return fmt

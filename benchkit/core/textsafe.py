"""Text from result files, made safe to print: into Markdown, into a table cell, to a terminal.

A result file is data from anyone: its notes, model names, suite descriptions and error
messages are free text. Printed as they are, they could put a tracking image or a
`javascript:` link into a published report, break a Markdown table, or send escape
sequences to the terminal of whoever runs `benchkit compare` (clearing the screen,
rewriting earlier lines, setting the window title). Every caller that prints such text
goes through one of these three functions.

- `md_text`: Markdown's link and image syntax is escaped (`[`, `]`), raw HTML cannot open
  (`<` as an entity, which also disables `<http://...>` autolinks), and the bare URLs
  GitHub-flavoured Markdown would turn into links get a zero-width space after their
  scheme (`http:` + U+200B + `//...`), so they read the same and link nowhere.
- `md_cell`: the same, plus no pipe or newline that would end the cell.
- `terminal`: ANSI/VT escape sequences and other control characters removed (tab and
  newline kept), with the Unicode direction overrides that can make text display in
  another order than it is.

The Markdown helpers return `MdSafe`, a str subclass that `md_text` passes through
unchanged: a Jinja template whose finalize is `md_text` can print a `cell`-filtered
value without escaping it twice (a doubled backslash would make an escaped pipe live).
"""

from __future__ import annotations

import re
from typing import Any

ZWSP = "\u200b"

# ESC-introduced sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings
# (terminated by BEL or ESC \, or running to the end), and the two-byte escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SCHEME = re.compile(r"(?i)\b(https?|ftp|ftps|file|mailto|javascript|data|vbscript):(?=//|\S)")
_WWW = re.compile(r"(?i)\bwww\.")
_EMAIL_AT = re.compile(r"(?<=[\w.+-])@(?=[\w-]+\.)")


class MdSafe(str):
    """Markdown text already made safe; `md_text` returns it unchanged."""


class MdCell(MdSafe):
    """Markdown text already safe inside a table cell; `md_cell` returns it unchanged."""


def terminal(value: Any, *, one_line: bool = False) -> str:
    """`value` as text a terminal prints literally: escape sequences, control characters
    and direction overrides removed; with `one_line`, newlines and tabs become spaces."""
    text = "" if value is None else str(value)
    text = _ESCAPES.sub("", text)
    if one_line:
        text = re.sub(r"[\r\n\t]+", " ", text)
    text = _CONTROLS.sub("", text)
    return _BIDI.sub("", text)


def md_text(value: Any) -> Any:
    """Markdown for untrusted text: no link, image, autolink or raw HTML can form.

    Non-strings (numbers, None) and `MdSafe` text are returned as they are, so this can be
    a Jinja `finalize`."""
    if not isinstance(value, str) or isinstance(value, MdSafe):
        return value
    return MdSafe(_neutralise(terminal(value)))


def md_cell(value: Any) -> MdCell:
    """Text safe inside a Markdown table cell: `md_text`, and no pipe or newline."""
    if isinstance(value, MdCell):
        return value
    if isinstance(value, MdSafe):
        text = str(value)
    else:
        text = _neutralise(terminal("" if value is None else str(value)))
    text = text.replace("|", "\\|")
    return MdCell(re.sub(r"\s*\n\s*", " ", text))


def _neutralise(text: str) -> str:
    """Escape what Markdown would turn into a link, an image or HTML."""
    text = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    text = text.replace("<", "&lt;")
    text = _SCHEME.sub(lambda m: f"{m.group(1)}:{ZWSP}", text)
    text = _WWW.sub(lambda m: f"{m.group(0)[:3]}{ZWSP}.", text)
    return _EMAIL_AT.sub(f"@{ZWSP}", text)

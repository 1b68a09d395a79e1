"""`benchkit report`'s own formats: the Markdown page (with its charts beside it), one
self-contained HTML page, or both.

Registered here (benchkit.formats); the page itself is written by
`benchkit.report.render`, imported only when a page is asked for, so listing the formats
loads neither pandas nor jinja2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from benchkit.formats import file_format


def _page(paths: Iterable[str | Path], out: Path, *, markdown: bool, html: bool,
          method: str, title: str | None) -> list[Path]:
    from benchkit.report.render import write_report

    return write_report(paths, out, markdown=markdown, html=html, method=method,
                        title=title).paths


@file_format("md")
def markdown_page(paths: Iterable[str | Path], out: Path, *, method: str = "roofline",
                  title: str | None = None) -> list[Path]:
    """OUT.md, with its charts as OUT-<chart>.svg beside it."""
    return _page(paths, out, markdown=True, html=False, method=method, title=title)


@file_format("html")
def html_page(paths: Iterable[str | Path], out: Path, *, method: str = "roofline",
              title: str | None = None) -> list[Path]:
    """OUT.html: inline CSS and SVG, nothing fetched from anywhere."""
    return _page(paths, out, markdown=False, html=True, method=method, title=title)


@file_format("both")
def both_pages(paths: Iterable[str | Path], out: Path, *, method: str = "roofline",
               title: str | None = None) -> list[Path]:
    """OUT.html and OUT.md (+ charts)."""
    return _page(paths, out, markdown=True, html=True, method=method, title=title)

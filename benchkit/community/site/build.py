"""The community site: static HTML pages built from the accepted community results.

`build_site(results_dir, output)` writes an index (one row per chip and model), a page per
chip, a page per result (with its JSON beside it) and a projection table per model.

Three promises, each kept by construction:

- deterministic: inputs are sorted, nothing reads the clock, floats are formatted with
  fixed precision, and every file is written from one in-memory map of path -> bytes,
  so the same results give the same bytes (CI can rebuild and publish without churn);
- portable: every link is relative and nothing is fetched, so the pages work from
  file:// as well as from any static host, under any path prefix;
- safe: community text (notes, chip and OS names) goes through jinja2's autoescape.

Only files that `benchkit validate` accepts are shown; the others are returned as
`skipped` with the reason, so a bad file cannot take the site down.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.community.site.entries import Entry, by, entry_of
from benchkit.community.site.models import models_of
from benchkit.community.site.pages import chip_facts, result_page, result_row
from benchkit.core.version import __version__
from benchkit.core.errors import BenchkitError

MARKER = ".benchkit-site"        # marks a folder this module may wipe and rebuild
TEMPLATES = "templates/site"


@dataclass
class Built:
    """What build_site wrote: page paths (relative to the output), results shown, skips."""

    pages: list[str]
    n_results: int
    skipped: list[str] = field(default_factory=list)


def build_site(results_dir: str | os.PathLike[str], output: str | os.PathLike[str], *,
               suites_dir: str | os.PathLike[str] | None = None) -> Built:
    """Validate every result under `results_dir` and write the site of the accepted ones."""
    from benchkit.community.validate import ERROR, validate_paths

    verdicts = validate_paths([results_dir], suites_dir=suites_dir)
    skipped = [str(next(p for p in v.problems if p.level == ERROR))
               for v in verdicts if not v.accepted]
    entries = sorted((entry_of(v.file, v.doc, v.relpath) for v in verdicts
                      if v.accepted and v.doc),
                     key=lambda e: (e.model, e.chip, e.id))
    files = render(entries)
    _write(Path(output), files)
    pages = sorted(p for p in files if p.endswith(".html"))
    return Built(pages=pages, n_results=len(entries), skipped=skipped)


# --- rendering: entries -> {relative path: bytes} ----------------------------------------


def render(entries: list[Entry]) -> dict[str, bytes]:
    """Every file of the site, in memory; nothing here touches the disk or the clock."""
    env = _jinja()
    models = models_of(entries)
    common = {"version": __version__, "n_results": len(entries),
              "data_through": max((str(e.doc.get("started_at") or "") for e in entries),
                                  default=""),
              "nav_models": [{"slug": m["slug"], "short": m["short"]} for m in models]}
    files: dict[str, bytes] = {}

    def page(path: str, template: str, **ctx: Any) -> None:
        root = "../" * path.count("/")
        html = env.get_template(template).render(root=root, **common, **ctx)
        files[path] = html.encode("utf-8")

    page("index.html", "index.html.j2", models=models,
         n_chips=len({e.chip for e in entries}))
    for m in models:
        page(f"projection/{m['slug']}.html", "projection.html.j2", m=m, p=m["projection"])
    for chip, mine in by(entries, lambda e: e.chip).items():
        page(f"chips/{chip}.html", "chip.html.j2", chip=chip_facts(chip, mine),
             results=[result_row(e) for e in sorted(mine, key=lambda e: (e.model, e.id))])
    for e in entries:
        page(f"results/{e.id}.html", "result.html.j2", r=result_page(e))
        files[f"results/{e.id}.json"] = _published_bytes(e.file)
    files["style.css"] = _template_bytes("style.css")
    files[MARKER] = b"written by benchkit site; the folder is rebuilt on every run\n"
    return files


def _published_bytes(file: str) -> bytes:
    """The accepted file's bytes, read as validate read it: a regular file, bounded."""
    from benchkit.community.validate import MAX_BYTES
    from benchkit.core.safeio import read_bounded_bytes

    return read_bounded_bytes(file, MAX_BYTES, "result file")


def _jinja() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("benchkit", TEMPLATES),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _template_bytes(name: str) -> bytes:
    from importlib import resources

    return resources.files("benchkit").joinpath(f"{TEMPLATES}/{name}").read_bytes()


def _write(out: Path, files: dict[str, bytes]) -> None:
    """Replace the output folder's content; refuse a non-empty folder that is not a site."""
    if out.exists():
        if not out.is_dir():
            raise BenchkitError("exists and is not a folder", file=str(out), field="--output")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise BenchkitError(f"folder is not empty and was not written by benchkit site "
                                f"(no {MARKER}); choose an empty or new folder",
                                file=str(out), field="--output")
        shutil.rmtree(out)
    for rel, data in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

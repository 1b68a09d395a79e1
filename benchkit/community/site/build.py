"""The community site: static HTML pages built from the accepted community results.

`build_site(results_dir, output)` writes the leaderboard (every measured test of every
accepted result, sortable and filterable), a page per chip, per model and per result
(with its JSON beside it), and the projection explorer with its data; `data/` holds the
leaderboard and every explorer view as JSON for other tools.

Four promises, each kept by construction:

- deterministic: inputs are sorted, nothing reads the clock, floats are formatted with
  fixed precision, and every file is written from one in-memory map of path -> bytes,
  so the same results give the same bytes (CI can rebuild and publish without churn);
- portable: every link is relative and nothing is fetched from elsewhere (the scripts and
  data are files of the site, loaded by <script> so that file:// works too), so the pages
  work from a folder, offline, and from any static host under any path prefix;
- safe: community text (notes, chip and OS names) goes through jinja2's autoescape, and
  the data embedded in pages is JSON with <, > and & escaped;
- small: plain JavaScript (`site.js`, `explorer.js`), one stylesheet, no library.

Only files that `benchkit validate` accepts are shown; the others are returned as
`skipped` with the reason, so a bad file cannot take the site down.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from benchkit.community.site.entries import Entry, by, entry_of
from benchkit.community.site.leaderboard import export, filters, leaderboard
from benchkit.community.site.models import explorer_measured, models_of
from benchkit.community.site.pages import chip_facts, result_page
from benchkit.core.version import __version__
from benchkit.core.errors import BenchkitError

MARKER = ".benchkit-site"        # marks a folder this module may wipe and rebuild
TEMPLATES = "templates/site"
ASSETS = ("style.css", "site.js", "explorer.js")


@dataclass
class Built:
    """What build_site wrote: page paths (relative to the output), results shown, skips."""

    pages: list[str]
    n_results: int
    skipped: list[str] = field(default_factory=list)


def build_site(results_dir: str | os.PathLike[str], output: str | os.PathLike[str], *,
               suites_dir: str | os.PathLike[str] | None = None,
               presets: Iterable[str] | None = None) -> Built:
    """Validate every result under `results_dir` and write the site of the accepted ones.

    `presets` limits the explorer's model presets (default: every preset)."""
    from benchkit.community.validate import ERROR, validate_paths

    presets = _check_presets(presets)
    _check_output(Path(output))          # before the rendering, not after its minutes
    verdicts = validate_paths([results_dir], suites_dir=suites_dir)
    skipped = [str(next(p for p in v.problems if p.level == ERROR))
               for v in verdicts if not v.accepted]
    entries = sorted((entry_of(v.file, v.doc, v.relpath) for v in verdicts
                      if v.accepted and v.doc),
                     key=lambda e: (e.model, e.chip, e.id))
    files = render(entries, presets=presets)
    _write(Path(output), files)
    pages = sorted(p for p in files if p.endswith(".html"))
    return Built(pages=pages, n_results=len(entries), skipped=skipped)


# --- rendering: entries -> {relative path: bytes} ----------------------------------------


def render(entries: list[Entry], *, presets: Iterable[str] | None = None) -> dict[str, bytes]:
    """Every file of the site, in memory; nothing here touches the disk or the clock."""
    from benchkit.community.site.projection import chips_table, explorer_models

    env = _jinja()
    models = models_of(entries)
    board = leaderboard(entries)
    common = {"version": __version__, "n_results": len(entries),
              "data_through": max((str(e.doc.get("started_at") or "") for e in entries),
                                  default="")}
    files: dict[str, bytes] = {}

    def page(path: str, template: str, **ctx: Any) -> None:
        root = "../" * path.count("/")
        html = env.get_template(template).render(root=root, here=path, **common, **ctx)
        files[path] = html.encode("utf-8")

    page("index.html", "index.html.j2", rows=board, filters=filters(board), models=models,
         n_chips=len({e.chip for e in entries}))
    for m in models:
        page(f"models/{m['slug']}.html", "model.html.j2", m=m,
             rows=[r for r in board if r["model"] == m["slug"]])
    for chip, mine in by(entries, lambda e: e.chip).items():
        page(f"chips/{chip}.html", "chip.html.j2", chip=chip_facts(chip, mine),
             rows=[r for r in board if r["chip"] == chip])
    for e in entries:
        page(f"results/{e.id}.html", "result.html.j2", r=result_page(e))
        files[f"results/{e.id}.json"] = _published_bytes(e.file)
    published = {f"{e.chip}/{e.model}/{e.id}.json": files[f"results/{e.id}.json"]
                 for e in entries}
    blocks = explorer_models(published, explorer_measured(models, entries), presets)
    page("projection/index.html", "explorer.html.j2",
         data_files=[(b["key"], b["label"]) for b in blocks], setup=_json_html({"chips": chips_table(), "models": [
             {k: b[k] for k in ("key", "label", "kind", "anchor", "quants", "depths",
                                "flash_attn")} for b in blocks]}))
    for b in blocks:
        data = _json(b)
        files[f"data/projection/{b['key']}.json"] = data.encode("utf-8")
        files[f"projection/data/{b['key']}.js"] = (
            f"benchkitView({data});\n").encode("utf-8")
    files["data/leaderboard.json"] = _json(export(board)).encode("utf-8")
    for name in ASSETS:
        files[name] = _template_bytes(name)
    files[MARKER] = b"written by benchkit site; the folder is rebuilt on every run\n"
    return files


def _check_presets(presets: Iterable[str] | None) -> list[str] | None:
    """The explorer's presets as asked, each one `benchkit models list` knows."""
    from benchkit.models.presets import preset_names

    if presets is None:
        return None
    chosen, known = list(presets), preset_names()
    unknown = [p for p in chosen if p not in known]
    if unknown or not chosen:
        raise BenchkitError(f"unknown preset {', '.join(map(repr, unknown)) or '(none given)'}; "
                            f"presets: {', '.join(known)}", field="--presets")
    return chosen


def _json(data: Any) -> str:
    """Compact JSON, the same bytes for the same data; safe inside a <script> file too
    (U+2028 / U+2029 escaped)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json_html(data: Any) -> Any:
    """JSON to embed in a <script type="application/json"> element: no <, > or & can end
    the element or start markup."""
    from markupsafe import Markup

    text = _json(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


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
    """Replace the output folder's content (checked by `_check_output` before rendering).
    The new site is written beside the old one and takes its place when complete, so a
    full disk leaves the previous site as it was (benchkit.core.atomicio)."""
    from benchkit.core.atomicio import replace_folder

    replace_folder(out, files, "site")


def _check_output(out: Path) -> None:
    """Refuse an output that is a file, or a non-empty folder no site build wrote."""
    if out.exists():
        if not out.is_dir():
            raise BenchkitError("exists and is not a folder", file=str(out), field="--output")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise BenchkitError(f"folder is not empty and was not written by benchkit site "
                                f"(no {MARKER}); choose an empty or new folder",
                                file=str(out), field="--output")
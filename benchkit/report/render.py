"""Write the report: the context every template prints, then Markdown and/or one
self-contained HTML file.

`build_context` computes the figures once for both outputs (the core page's sections,
those registered in `benchkit.report.sections`, the charts); the wording and layout live in
`benchkit/templates/`, the pictures in `benchkit.report.charts`. Which files a `--format`
writes is chosen in `benchkit.formats`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from benchkit.core.atomicio import write_files
from benchkit.report import chip_figures, page
from benchkit.report import sections as report_sections
from benchkit.report.charts.page import chart_data
from benchkit.report.context import SYNTHETIC, configurations, load


def build_context(df, docs: dict, *, method: str = "roofline",
                  title: str | None = None) -> dict[str, Any]:
    """Everything the templates print, computed once for both formats."""
    configs = configurations(df)
    bw = chip_figures.bandwidth(configs)
    proj = chip_figures.projections(df, configs, method=method)
    summ = page.summary(configs, df)
    sections, section_charts = report_sections.build(df, docs, configs)
    return {
        "title": title or "Benchmark report: " + ", ".join(summ["suites"]),
        "summary": summ,
        "placement_notes": page.placement_notes(configs, docs),
        "performance": page.performance(configs),
        "detail": page.detail(configs, docs),
        "resources": page.resources(configs, docs),
        "bandwidth": bw,
        "projections": proj,
        "environments": page.environments(docs),
        "methodology": page.methodology(df),
        "problems": page.problems(df) + page.case_warnings(configs, docs),
        "synthetic": any(c.synthetic for c in configs),
        "charts": {**chart_data(configs, docs, bw, proj), **section_charts},
        "sections": sections,
        "sources": [Path(f).name for f in docs],
        "SYNTHETIC": SYNTHETIC,
    }


@functools.lru_cache(maxsize=2)
def _env(autoescape: bool):
    """The jinja2 environment: templates are package data; HTML is always escaped.

    One per output kind for the process: an environment compiles each template once, and
    a fresh one per report would compile them all again (a third of a small report's time)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("benchkit", "templates"),
        autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
        # Markdown passes raw HTML through: no value may open a tag there either
        finalize=None if autoescape else _md_text)
    env.filters["cell"] = md_cell
    if not autoescape:
        env.globals["chart"] = jinja2.pass_context(_md_chart)
    return env


def _md_chart(ctx: Any, name: str) -> Any:
    """A chart in Markdown: its image line and caption. A function rather than a template
    macro, because a macro's output would pass through `_md_text` again and lose its
    image syntax; this one returns text already safe (the title and caption escaped)."""
    from benchkit.core.textsafe import MdSafe, md_text

    images, charts = ctx.get("images") or {}, ctx.get("charts") or {}
    if name not in images:
        return MdSafe("")
    chart = charts[name]
    return MdSafe(f"\n![{md_text(chart['title'])}]({images[name]})\n\n"
                  f"*{md_text(chart['caption'])}*\n")


def _md_text(value: Any) -> Any:
    """Every value printed into Markdown: no tag, link, image or autolink can form
    (benchkit.core.textsafe; result text is untrusted)."""
    from benchkit.core.textsafe import md_text

    return md_text(value)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes or newlines, no raw HTML, links
    or images (benchkit.core.textsafe)."""
    from benchkit.core.textsafe import md_cell as cell

    return cell(value)


def render_markdown(ctx: dict[str, Any], image_names: dict[str, str]) -> str:
    """The Markdown page; charts are referenced as the files named in image_names."""
    return _env(False).get_template("report.md.j2").render(**ctx, images=image_names)


def render_html(ctx: dict[str, Any]) -> str:
    """One self-contained HTML page: inline CSS and SVG, nothing fetched from anywhere."""
    from markupsafe import Markup

    inline = {name: Markup(_inline_svg(chart["svg"])) for name, chart in ctx["charts"].items()}
    return _env(True).get_template("report.html.j2").render(**ctx, inline_svg=inline)


def _inline_svg(svg: str) -> str:
    """matplotlib's SVG file made fit for inlining: no XML prolog, scales with the page."""
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return re.sub(r"<svg([^>]*?)\swidth=\"[^\"]*\"\s+height=\"[^\"]*\"",
                  r'<svg\1 role="img" preserveAspectRatio="xMinYMin meet"', svg, count=1)


@dataclass
class Written:
    """What `write_report` wrote, for the command to list."""

    paths: list[Path]


def write_report(paths: Iterable[str | Path], out: str | Path, *, markdown: bool = True,
                 html: bool = True, method: str = "roofline",
                 title: str | None = None) -> Written:
    """Write OUT.md (+ OUT-<chart>.svg) and/or OUT.html from the given result files.

    Which of the two a `--format` name stands for is `benchkit.formats`' business."""
    df, docs = load(paths)
    ctx = build_context(df, docs, method=method, title=title)
    out = Path(out)
    if out.suffix in (".md", ".html"):
        out = out.with_suffix("")
    files: dict[Path, str] = {}
    if html:
        files[out.parent / f"{out.name}.html"] = render_html(ctx)
    if markdown:
        files.update(_markdown_files(ctx, out))
    # all or nothing: a full disk leaves the previous report as it was
    return Written(paths=write_files(files, "report"))


def _markdown_files(ctx: dict[str, Any], out: Path) -> dict[Path, str]:
    """OUT.md and its charts beside it, OUT-<chart>.svg: the page first."""
    images, charts = {}, {}
    for name, chart in ctx["charts"].items():
        img = out.parent / f"{out.name}-{name}.svg"
        charts[img] = chart["svg"]
        images[name] = img.name
    return {out.parent / f"{out.name}.md": render_markdown(ctx, images), **charts}


def default_output(paths: Sequence[str | Path], output: str | None = None) -> Path:
    """Where the report goes: OUTPUT as given; inside it when it is a folder; else
    reports/<result file stem> for one result and reports/report for several."""
    files = [Path(p) for p in paths]
    name = files[0].stem if len(files) == 1 and files[0].suffix == ".json" else "report"
    if output is None:
        return Path("reports") / name
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        return Path(output) / name
    return Path(output)

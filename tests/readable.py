"""Whether a result file a run wrote is one every reader takes: the hostile-input tests of
servers and tools assert it after a case failed on a lying figure (before, one figure no
reader accepts made the whole file unreadable, its good cases with it).
"""

from __future__ import annotations

from pathlib import Path

from paths import REPO


def every_reader_reads(path: Path) -> None:
    """load_results, compare (the file against itself), the report (Markdown and HTML;
    a file of failed cases only is "nothing to report"), project and validate each read
    `path`; validate may judge the file unfit for the community data set (a test suite, a
    fake tool), never unreadable."""
    from benchkit import compare
    from benchkit.community.validate import validate_paths
    from benchkit.projection.measurements import measurements_from_results
    from benchkit.report import context, render
    from benchkit.results.frame import load_results
    from benchkit.results.io import read_result

    doc = read_result(path)
    load_results([str(path)])
    compare.render(compare.compare_results(path, path), "md")
    if any(c["status"] == "ok" for c in doc["cases"]):   # else "nothing to report" is right
        df, docs = context.load([path])
        ctx = render.build_context(df, docs)
        render.render_markdown(ctx, {})
        render.render_html(ctx)
    measurements_from_results([path])
    (verdict,) = validate_paths([path], suites_dir=REPO / "suites")
    assert verdict.doc is not None, [str(p) for p in verdict.problems]

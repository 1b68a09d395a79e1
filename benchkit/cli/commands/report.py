"""`benchkit report`: Markdown and/or HTML report from result files."""

from __future__ import annotations

import click

from benchkit.cli.output import say
from benchkit import formats


@click.command()
@click.argument("results", nargs=-1, type=click.Path(dir_okay=True, path_type=str))
@click.option("--format", "fmt", type=click.Choice(formats.names(formats.REPORT)),
              default="both",
              show_default=True, help="Markdown (with chart images beside it), one HTML file, "
                                      "or both; llama-bench-* writes PATH.json|jsonl|csv|sql|md "
                                      "as llama-bench -o would.")
@click.option("-o", "--output", "output", metavar="PATH",
              help="Output path without extension: writes PATH.md (+ PATH-*.svg) and/or "
                   "PATH.html; a folder gets <result name>.* inside. Default: "
                   "reports/<result name>.")
@click.option("--title", help="Page title. Default: 'Benchmark report: <suite>'.")
@click.option("--method", type=click.Choice(["roofline", "bandwidth"]), default="roofline",
              show_default=True, help="Projection method for the other-chips section.")
def report(results: tuple[str, ...], fmt: str, output: str | None, title: str | None,
           method: str) -> None:
    """Write a report from RESULT files (or directories of them).

    \b
    Examples:
      benchkit report results/20261122T021500Z-smollm2-3f9a1c.json
      benchkit report results/ --format html -o reports/all-runs
    """
    from benchkit.report.render import default_output

    out = default_output(results, output)
    written = formats.get(formats.REPORT, fmt).write(results, out, method=method, title=title)
    for path in written:
        say(f"wrote {path}")

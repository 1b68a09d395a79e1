"""`benchkit report`: Markdown and/or HTML report from result files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@click.argument("results", nargs=-1, type=click.Path(dir_okay=True, path_type=str))
@click.option("--format", "fmt", type=click.Choice(
                  ["md", "html", "both", "llama-bench-json", "llama-bench-jsonl",
                   "llama-bench-csv", "llama-bench-sql", "llama-bench-md"]), default="both",
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
    from benchkit.report.core import default_output, write_report

    out = default_output(results, output)
    if fmt.startswith("llama-bench-"):
        click.echo(f"wrote {_llama_bench(results, out, fmt)}")
        return
    written = write_report(results, out, fmt=fmt, method=method, title=title)
    for path in written.paths:
        click.echo(f"wrote {path}")


def _llama_bench(results: tuple[str, ...], out: Path, fmt: str) -> Path:
    """The results as llama-bench's own output format, for tools that read it."""
    from benchkit.formats import llama_bench as llama_bench_format
    from benchkit.report.core import load

    _, docs = load(results)
    path = out.with_name(out.name + llama_bench_format.extension(fmt))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(llama_bench_format.write_all(list(docs.values()), fmt), encoding="utf-8")
    return path

"""`benchkit run SUITE`: measure a suite, write a result file, print the table."""

from __future__ import annotations

import sys

import click

from benchkit.errors import BenchkitError

DEFAULT_SUITE = "suites/smollm2.yaml"


@click.command("run")
@click.argument("suite", required=False, default=DEFAULT_SUITE, metavar="[SUITE]")
@click.option("--iterations", type=int, default=None,
              help="Timed iterations per case (overrides the suite).")
@click.option("--warmup", type=int, default=None,
              help="Warmup iterations per case, discarded (overrides the suite).")
@click.option("-o", "--output-dir", default="results", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the result JSON.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json", "jsonl"]),
              default="md", show_default=True, help="Format of the table printed at the end.")
@click.option("--synthetic", is_flag=True,
              help="Replace hub models that are not downloaded by their synthetic stand-in.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr (default: when stderr is a terminal).")
def run(suite: str, iterations: int | None, warmup: int | None, output_dir: str, fmt: str,
        synthetic: bool, progress: bool | None) -> None:
    """Measure SUITE (default suites/smollm2.yaml) and write results/<run_id>.json.

    Each model is loaded once per engine configuration; each workload runs its warmup
    iterations (discarded), then the timed ones. The result file is rewritten after
    every case, so Ctrl-C keeps what was measured. Exit code 1 if any case failed.
    """
    import benchkit.engine  # noqa: F401  first: llama.cpp's libraries before numpy's (engine.py)
    from benchkit.console import format_table
    from benchkit.runner import run_suite
    from benchkit.suite import display_path, load_suite

    spec = load_suite(suite, iterations=iterations, warmup=warmup)
    try:
        outcome = run_suite(spec, output_dir, synthetic=synthetic,
                            command=["benchkit", *sys.argv[1:]], progress=progress)
    except KeyboardInterrupt:
        click.echo("interrupted: the result file keeps every finished case", err=True)
        sys.exit(130)
    click.echo(format_table(outcome.doc, fmt), nl=False)
    click.echo(f"wrote {display_path(outcome.path)}", err=True)
    if outcome.failed:
        first = outcome.failed[0]
        raise BenchkitError(
            f"{len(outcome.failed)} of {len(outcome.doc['cases'])} cases failed "
            f"(first: case {first['index']} {first['test']}: {first['error']}); "
            f"see {display_path(outcome.path)}", exit_code=1)

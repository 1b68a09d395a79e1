"""`benchkit import FILE...`: llama-bench output files as benchkit result files."""

from __future__ import annotations

import click

from benchkit.cli.output import say


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output-dir", default="results", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the result JSON files.")
@click.option("--model", "models", multiple=True, type=click.Path(dir_okay=False),
              metavar="GGUF", help="The model file the tests ran (repeatable), when the path "
                                   "in the file is not valid here: its sha256 identifies the "
                                   "model, as in benchkit's own results.")
def import_(files: tuple[str, ...], output_dir: str, models: tuple[str, ...]) -> None:
    """Import llama-bench output (-o json, jsonl, csv or sql) as benchkit results.

    Each file becomes one result in OUTPUT_DIR (one per machine and build when a file
    holds several), marked as imported, with the build, backend, devices and settings the
    file carries; `report`, `compare`, `project` and `submit` take it like a run's.
    The written paths are printed on stdout.
    """
    from benchkit.formats.llama_bench_import import import_files
    from benchkit.run.suite import display_path

    for source, target, n in import_files(files, output_dir, models):
        say(f"imported {source.name}: {n} test{'s' if n != 1 else ''}", err=True)
        say(display_path(target))

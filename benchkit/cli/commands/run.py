"""`benchkit run SUITE`: measure a suite, write a result file, print the table."""

from __future__ import annotations

import sys

import click

from benchkit.cli.output import say
from benchkit import formats
from benchkit.core.errors import BenchkitError

DEFAULT_SUITE = "suites/smollm2.yaml"


@click.command("run")
@click.argument("suite", required=False, default=DEFAULT_SUITE, metavar="[SUITE]")
@click.option("--iterations", type=int, default=None,
              help="Timed iterations per case (overrides the suite).")
@click.option("--warmup", default=None, metavar="N|auto",
              help="Warmup iterations per case, discarded (overrides the suite); auto: "
                   "warm until the last 3 agree within 2%, at most 10.")
@click.option("-o", "--output-dir", default="results", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the result JSON.")
@click.option("--format", "fmt", type=click.Choice(formats.names(formats.RUN)),
              default="md", show_default=True,
              help="Format of the table printed at the end; llama-bench-* prints what "
                   "llama-bench -o json|jsonl|csv|sql|md would.")
@click.option("--synthetic", is_flag=True,
              help="Replace hub models that are not downloaded by their synthetic stand-in.")
@click.option("--engine", "engines", multiple=True, metavar="KIND",
              help="Run on this engine instead of the suite's engines (repeatable): "
                   "llama-cpp-python, llama-bench, llama-server, openai, ollama. "
                   "`benchkit engines list` shows what is available here.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None, metavar="RESULT",
              help="Continue an interrupted or crashed run into its result file: finished "
                   "cases are kept, the rest are measured.")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="Run each engine configuration in a worker process, so that a crash in "
                   "llama.cpp fails its case instead of ending the run.")
@click.option("--case-timeout", type=click.FloatRange(min=1), default=3600.0,
              show_default=True, metavar="SECONDS",
              help="Stop a case that runs longer and record it failed (with --isolate).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr (default: when stderr is a terminal).")
def run(suite: str, iterations: int | None, warmup: int | None, output_dir: str, fmt: str,
        synthetic: bool, engines: tuple[str, ...], resume: str | None, isolate: bool,
        case_timeout: float, progress: bool | None) -> None:
    """Measure SUITE (default suites/smollm2.yaml) and write results/<run_id>.json.

    Each model is opened once per engine configuration (in process, by llama-bench, or by
    a server benchkit starts or one already running); each workload runs its warmup
    iterations (discarded), then the timed ones. The result file is rewritten after
    every case, so Ctrl-C keeps what was measured. Exit code 1 if any case failed.
    """
    import benchkit.engines.llama_cpp.native  # noqa: F401  first: llama.cpp before numpy (see there)
    from benchkit.core.interrupts import Interrupted
    from benchkit.run.runner import run_suite
    from benchkit.run.suite import display_path, load_suite

    if warmup is not None and warmup != "auto":
        try:
            warmup = int(warmup)
        except ValueError:
            raise BenchkitError(f"{warmup}: must be a non-negative integer or auto",
                                field="--warmup") from None
    spec = load_suite(suite, iterations=iterations, warmup=warmup, engines=list(engines) or None)
    try:
        outcome = run_suite(spec, output_dir, synthetic=synthetic,
                            command=["benchkit", *sys.argv[1:]], progress=progress,
                            isolate=isolate, case_timeout_s=case_timeout, resume=resume)
    except Interrupted as exc:
        say(f"interrupted ({exc.name}): the result file keeps every finished case "
            f"and the one in progress, marked partial; continue with --resume",
            err=True)
        sys.exit(exc.exit_code)
    # model names and errors are result text: `say` lets no escape sequence through
    say(formats.get(formats.RUN, fmt).text([outcome.doc]), nl=False)
    say(f"wrote {display_path(outcome.path)}", err=True)
    if outcome.failed:
        first = outcome.failed[0]
        raise BenchkitError(
            f"{len(outcome.failed)} of {len(outcome.doc['cases'])} cases failed "
            f"(first: case {first['index']} {first['test']}: {first['error']}); "
            f"see {display_path(outcome.path)}", exit_code=1)

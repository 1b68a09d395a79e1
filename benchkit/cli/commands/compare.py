"""`benchkit compare`: two results, case by case, with a significance test."""

from __future__ import annotations

import sys

import click

from benchkit.cli.output import say


@click.command()
@click.argument("base", type=click.Path(path_type=str))
@click.argument("new", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md",
              show_default=True)
@click.option("--stat", type=click.Choice(["median", "mean"]), default="median",
              show_default=True, help="Central figure of each side (the ratio uses it).")
@click.option("--test", "test", type=click.Choice(["welch", "mannwhitney"]), default="welch",
              show_default=True, help="Significance test over the per-iteration tok/s.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True, help="Significance level.")
@click.option("--min-change", type=click.FloatRange(min=0), default=10.0, show_default=True,
              metavar="PCT", help="Smallest change, in percent, called slower or faster.")
@click.option("--ignore-setting", "ignore", multiple=True, metavar="NAME",
              help="Engine setting not used to match cases (e.g. n_threads, to compare a "
                   "run against one with other threads). Repeatable.")
@click.option("--fail-above", type=click.FloatRange(min=0), metavar="PCT",
              help="Exit with status 1 when a significant slow-down exceeds PCT percent.")
def compare(base: str, new: str, fmt: str, stat: str, test: str, alpha: float,
            min_change: float, ignore: tuple[str, ...], fail_above: float | None) -> None:
    """Compare result NEW against result BASE, case by case.

    \b
    Examples:
      benchkit compare results/before.json results/after.json
      benchkit compare before.json after.json --fail-above 5      # for CI
    """
    from benchkit.compare import compare_results, regression_text, render
    from benchkit.core.errors import BenchkitError

    result = compare_results(base, new, stat=stat, test=test, alpha=alpha,
                             min_change=min_change, ignore=ignore)
    say(render(result, fmt), nl=False)
    if not result.pairs:
        raise BenchkitError("no case of NEW matches a case of BASE: nothing was compared "
                            "(reasons listed above)", file=new)
    if fail_above is not None:
        bad = result.regressions(fail_above)
        for p in bad:
            say(regression_text(p, fail_above), err=True)
        if bad:
            sys.exit(1)

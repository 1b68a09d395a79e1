"""The `benchkit` command line: parses arguments and calls the library, nothing more.

Each command lives in `benchkit/commands/<name>.py` and is imported only when it is
used, so `benchkit --help` stays fast and a command's heavy imports (pandas,
matplotlib, llama.cpp) are paid only by the command that needs them.
"""

from __future__ import annotations

import importlib
import io
import sys

import click

from benchkit.core.version import __version__
from benchkit.core.errors import BenchkitError
from benchkit.core.textsafe import terminal

# name -> "module:attribute"; the order here is the order `--help` lists them in.
COMMANDS = {
    "run": "benchkit.cli.commands.run:run",
    "project": "benchkit.cli.commands.project:project",
    "plan": "benchkit.cli.commands.plan:plan",
    "models": "benchkit.cli.commands.models:models",
    "report": "benchkit.cli.commands.report:report",
    "compare": "benchkit.cli.commands.compare:compare",
    "submit": "benchkit.cli.commands.community:submit",
    "validate": "benchkit.cli.commands.community:validate",
    "site": "benchkit.cli.commands.community:site",
    "engines": "benchkit.cli.commands.engines:engines",
    "import": "benchkit.cli.commands.import_:import_",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="benchkit")
def cli() -> None:
    """Benchmark local LLM inference on llama.cpp and project the results onto other chips.

    \b
    Typical flow:
      benchkit run suites/smollm2.yaml          measure, write results/*.json
      benchkit report results/<file>.json       Markdown and HTML report
      benchkit project --anchor m4max --tg 198 --model-gb 0.67
                                                projections for every chip
    """


def main() -> None:
    """Entry point: runs the CLI and turns BenchkitError into one line and an exit code."""
    try:
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except BenchkitError as exc:   # one line, whatever text from a file the message quotes
        click.echo(f"error: {terminal(exc, one_line=True)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:   # a usage error quotes what was typed: made safe
        shown = io.StringIO()
        exc.show(file=shown)
        click.echo(terminal(shown.getvalue()), err=True, nl=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

"""`benchkit engines list` and `benchkit engines build`: what can measure here, and the
llama.cpp tools built from the source of the installed llama-cpp-python."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import click

from benchkit.cli.output import say
from benchkit.core.errors import BenchkitError

# The Python module an engine needs, for engines that do not say so themselves (an engine
# class may set `requires`, or `availability()`; the tools it runs are its `tools`).
_REQUIRES = {"llama-cpp-python": "llama_cpp", "openai": "httpx", "ollama": "httpx"}
_NEEDS_URL = ("openai", "ollama")


@click.group("engines")
def engines() -> None:
    """The engines benchkit can measure, and the llama.cpp tools some of them run."""


@engines.command("build")
@click.option("--source", type=click.Path(exists=True, file_okay=False), default=None,
              help="An unpacked llama-cpp-python source distribution or llama.cpp checkout "
                   "(default: the installed version's sdist, downloaded once with pip).")
@click.option("--cmake-arg", "cmake_args", multiple=True, metavar="ARG",
              help="Extra CMake argument (repeatable), e.g. --cmake-arg=-DCMAKE_CUDA_ARCHITECTURES=90.")
@click.option("--force", is_flag=True, help="Build again even when a cached build exists.")
@click.option("-j", "--jobs", type=int, default=None, help="Parallel compile jobs (default: all cores).")
def build(source: str | None, cmake_args: tuple[str, ...], force: bool, jobs: int | None) -> None:
    """Build llama-bench, llama-server and llama-perplexity from the llama.cpp source vendored
    in the installed llama-cpp-python, with the backend its wheel was built with.

    Cached under ${BENCHKIT_CACHE:-~/.cache/benchkit}/tools/<commit>-<backend>/bin/, so it
    happens once per machine; prints that folder on stdout.
    """
    from benchkit.engines.llama_cpp.build import build_tools

    result = build_tools(source=source, cmake_args=list(cmake_args), force=force, jobs=jobs)
    say(result.bin)


@engines.command("list")
def list_() -> None:
    """Every engine benchkit knows: usable here or why not, the tools it runs (path and
    llama.cpp build), and its settings with their defaults."""
    from benchkit import engines as registry

    for kind in registry.kinds():
        say(describe(kind, registry))
        say("")


def describe(kind: str, registry: Any) -> str:
    """The block `engines list` prints for one engine kind."""
    from benchkit.engines.base import iter_fields

    try:
        cls = registry.engine_class(kind)
    except ImportError as exc:
        return f"{kind}\n  usable: no (its module does not import: {exc})"
    lines = [f"{kind}: {cls.layer}"]
    tool_lines, problems = _tools(cls)
    problems += _requirement(cls)
    hook = getattr(cls, "availability", None)
    if callable(hook):
        reason = hook()
        if reason:
            problems.append(reason)
    note = " (needs `url` and `model` in the suite: a server already running)" \
        if kind in _NEEDS_URL and not problems else ""
    lines.append(f"  usable: {'no: ' + '; '.join(problems) if problems else 'yes'}{note}")
    lines.append(f"  workloads: {', '.join(sorted(cls.workloads))}")
    lines.extend(tool_lines)
    lines.append("  settings:")
    for name, default, help_text in iter_fields(cls.Options):
        lines.append(f"    {name} = {_show(default)}: {help_text}")
    return "\n".join(lines)


def _tools(cls: Any) -> tuple[list[str], list[str]]:
    """One line per tool (path and build), and what is missing."""
    from benchkit.engines.llama_cpp.build import find_tool, tool_version

    lines, problems = [], []
    for name in getattr(cls, "tools", ()):
        try:
            path = find_tool(name)
            v = tool_version(path)
        except BenchkitError as exc:
            lines.append(f"  {name}: missing")
            problems.append(str(exc))
            continue
        built = f", built with {v['compiler']} for {v['target']}" if v.get("compiler") else ""
        release = f"{v['version']}, " if v.get("version") != str(v["build_number"]) else ""
        lines.append(f"  {name}: {path} (llama.cpp {release}build {v['build_number']}, commit "
                     f"{v['build_commit']}{built})")
    return lines, problems


def _requirement(cls: Any) -> list[str]:
    module = getattr(cls, "requires", None) or _REQUIRES.get(cls.kind)
    if module and importlib.util.find_spec(module) is None:
        return [f"the Python module {module} is not installed"]
    return []


def _show(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return repr(value) if isinstance(value, str) else str(value)

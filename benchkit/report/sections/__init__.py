"""Report sections beyond the core page, one module each, registered where they are defined.

A section is a function `context(df, docs, configs)` decorated with `@section(NAME,
order=N)`: it returns the section's data, or None when the results hold nothing for it.
NAME is also its templates' name (`templates/sections/NAME.md.j2` and `NAME.html.j2`);
the page prints the sections by ascending `order`. Data may carry `charts`: name ->
{title, caption, svg}, drawn like the core charts and printed with the templates'
`chart(name)`.

Every module of this package is imported when the sections are first asked for, so
adding a section is one module and its two templates: no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from benchkit.core.errors import BenchkitError

ContextFn = Callable[[Any, dict, list], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Section:
    """A registered section: its name (and templates'), its place on the page, its data."""

    name: str
    order: int
    context: ContextFn


# name -> Section, filled by @section as the modules of this package are imported
REGISTRY: dict[str, Section] = {}


def section(name: str, *, order: int) -> Callable[[ContextFn], ContextFn]:
    """Register the decorated function as the context of section `name`.

    A name is one section: a second module claiming it is refused, so that two sections
    cannot silently share (and overwrite) one pair of templates."""
    def register(fn: ContextFn) -> ContextFn:
        known = REGISTRY.get(name)
        if known is not None and known.context.__module__ != fn.__module__:
            raise BenchkitError(f"report section {name!r} is registered twice "
                                f"({known.context.__module__} and {fn.__module__})",
                                field="section")
        REGISTRY[name] = Section(name=name, order=order, context=fn)
        return fn
    return register


def discover() -> None:
    """Import every module of this package, so each registers its sections."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


def names() -> list[str]:
    """The registered sections' names, in page order."""
    discover()
    return [s.name for s in sorted(REGISTRY.values(), key=lambda s: (s.order, s.name))]


def get(name: str) -> Section:
    """The section called `name`; an unknown name is refused with the registered ones."""
    discover()
    if name not in REGISTRY:
        raise BenchkitError(f"unknown report section {name!r} (registered: "
                            f"{', '.join(names())})", field="section")
    return REGISTRY[name]


def build(df: Any, docs: dict, configs: list,
          only: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The sections the results support, in page order, and every chart they drew.

    `only` limits the page to the sections named (each checked against the registry)."""
    chosen = [get(name) for name in (names() if only is None else only)]
    sections, charts = [], {}
    for sec in sorted(chosen, key=lambda s: (s.order, s.name)):
        data = sec.context(df, docs, configs)
        if data is None:
            continue
        charts.update(data.get("charts") or {})
        sections.append({"name": sec.name, "data": data})
    return sections, charts

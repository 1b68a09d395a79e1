"""Workload kinds: one module each, found by the suite keys it owns.

A workload module under benchkit/workloads/ declares the suite keys it owns (SUITE_KEYS),
their schema (SCHEMA), `parse` and `main_keys`, and its place among the others (ORDER: the
order of the suite schema's alternatives and of error messages). The registry finds every
such module, so adding a workload is one new module; engines opt in by listing its kind in
`Engine.workloads`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.workloads.base import Workload

@lru_cache(maxsize=1)
def modules() -> tuple[ModuleType, ...]:
    """Every workload module under benchkit/workloads/ (one with SUITE_KEYS), by ORDER."""
    found = []
    for info in pkgutil.walk_packages(__path__, __name__ + "."):
        module = importlib.import_module(info.name)
        if hasattr(module, "SUITE_KEYS"):
            found.append(module)
    return tuple(sorted(found, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)))


def entry_schema() -> dict[str, Any]:
    """The JSON Schema of one `workloads:` entry: the union of every module's keys."""
    props: dict[str, Any] = {}
    for mod in modules():
        props.update(mod.SCHEMA)
    names = ", ".join(f"{{{k}: ...}}" for mod in modules() for k in mod.main_keys())
    return {"type": "object", "additionalProperties": False, "minProperties": 1,
            "properties": props, "x-error": f"must be one of {names}"}


def parse(entry: dict[str, Any], *, file: str | None = None, field: str | None = None,
          line: int | None = None) -> list[Workload]:
    """The tests one checked `workloads:` entry stands for."""
    owners = [mod for mod in modules() if any(k in entry for k in mod.main_keys())]
    if len(owners) != 1:
        keys = ", ".join(sorted(entry))
        raise BenchkitError(f"{entry_schema()['x-error']}: one workload per entry, not "
                            f"{keys}", file=file, field=field, line=line)
    mod = owners[0]
    stray = [k for k in entry if k not in mod.SUITE_KEYS]
    if stray:
        raise BenchkitError(f"{stray[0]!r} does not apply to a {mod.main_keys()[0]} workload",
                            file=file, field=f"{field}.{stray[0]}" if field else stray[0],
                            line=line)
    located = getattr(mod, "parse_located", None)  # modules that resolve paths or point errors
    return located(entry, file=file, field=field, line=line) if located else mod.parse(entry)


__all__ = ["Workload", "entry_schema", "parse", "modules"]

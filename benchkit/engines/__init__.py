"""The engines benchkit can measure, by the name a suite gives them.

Each engine is one module (see `benchkit.engines.base` for the contract): a class with a
`kind` (the suite's name for it) and an `order` (its place in listings and DataFrame
columns). The registry finds every such class in the modules under `benchkit/engines/`, so
adding an engine is one new module. Engine modules import their heavy dependencies only when
they open a model, so finding them loads no llama.cpp, MLX or HTTP client.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import lru_cache
from typing import Any

from benchkit.engines.base import Engine, Options
from benchkit.core.errors import BenchkitError

DEFAULT = "llama-cpp-python"


@lru_cache(maxsize=1)
def registry() -> dict[str, type[Engine]]:
    """Every engine class under benchkit/engines/, by kind, in the classes' `order`.

    A module that cannot be imported (an engine being written, a missing optional
    dependency imported at the top) is passed over: the other engines stay usable.
    """
    found: dict[str, type[Engine]] = {}
    for info in pkgutil.walk_packages(__path__, __name__ + "."):
        if not _defines_engine(info.name):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Engine)
                    and obj.__module__ == module.__name__ and "kind" in vars(obj)):
                found[obj.kind] = obj
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def _defines_engine(name: str) -> bool:
    """Whether a module's source subclasses Engine: only those are imported, so that the
    modules engines use (llama.cpp's bindings among them) load when a model is opened."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec else None
    if not origin or not origin.endswith(".py"):
        return False
    with open(origin, encoding="utf-8") as f:
        return "(Engine):" in f.read()


def kinds() -> list[str]:
    """The registered engine kinds, in order: what a suite's `kind:` and `--engine` accept."""
    return list(registry())


def engine_class(kind: str) -> type[Engine]:
    """The Engine subclass for a suite's `kind`; one error line for an unknown one."""
    cls = registry().get(kind)
    if cls is None:
        raise BenchkitError(f"unknown engine {kind!r} (known: {', '.join(kinds())})",
                            field="engines")
    return cls


def available() -> list[type[Engine]]:
    """Every registered engine class, in order."""
    return list(registry().values())


def setting_names() -> list[str]:
    """Every engine's column settings, each once, in registry order: the DataFrame's engine
    columns (after `engine`, the kind)."""
    names: list[str] = []
    for cls in available():
        for f in cls.Options.fields():
            if f.metadata["column"] and f.name not in names:
                names.append(f.name)
    return names


def shared_schema() -> dict[str, Any]:
    """The JSON Schema of the suite's `engine:` block: any engine's setting, each taken by
    the engines that know it."""
    props: dict[str, Any] = {}
    for cls in available():
        for name in cls.Options.names():
            props.setdefault(name, cls.Options.value_schema(name))
    return {"type": "object", "additionalProperties": False, "properties": props,
            "x-error": "must be a mapping of engine settings"}


def entry_schema(cls: type[Engine]) -> dict[str, Any]:
    """The JSON Schema of one `engines:` entry of kind `cls` written as a mapping."""
    props = {name: cls.Options.value_schema(name) for name in cls.Options.names()}
    props["kind"] = {"const": cls.kind}
    return {"type": "object", "additionalProperties": False, "required": ["kind"],
            "properties": props}


__all__ = ["Engine", "Options", "DEFAULT", "registry", "kinds", "engine_class", "available",
           "setting_names", "shared_schema", "entry_schema"]

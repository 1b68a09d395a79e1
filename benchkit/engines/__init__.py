"""The engines benchkit can measure, by the name a suite gives them.

Each engine is one module (see `benchkit.engines.base` for the contract). Modules are
imported when first asked for and import their heavy dependencies only when they open a
model, so `benchkit run --help`, reading a suite and validating a result load no llama.cpp.
Adding an engine is one new module and one line in KINDS.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchkit.engines.base import Engine, Options
from benchkit.core.errors import BenchkitError

DEFAULT = "llama-cpp-python"

# suite name -> "module:class"
KINDS = {
    "llama-cpp-python": "benchkit.engines.llama_cpp.in_process:LlamaCppPython",
    "llama-bench": "benchkit.engines.llama_cpp.bench:LlamaBench",
    "llama-server": "benchkit.engines.llama_cpp.server:LlamaServer",
    "openai": "benchkit.engines.http.openai:OpenAICompatible",
    "ollama": "benchkit.engines.http.ollama:Ollama",
    "mlx": "benchkit.engines.mlx.engine:MLX",
}


def engine_class(kind: str) -> type[Engine]:
    """The Engine subclass for a suite's `kind`; one error line for an unknown one."""
    target = KINDS.get(kind)
    if target is None:
        raise BenchkitError(f"unknown engine {kind!r} (known: {', '.join(KINDS)})",
                            field="engines")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def available() -> list[type[Engine]]:
    """Every engine class whose module imports (all of them, unless one is being written)."""
    out = []
    for kind in KINDS:
        try:
            out.append(engine_class(kind))
        except ImportError:
            continue
    return out


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


__all__ = ["Engine", "Options", "KINDS", "DEFAULT", "engine_class", "available",
           "setting_names", "shared_schema", "entry_schema"]

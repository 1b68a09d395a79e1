"""Read and check a suite YAML, and expand it into the cases a run measures.

A suite names models, engines, engine settings and workloads. `engines:` lists the ways of
running each model (default: llama-cpp-python in process); `engine:` holds settings shared
by every engine that knows them, and an `engines:` entry written as a mapping adds its
own. A list value sweeps that setting: the run measures the cartesian product, as
llama-bench does with comma-separated values. Checking is a JSON Schema
(`schemas/suite.schema.json`, completed from each engine's Options and each workload
module's keys; unknown keys refused) plus the YAML node marks, so that every error names
the file, the field and the line: `suites/x.yaml:12 [workloads.0.tg]: must be a positive
integer`. Nothing here loads llama.cpp.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from benchkit import engines as engine_registry
from benchkit import workloads as workload_registry
from benchkit.community.scrub import scrub_home
from benchkit.engines.base import Engine
from benchkit.core.errors import BenchkitError
from benchkit.workloads.base import Workload

DEFAULT_WARMUP = 1
DEFAULT_ITERATIONS = 5


@dataclass(frozen=True)
class ModelSpec:
    """One entry of `models:`, not yet resolved to a local file (see benchkit.models.ref)."""

    kind: str                      # path | package | hf
    ref: str                       # the value as written
    field: str                     # "models.0": where errors point
    suite_file: str                # as displayed and recorded
    suite_dir: str = "."           # the suite file's real folder
    line: int | None = None
    name: str | None = None
    sha256: str | None = None
    revision: str | None = None
    standin: dict[str, Any] | None = None


@dataclass
class Suite:
    """A checked suite: models x engine configurations x workloads."""

    name: str
    description: str
    file: str
    models: list[ModelSpec]
    engines: list[Engine]
    workloads: list[Workload]
    warmup: int
    iterations: int
    raw: dict[str, Any] = field(default_factory=dict)

    def as_run(self) -> dict[str, Any]:
        """The `suite` object of a result: what was asked, with overrides applied."""
        doc = dict(self.raw)
        doc.update(name=self.name, description=self.description, file=self.file,
                   warmup=self.warmup, iterations=self.iterations)
        doc["configurations"] = [e.settings() for e in self.engines]
        doc["tests"] = [w.test for w in self.workloads]
        return doc

    @property
    def n_cases(self) -> int:
        return len(self.models) * len(self.engines) * len(self.workloads)


def load_suite(path: str | os.PathLike[str], *, iterations: int | None = None,
               warmup: int | None = None, engines: list[str] | None = None) -> Suite:
    """Read, check and expand a suite file; `iterations` / `warmup` / `engines` (kinds, as
    `--engine` gives them) override the file's.

    Overrides are checked against the same schema as the file's own values, so
    `--iterations 0` fails the way `iterations: 0` does.
    """
    file = display_path(path)
    root, data = _parse_yaml(Path(path), file)
    _check(data, root, file)
    overrides = {"iterations": iterations, "warmup": warmup}
    for key, value in overrides.items():
        if value is not None:
            _check_override(key, value)
    if engines:
        for kind in engines:
            if kind not in engine_registry.kinds():
                raise BenchkitError(f"unknown engine {kind!r} (known: "
                                    f"{', '.join(engine_registry.kinds())})", field="--engine")
        data = {**data, "engines": list(engines)}
    return Suite(
        name=data["name"],
        description=data.get("description", ""),
        file=file,
        models=[_model_spec(m, i, file, root, Path(path).resolve().parent)
                for i, m in enumerate(data["models"])],
        engines=expand_engines(data.get("engine") or {}, data.get("engines"), file, root),
        workloads=_workloads(data["workloads"], file, root),
        warmup=warmup if warmup is not None else data.get("warmup", DEFAULT_WARMUP),
        iterations=iterations if iterations is not None else data.get("iterations",
                                                                      DEFAULT_ITERATIONS),
        raw=scrub_home(data),
    )


def _workloads(entries: list[Any], file: str, root: Any) -> list[Workload]:
    """Every test of the suite's `workloads:`, each under a name no other test has.

    The test name is what a case is known by: `--resume` skips a test it finds done and
    `compare` pairs cases by it, so two different workloads under one name (two serve
    entries that differ only in lengths, both `serve-c1`) would have one skipped or
    dropped. Such a suite is refused, naming the entry and what differs (the same
    workload twice is one test measured twice, as before)."""
    out: list[Workload] = []
    seen: dict[str, tuple[int, Workload]] = {}
    for i, item in enumerate(entries):
        line = line_of(root, ["workloads", i])
        for w in workload_registry.parse(item, file=file, field=f"workloads.{i}", line=line):
            if w.test in seen and seen[w.test][1].to_dict() != w.to_dict():
                j, other = seen[w.test]
                raise BenchkitError(f"a second test named {w.test!r} (workloads.{j} has that "
                                    f"name{_difference(other, w)}): a case is known by its "
                                    "test name, so one would be skipped by --resume and "
                                    "dropped by compare; make them differ in a setting the "
                                    "name shows, or run them in separate suites",
                                    file=file, field=f"workloads.{i}", line=line)
            seen[w.test] = (i, w)
            out.append(w)
    return out


def _difference(a: Workload, b: Workload) -> str:
    """`, with prompt_tokens 128, not 512`: the first setting two workloads differ in."""
    da, db = a.to_dict(), b.to_dict()
    derived = ("n_prompt", "n_gen")        # what a workload's own settings imply: last
    for key in [*(k for k in dict.fromkeys([*da, *db]) if k not in derived), *derived]:
        if da.get(key) != db.get(key):
            shown = [json.dumps(v, default=str)[:60] for v in (da.get(key), db.get(key))]
            return f", with {key} {shown[0]}, not {shown[1]}"
    return ""


def expand_engines(shared: dict[str, Any], entries: list[Any] | None, file: str | None = None,
                   root: Any = None) -> list[Engine]:
    """Every engine configuration: for each `engines:` entry (default llama-cpp-python), the
    shared settings it knows overlaid with its own, then the cartesian product of the
    swept ones."""
    import jsonschema

    out: list[Engine] = []
    for i, entry in enumerate(entries or [engine_registry.DEFAULT]):
        kind = entry if isinstance(entry, str) else entry["kind"]
        where = ["engines", i] if entries else []
        try:
            cls = engine_registry.engine_class(kind)
        except BenchkitError as exc:
            raise BenchkitError(exc.message, file=file, field=".".join(map(str, where)),
                                line=line_of(root, where)) from None
        own = {} if isinstance(entry, str) else {k: v for k, v in entry.items() if k != "kind"}
        errors = list(jsonschema.Draft202012Validator(
            engine_registry.entry_schema(cls)).iter_errors({"kind": kind, **own}))
        if errors:
            sub, message = _explain(errors[0])
            path = where + sub
            raise BenchkitError(message, file=file, field=".".join(map(str, path)),
                                line=line_of(root, path))
        values = {**{k: v for k, v in shared.items() if k in cls.Options.names()}, **own}
        axes = []
        for f in cls.Options.fields():
            axes.append(cls.Options.sweep_values(f.name, values.get(f.name, f.default)))
        names = cls.Options.names()
        out.extend(cls(cls.Options(**dict(zip(names, combo))))
                   for combo in itertools.product(*axes))
    return out


def display_path(path: str | os.PathLike[str]) -> str:
    """The path to print and record: relative to the working folder when inside it.

    Absolute paths would leak the user's home folder into result files.
    """
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return scrub_home(str(p))


# --- parsing and checking ---------------------------------------------------------------


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The suite JSON Schema: the package's file, completed from the engines' settings and
    the workload modules' keys (so that neither is copied into it)."""
    text = resources.files("benchkit").joinpath("schemas/suite.schema.json").read_text("utf-8")
    doc = json.loads(text)
    doc["$defs"]["engine"] = engine_registry.shared_schema()
    doc["$defs"]["workload"] = workload_registry.entry_schema()
    kinds = engine_registry.kinds()
    doc["$defs"]["engine_entry"] = {
        "anyOf": [{"enum": kinds},
                  {"type": "object", "required": ["kind"],
                   "properties": {"kind": {"enum": kinds}}}],
        "x-error": f"must be an engine name ({', '.join(kinds)}) or {{kind: NAME, ...}}"}
    return doc


def _parse_yaml(path: Path, file: str) -> tuple[Any, Any]:
    """The YAML node tree (for line numbers) and the plain data, or one error line."""
    import yaml

    from benchkit.core.safeio import MAX_SUITE_BYTES, read_bounded, yaml_load_bounded

    # bounded: a regular file of at most 1 MiB, nesting and aliases within budgets
    text = read_bounded(path, MAX_SUITE_BYTES, "suite file", file)
    try:
        root, data = yaml_load_bounded(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchkitError(f"not valid YAML: {problem}", file=file,
                            line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise BenchkitError("a suite must be a YAML mapping with name:, models: and workloads:",
                            file=file, line=1)
    _check_duplicates(root, file)
    return root, data


def _check_duplicates(node: Any, file: str, path: str = "") -> None:
    """YAML silently keeps the last of two equal keys; a suite with one is a mistake."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            here = f"{path}.{name}" if path else name
            if name in seen:
                raise BenchkitError("duplicate key", file=file, field=here,
                                    line=key.start_mark.line + 1)
            seen.add(name)
            _check_duplicates(value, file, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, file, f"{path}.{i}" if path else str(i))


def _check(data: dict[str, Any], root: Any, file: str) -> None:
    """Validate against the schema; report the first problem in file order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = [(*_explain(e), e.validator == "required") for e in validator.iter_errors(data)]
    if not problems:
        return
    # first in file order; on one line an unknown key (often a typo) before a missing one
    located = [(p, m, line_of(root, p), req) for p, m, req in problems]
    located.sort(key=lambda t: (t[2] or 0, t[3], len(t[0])))
    path, message, line, _ = located[0]
    raise BenchkitError(message, file=file, field=".".join(map(str, path)) or None, line=line)


def _explain(err: Any) -> tuple[list[Any], str]:
    """The field path and a message a user can act on, for one schema error."""
    path, message, _ = _explain_rec(err)
    return path, message


def _explain_rec(err: Any) -> tuple[list[Any], str, bool]:
    """(path, message, specific): `specific` when the message is more than a generic one."""
    import jsonschema

    path = list(err.absolute_path)
    schema_ = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties":
        known = sorted(schema_.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in known)
        return (path + extra[:1], f"unknown key {extra[0]!r} (known keys: {', '.join(known)})",
                True)
    if err.validator in ("anyOf", "oneOf") and err.context:
        tries = [e for e in err.context if not (e.validator == "type" and not e.relative_path)]
        if tries:
            sub = _explain_rec(jsonschema.exceptions.best_match(tries))
            if sub[2]:
                return sub
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        if "x-error" not in schema_ or not path:
            return path, f"missing required key {missing[0]!r}", False
    if err.validator == "type" and err.validator_value == "object":
        return path, "must be a mapping", True
    if "x-error" in schema_:
        return path, schema_["x-error"], True
    return path, err.message, False


def line_of(root: Any, path: list[Any]) -> int | None:
    """The 1-based YAML line of the node at `path` (the key's line for a mapping entry)."""
    import yaml

    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                return line
            node, line = match[1], match[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _check_override(key: str, value: int) -> None:
    """Check a command-line override with the schema of the suite key it replaces."""
    import jsonschema

    sub = dict(schema()["properties"][key])
    sub["$defs"] = schema()["$defs"]
    errors = list(jsonschema.Draft202012Validator(sub).iter_errors(value))
    if errors:
        _, message = _explain(errors[0])
        raise BenchkitError(f"{value}: {message}", field=f"--{key}")


def _model_spec(entry: dict[str, Any], index: int, file: str, root: Any,
                suite_dir: Path) -> ModelSpec:
    kind = next(k for k in ("path", "package", "hf") if k in entry)
    return ModelSpec(kind=kind, ref=entry[kind], field=f"models.{index}.{kind}", suite_file=file,
                     suite_dir=str(suite_dir),
                     line=line_of(root, ["models", index, kind]), name=entry.get("name"),
                     sha256=entry.get("sha256", "").lower() or None,
                     revision=entry.get("revision"), standin=entry.get("standin"))


def normalize_engine_value(key: str, value: Any) -> Any:
    """flash_attn: YAML reads on/off as booleans; record the words llama.cpp uses."""
    if key == "flash_attn" and isinstance(value, bool):
        return "on" if value else "off"
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]

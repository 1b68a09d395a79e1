"""The result file: one JSON document per `benchkit run`, versioned, and its typed objects.

Format history (bump SCHEMA_VERSION and add a line for every change readers must know):

- 1 (benchkit 0.1.0): first format. Top level: format, schema_version, run_id, status
  (running | complete | interrupted | failed), partial, started_at, finished_at,
  benchkit_version, command, environment, suite, cases. Each case: index, status
  (ok | failed), error, model, engine, test, workload, warmup, load, placement,
  iterations (one entry per timed iteration, each with tokens, seconds, tps),
  summary (n, tps_mean, tps_median, tps_stdev, tps_min, tps_max, tps_cv,
  tps_ci95_low, tps_ci95_high), warnings.
  Optional fields written by `benchkit run` 0.1.0 (readers must not require them):
  environment.devices (ggml's device registry: name, description, type, memory_bytes);
  suite.synthetic (the --synthetic flag), suite.configurations, suite.tests;
  model.file, model.preset, model.standin_for (the hub ref a synthetic stand-in
  replaced); engine.n_ctx is the context asked of llama.cpp, placement.n_ctx the one it
  made; placement.gpu_offload_supported, placement.note; for chat, iterations carry
  n_prompt, n_generated, ttft_s, decode_tps, total_s, token_latencies_s (tokens =
  n_generated - 1 over seconds = first to last token) and summary carries
  ttft_median_s, ttft_mean_s, total_median_s, token_latency_median_s.

- 2 (benchkit 0.2.0): engines. Every case names its engine: `engine.kind`
  (llama-cpp-python | llama-bench | llama-server | openai | ollama) beside that engine's
  settings, and `engine_info` holds what the engine said about itself (version, build,
  backend, server URL, the model a server serves, `layer`: what kind of engine it is).
  Case status may be `unsupported` (the engine cannot run that workload; `error` says
  why) and `partial` (a case cut short: its finished iterations are kept). Each
  iteration names the clock of its figure: `clock` = client (benchkit's monotonic clock
  in the measuring process), tool (the tool's own samples, e.g. llama-bench's
  samples_ns) or server (the server's own timings); HTTP engines keep the client's
  figures beside the server's (`client_seconds`, `client_tps`, `server_seconds`,
  `server_tps`). Workloads may carry `depth` (tokens in the KV cache before the timed
  part; test names `tg128 @ d4096`). `environment.versions.llama_cpp_python` may be
  absent (results imported from other tools).
  Version 1 files are upgraded on read (`upgrade`): their cases ran on llama-cpp-python
  in process and their figures came from benchkit's own clock.

Rules kept by every version:
- The file is rewritten atomically after every case, so a crash or Ctrl-C loses nothing
  already measured; until the run ends `partial` is true and `status` says why.
- Raw values are kept (every iteration), summaries are derived from them and can be
  recomputed; readers check `format` and `schema_version` before mixing results.
- No host name, user name or home path is ever written.

The JSON Schema of version N is `benchkit/schemas/result-vN.schema.json`; a file is checked
against the schema of its own version, then upgraded (`benchkit.results.io.read_result`).

The typed objects: `Run` (the document), `Case`, `Iteration` and `Summary` are frozen
dataclasses, as pyperf's Run and Benchmark are: readers ask `case.summary.tps_median`
rather than walking dicts, and nothing a reader holds can be changed under another. Every
key a version does not type (a workload's own figures, telemetry, what a later benchkit
adds) is kept in `extra`, and the document's own key order in `keys`, so that
`Run.from_json(doc).to_json()` gives back the (upgraded) document, nothing measured lost.
Blocks that stay free-form (environment, model, engine, placement ...) are read-only
dicts and lists (`FrozenDict`, `FrozenList`): still `dict` and `list` to every reader.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, NoReturn, Sequence, TypeVar

FORMAT = "benchkit-result"
SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A document of any supported version as the current version (a new dict; the
    input is not changed). Each step is one version, so old files keep loading."""
    doc = json.loads(json.dumps(doc))
    if doc.get("schema_version") == 1:
        for case in doc.get("cases") or []:
            case["engine"] = {"kind": "llama-cpp-python", **(case.get("engine") or {})}
            case.setdefault("engine_info", {"name": "llama-cpp-python", "process": "in process",
                                            "version": (doc.get("environment") or {}).get(
                                                "versions", {}).get("llama_cpp_python")})
            for it in case.get("iterations") or []:
                it.setdefault("clock", "client")
        doc["schema_version"] = 2
    return doc


def clock_of(iterations: Iterable[Mapping[str, Any] | Iteration]) -> str | None:
    """The clock of a case's figures (iterations of one case share one; several are
    listed, comma-separated). Files of version 1 have no clock: benchkit's own."""
    clocks = {(it.clock or "client") if isinstance(it, Iteration) else it.get("clock", "client")
              for it in iterations}
    return ",".join(sorted(clocks)) or None


# --------------------------------------------------------------------- read-only JSON

def _read_only(*_: Any, **__: Any) -> NoReturn:
    raise TypeError("a result read from a file is read-only: build a new one "
                    "(dataclasses.replace, to_json) instead")


class FrozenDict(dict):  # type: ignore[type-arg]
    """A JSON object that cannot change: still a dict to readers and to json.dumps."""

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenDict, (dict(self),)


class FrozenList(list):  # type: ignore[type-arg]
    """A JSON array that cannot change: still a list to readers and to json.dumps."""

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = _read_only
    clear = sort = reverse = __iadd__ = __imul__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenList, (list(self),)


def freeze(value: Any) -> Any:
    """A JSON value as read-only dicts and lists (a deep copy)."""
    if isinstance(value, dict):
        return FrozenDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A JSON value as plain, writable dicts and lists (a deep copy)."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


# ----------------------------------------------------------------------- typed records

R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Record:
    """A JSON object with typed fields (named as its keys) and the rest in `extra`.

    `keys` is the object's key order as read (None for one built in code: its fields in
    declared order); a field that is None and was not in the object is not written, so
    an absent key stays absent and a null stays null.
    """

    extra: Mapping[str, Any] = field(default_factory=FrozenDict, repr=False)
    keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    # typed child records: field name -> Record class (one object, or a list of them)
    CHILDREN: ClassVar[dict[str, type[Record]]] = {}
    LISTS: ClassVar[dict[str, type[Record]]] = {}

    @classmethod
    def typed_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "keys"))

    @classmethod
    def from_json(cls: type[R], obj: Mapping[str, Any]) -> R:
        """The typed object of a JSON object (which is not changed)."""
        names = set(cls.typed_names())
        values = {k: cls._typed(k, v) for k, v in obj.items() if k in names}
        extra = FrozenDict((k, freeze(v)) for k, v in obj.items() if k not in names)
        return cls(**values, extra=extra, keys=tuple(obj))

    @classmethod
    def _typed(cls, name: str, value: Any) -> Any:
        if name in cls.CHILDREN and isinstance(value, dict):
            return cls.CHILDREN[name].from_json(value)
        if name in cls.LISTS and isinstance(value, list):
            child = cls.LISTS[name]
            return tuple(child.from_json(v) if isinstance(v, dict) else freeze(v)
                         for v in value)
        return freeze(value)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: plain dicts and lists, keys in the order read."""
        names = self.typed_names()
        order = list(self.keys if self.keys is not None else names)
        defaults = _defaults(type(self))
        order += [n for n in names if n not in order and getattr(self, n) != defaults[n]]
        order += [k for k in self.extra if k not in order]
        out = {}
        for key in order:
            if key in names:
                out[key] = thaw(getattr(self, key))
            elif key in self.extra:
                out[key] = thaw(self.extra[key])
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """A key's value, typed or extra, as the JSON object has it (None when absent):
        for figures only some workloads write (a serve level's, a quality summary's)."""
        if key in self.typed_names():
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)

    def with_extra(self: R, **values: Any) -> R:
        """A copy with these untyped keys set (added at the end when new)."""
        extra = FrozenDict({**self.extra, **{k: freeze(v) for k, v in values.items()}})
        keys = None if self.keys is None else self.keys + tuple(
            k for k in values if k not in self.keys)
        return dataclasses.replace(self, extra=extra, keys=keys)

    def without(self: R, *names: str) -> R:
        """A copy without these untyped keys."""
        extra = FrozenDict({k: v for k, v in self.extra.items() if k not in names})
        keys = None if self.keys is None else tuple(k for k in self.keys if k not in names)
        return dataclasses.replace(self, extra=extra, keys=keys)


def _defaults(cls: type[Record]) -> dict[str, Any]:
    """Each field's default: a field still at its default is not written unless read."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class Iteration(Record):
    """One timed iteration: its tokens, seconds and tok/s, and the clock they came from
    (client, tool or server); a workload's own figures (ttft_s, a request's fields) are
    in `extra`."""

    tokens: int | None = None
    seconds: float | None = None
    tps: float | None = None
    clock: str | None = None


@dataclass(frozen=True)
class Summary(Record):
    """A case's summary over its timed iterations (`io.summarize`); a workload's own
    figures (a serve level's, a quality run's, a chat's latencies) are in `extra`."""

    n: int | None = None
    tps_mean: float | None = None
    tps_median: float | None = None
    tps_stdev: float | None = None
    tps_min: float | None = None
    tps_max: float | None = None
    tps_cv: float | None = None
    tps_ci95_low: float | None = None
    tps_ci95_high: float | None = None


@dataclass(frozen=True)
class Case(Record):
    """One model × engine configuration × test: what was measured and how."""

    index: int | None = None
    status: str | None = None
    error: str | None = None
    model: Mapping[str, Any] | None = None
    engine: Mapping[str, Any] | None = None
    engine_info: Mapping[str, Any] | None = None
    test: str | None = None
    workload: Mapping[str, Any] | None = None
    warmup: int | str | None = None
    warmup_used: int | None = None
    load: Mapping[str, Any] | None = None
    placement: Mapping[str, Any] | None = None
    iterations: tuple[Iteration, ...] = ()
    summary: Summary | None = None
    warnings: tuple[str, ...] = ()
    telemetry: Mapping[str, Any] | None = None
    cold_start: Mapping[str, Any] | None = None

    CHILDREN: ClassVar[dict[str, type[Record]]] = {"summary": Summary}
    LISTS: ClassVar[dict[str, type[Record]]] = {"iterations": Iteration}

    @classmethod
    def _typed(cls, name: str, value: Any) -> Any:
        if name == "warnings" and isinstance(value, list):
            return tuple(freeze(v) for v in value)
        return super()._typed(name, value)

    @property
    def clock(self) -> str | None:
        """The clock of the case's figures (`clock_of`)."""
        return clock_of(self.iterations)

    @property
    def workload_kind(self) -> str | None:
        return (self.workload or {}).get("kind")

    @property
    def engine_kind(self) -> str | None:
        return (self.engine or {}).get("kind")

    @property
    def model_name(self) -> str | None:
        return (self.model or {}).get("name")

    @property
    def model_sha256(self) -> str | None:
        return (self.model or {}).get("sha256")


@dataclass(frozen=True)
class Run(Record):
    """A result document: the run, the machine it ran on, its suite and its cases."""

    format: str | None = None
    schema_version: int | None = None
    run_id: str | None = None
    status: str | None = None
    partial: bool | None = None
    started_at: str | None = None
    finished_at: str | None = None
    benchkit_version: str | None = None
    command: Sequence[str] | None = None
    environment: Mapping[str, Any] | None = None
    suite: Mapping[str, Any] | None = None
    cases: tuple[Case, ...] = ()

    LISTS: ClassVar[dict[str, type[Record]]] = {"cases": Case}

    @classmethod
    def from_json(cls: type[R], obj: Mapping[str, Any]) -> R:
        """The typed run of a document of any supported version (upgraded first)."""
        if obj.get("schema_version") != SCHEMA_VERSION:
            obj = upgrade(dict(obj))
        return super().from_json(obj)  # type: ignore[misc]

    @property
    def env(self) -> Mapping[str, Any]:
        """The environment, or an empty mapping when the file has none."""
        return self.environment or FrozenDict()

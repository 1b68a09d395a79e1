"""The engine contract: what every way of running a model provides to the runner.

An engine is one way of running a GGUF model (llama.cpp in process, llama-bench, a server
benchkit starts, a server already running at a URL). The runner knows nothing of how an
engine works; it asks the engine, through this contract, to

1. check its own settings (`Engine.Options`, a frozen dataclass whose fields carry their
   JSON Schema, default and help: the suite schema, the sweep axes and the DataFrame
   columns are built from these, never from a copied tuple);
2. say whether it can run a workload (`Engine.unsupported(workload)` gives the reason
   when it cannot: the case is recorded as unsupported, not failed);
3. open a model (`Engine.open(model)` -> `Session`), and in the session measure a workload:
   `Session.measure(workload, plan)` returns timed `Iteration`s. Each iteration says which
   clock made its figure (`clock`): benchkit's own monotonic clock in this process, a
   tool's own samples, or a server's own timings.

Engine modules import their heavy dependencies (llama-cpp-python, an HTTP client) inside
`open`, so that reading a suite or validating a result never loads llama.cpp.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping

from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

# The clocks an iteration's figure can come from (Iteration.clock).
CLOCK_CLIENT = "client"    # benchkit's time.perf_counter around the work, in this process
CLOCK_TOOL = "tool"        # the tool's own per-repetition samples (llama-bench samples_ns)
CLOCK_SERVER = "server"    # the server's own timings in its response (llama-server, Ollama)
CLOCKS = (CLOCK_CLIENT, CLOCK_TOOL, CLOCK_SERVER)


def setting(default: Any, schema: Mapping[str, Any], help: str, *,  # noqa: A002
            sweep: bool = True, column: bool = True, listed: bool = False) -> Any:
    """A dataclass field that is an engine setting.

    `schema` is the JSON Schema of ONE value (a suite may give a list of them to sweep,
    when `sweep`); `help` is shown by `benchkit engines list` and in errors; `column`
    makes the setting a DataFrame column (settings that identify a configuration).
    `listed`: one value is itself a list (a tensor split `[3, 1]`), so a sweep is a list
    of such lists (`[[1, 1], [3, 1]]`) and a flat list is one value.
    """
    return field(default=default, metadata={"schema": dict(schema), "help": help,
                                            "sweep": sweep, "column": column,
                                            "listed": listed})


@dataclass(frozen=True)
class Options:
    """Base of every engine's settings. Subclasses are frozen dataclasses of `setting`s."""

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if "schema" in f.metadata]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    @classmethod
    def value_schema(cls, name: str) -> dict[str, Any]:
        """The JSON Schema a suite value of `name` must meet (a list of values if swept)."""
        f = next(f for f in cls.fields() if f.name == name)
        one = f.metadata["schema"]
        if not f.metadata["sweep"]:
            return one
        err = one.get("x-error", "invalid value")
        return {"anyOf": [one, {"type": "array", "minItems": 1, "items": one}],
                "x-error": f"{err} (or a list of such values to sweep)"}

    @classmethod
    def sweep_values(cls, name: str, value: Any) -> list[Any]:
        """The values a suite's `value` of setting `name` stands for: each item of a sweep,
        or the one value. A setting whose value is a list sweeps only a list of lists."""
        f = next(f for f in cls.fields() if f.name == name)
        if not (f.metadata["sweep"] and isinstance(value, list)):
            return [value]
        if f.metadata.get("listed") and not all(v is None or isinstance(v, list)
                                                for v in value):
            return [value]
        return list(value)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.fields()}

    def resolved(self) -> Options:
        """The options with machine-dependent defaults filled in (see subclasses)."""
        return self


@dataclass
class Iteration:
    """One timed request: `tokens` over `seconds` is its figure, made by `clock`.

    Streaming engines add the time to first token and every token's latency; HTTP
    engines keep the client's and the server's figures side by side in `extra`.
    """

    tokens: int
    seconds: float
    clock: str = CLOCK_CLIENT
    ttft_s: float | None = None
    token_latencies_s: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tps(self) -> float:
        """tokens / seconds (0 for no time: the writer refuses such an iteration); a count
        no float holds (a server's 10^400 tokens) is infinite, refused the same way."""
        if not self.seconds > 0:
            return 0.0
        try:
            return self.tokens / self.seconds
        except OverflowError:
            return math.inf

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tokens": self.tokens, "seconds": self.seconds, "tps": self.tps,
                             "clock": self.clock}
        if self.ttft_s is not None:
            d["ttft_s"] = self.ttft_s
        if self.token_latencies_s is not None:
            d["token_latencies_s"] = self.token_latencies_s
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class AutoWarmup:
    """`warmup: auto`: keep warming until the last `window` warmups agree, at most `cap`.

    The rule: the last `window` warmup iterations' range (slowest to fastest) is within
    `tolerance` of their median. On a GPU the first iterations run slower while kernels
    and graphs warm up; this stops as soon as they no longer do. A machine whose noise is
    above the tolerance reaches the cap, and the case says so.
    """

    window: int = 3
    tolerance: float = 0.02
    cap: int = 10

    def stable(self, tps: list[float]) -> bool:
        last = sorted(tps[-self.window:])
        if len(last) < self.window:
            return False
        median = last[len(last) // 2]
        return median > 0 and (last[-1] - last[0]) / median <= self.tolerance


@dataclass(frozen=True)
class Plan:
    """How many iterations to run: warmups are discarded, the timed ones recorded.

    `warmup` is a count or "auto" (see AutoWarmup). `on_iteration` is told of every
    iteration as it finishes: None for a warmup, the Iteration for a timed one (engines
    that learn only a figure may pass its tok/s). The runner streams timed iterations to
    the result file through it, so that a crash keeps every finished one.
    """

    warmup: int | str
    iterations: int
    on_iteration: Callable[[Any], None] = lambda it: None
    auto: AutoWarmup = AutoWarmup()

    def more_warmup(self, done: list[float]) -> bool:
        """Whether another warmup iteration is due after those done (their tok/s)."""
        if self.warmup == "auto":
            return len(done) < self.auto.cap and not self.auto.stable(done)
        return len(done) < int(self.warmup)


@dataclass(frozen=True)
class ModelFile:
    """The local model file a suite names, as the runner prepared it (None for engines that
    serve a model of their own choosing, e.g. an Ollama model tag)."""

    path: str
    label: str                     # "suites/x.yaml:7 [models.0.path]": where errors point
    sha256: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP engine's server answers, for workloads that speak HTTP themselves
    (the load generator of the `serve` workload). Sessions of HTTP engines expose one as
    `session.endpoint`."""

    base_url: str                  # "http://127.0.0.1:8080" (no trailing slash)
    api: str                       # "llama-server" | "openai" | "ollama": native API spoken
    model: str | None = None       # the model name requests carry (OpenAI / Ollama)
    openai_url: str | None = None  # the OpenAI-compatible base, e.g. base_url + "/v1"


class Session(ABC):
    """A model opened by an engine with one configuration; closed by the runner."""

    load_seconds: float | None = None
    warmups_used: int | None = None            # set by measure()
    first_iteration: Iteration | None = None   # set by measure()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def facts(self) -> dict[str, Any]:
        """What the engine says about itself: version, build, backend, devices, server URL,
        what the server says about the model it serves. Recorded as the case's
        `engine_info`."""
        return {}

    def placement(self) -> dict[str, Any] | None:
        """Where the model went (layers, buffers per device), where the engine knows it."""
        return None

    def prepare(self, workload: Workload) -> list[str]:
        """Get ready for `workload` (e.g. a context of the right size); returns warnings."""
        return []

    def iteration(self, workload: Workload) -> Iteration:
        """One timed request of `workload`."""
        raise NotImplementedError(f"{type(self).__name__} has no iteration for {workload.kind}")

    def measure(self, workload: Workload, plan: Plan) -> list[Iteration]:
        """Warmup (discarded), then the timed iterations. Engines that time themselves
        (llama-bench) override this; workloads with a loop of their own (a load sweep)
        provide `workload.measure`. Sets `warmups_used` and `first_iteration` (the cold
        iteration after load, which a user feels on a cold start)."""
        own = getattr(workload, "measure", None)
        if own is not None:
            return own(self, plan)
        warm: list[float] = []
        self.first_iteration = None
        while plan.more_warmup(warm):
            it = self.iteration(workload)
            self.first_iteration = self.first_iteration or it
            warm.append(it.tps)
            plan.on_iteration(None)
        self.warmups_used = len(warm)
        timed = []
        for _ in range(plan.iterations):
            it = self.iteration(workload)
            self.first_iteration = self.first_iteration or it
            timed.append(it)
            plan.on_iteration(it)
        return timed

    def close(self) -> None:
        """Free what `open` took; stop what it started. Must be safe to call twice."""


class Engine(ABC):
    """One way of running a model. Subclasses set the class attributes and `open`."""

    kind: ClassVar[str]                 # the suite's name for it: "llama-server"
    order: ClassVar[int] = 100          # its place in listings and DataFrame columns
    layer: ClassVar[str]                # what it is, for reports: "HTTP/JSON server layer"
    Options: ClassVar[type[Options]]
    workloads: ClassVar[frozenset[str]]  # workload kinds it can measure
    uses_model_file: ClassVar[bool] = True   # False: the server chooses what it serves
    model_formats: ClassVar[frozenset[str]] = frozenset({"gguf"})   # "gguf", "mlx" (a folder)
    # False: the engine runs all its iterations in one go (llama-bench's -r), so `warmup:
    # auto`, which watches iterations one by one, cannot apply (preflight refuses it)
    auto_warmup: ClassVar[bool] = True

    def __init__(self, options: Options) -> None:
        self.options = options.resolved()

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> Engine:
        """The engine with `values` (already checked against Options' schema)."""
        return cls(cls.Options(**{k: v for k, v in values.items() if k in cls.Options.names()}))

    def settings(self) -> dict[str, Any]:
        """The case's `engine` object: the kind and every setting."""
        return {"kind": self.kind, **self.options.to_dict()}

    def unsupported(self, workload: Workload) -> str | None:
        """Why this engine cannot measure `workload`, or None when it can."""
        if workload.kind not in self.workloads:
            return (f"{self.kind} does not run {workload.kind} workloads "
                    f"(it runs {', '.join(sorted(self.workloads))})")
        return None

    @abstractmethod
    def open(self, model: ModelFile | None) -> Session:
        """Load `model` (or connect to the server that serves it); raises BenchkitError."""

    def describe(self) -> str:
        return f"{self.kind}: {self.layer}"


def unsupported_error(engine: Engine, reason: str) -> BenchkitError:
    return BenchkitError(f"{engine.kind}: {reason}")


def iter_fields(options_cls: type[Options]) -> Iterator[tuple[str, Any, str]]:
    """(name, default, help) of each setting, for `benchkit engines list`."""
    for f in options_cls.fields():
        yield f.name, f.default, f.metadata["help"]

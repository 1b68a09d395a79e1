"""The load generator of the `serve` workload: many streaming requests at once, timed on
the client.

One asyncio event loop and ONE `httpx.AsyncClient` whose connection pool is sized to the
load (the concurrency, or the in-flight cap of an open loop): no thread per request,
because a thread per stream would cost the client more than the server it measures on a
small machine. While a stream is read, the only Python work per received chunk is two list
appends (the chunk and a `time.perf_counter()` stamp); parsing the events (JSON, token
counts, usage figures) happens after the level has drained, outside the timed part, so
that the client's parsing never delays the timestamp of another stream's token.

Two kinds of load, as vLLM's `bench serve` and GuideLLM have them:
- closed loop (`concurrency` N): N workers, each sends its next request when its previous
  one ends, so exactly N are in flight until the requests run out;
- open loop (`rate` R): requests arrive as a Poisson process of R per second (exponential
  gaps from a seeded RNG, so two runs send the same schedule), however many are in
  flight; a server that cannot keep up queues them, which the latencies show.

A level is bounded: a number of requests, a duration, or both (whichever comes first ends
it: no request is sent after the duration, and the ones in flight finish), a per-request
timeout and a stall timeout (no byte from the server for that long), so it always ends by
itself; `LevelResult.ended_by` says which bound ended it. Warmup
requests run first and are discarded; a level starts only when the previous requests
have drained (and, for llama-server, when its slots report idle).

Errors are classified per request (`ERROR_KINDS`) and never stop the level: a server that
closes connections under load yields `closed` requests beside the ones it finished.
Only explicit URLs are requested (the endpoint the engine names); nothing is scanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.core.urls import without_credentials
from benchkit.workloads.serve.streams import parse_record

# Why a request failed (RequestRecord.error):
ERROR_KINDS = (
    "connect",     # no connection: refused, unreachable, connect timeout
    "timeout",     # the whole request took longer than the per-request timeout
    "http_5xx",    # the server answered 5xx (or sent an error event in the stream)
    "http_4xx",    # the server refused the request (4xx)
    "malformed",   # a stream event that is not the JSON the API documents
    "stalled",     # the server sent nothing for the stall timeout
    "closed",      # the connection ended before the stream's final event
)
CANCELLED = "cancelled (interrupted)"     # the detail of a request the level's stop cut off
MAX_RESPONSE_BYTES = 64 << 20  # one request's raw stream; past it the request is malformed
# At most this many distinct prompts (or conversations) are made for a level, whatever its
# `requests:` (2^31 - 1 built gigabytes of prompts before the first request); a level of
# more requests cycles them. Conversations are not cycled: more are refused.
MAX_PROMPT_POOL = 4096
ROUTES = ("native", "completions", "chat")
PROTOCOLS = ("llama-server", "openai-completions", "openai-chat", "ollama")
# identity: the stream is read raw (no decoder between the socket and the timestamps)
_HEADERS = {"content-type": "application/json", "accept": "text/event-stream",
            "accept-encoding": "identity"}

# Common English words, each one token in the usual BPE vocabularies: synthetic prompts
# of about N tokens are N of these in seeded random order (distinct from the first word
# on, so that no request reuses another's prompt cache).
WORDS = (
    "the of and to in is was for on with as by at from that this it be are or an have not "
    "they which one you had were but all their there can been has more if will when who "
    "would so what out up into no time only new some could them these may then do first "
    "any like now my such make over our even most after also made many before must well "
    "back through years much where your way down should because each just those people how "
    "too little state good very world still own see men work long here get both between "
    "life being under never day same another know while last might great old year off come "
    "since against go came right used take three small large place house number home water "
    "city light river morning table garden window letter music story paper market school"
).split()


# --------------------------------------------------------------------------- what to send

@dataclass(frozen=True)
class Target:
    """One streaming HTTP API to load: the URL requests go to and the protocol they speak."""

    url: str                      # the generate URL, e.g. http://127.0.0.1:8080/completion
    protocol: str                 # one of PROTOCOLS
    model: str | None = None      # the model name the body carries (OpenAI, Ollama)
    base_url: str | None = None   # the server's root, for llama-server's /tokenize and /slots


def target_of(endpoint: Any, route: str = "native") -> Target:
    """The Target of an engine's `Endpoint` (benchkit.engines.base) for `route`: native is
    the server's own streaming API (llama-server /completion, Ollama /api/generate, the
    OpenAI completions of an OpenAI server), completions / chat its OpenAI-compatible
    /v1/completions and /v1/chat/completions."""
    if route not in ROUTES:
        raise BenchkitError(f"unknown endpoint {route!r} (use {', '.join(ROUTES)})",
                            field="serve.endpoint")
    base = endpoint.base_url.rstrip("/")
    openai = (endpoint.openai_url or (base if endpoint.api == "openai" else f"{base}/v1"))
    openai = openai.rstrip("/")
    native = {"llama-server": (f"{base}/completion", "llama-server"),
              "ollama": (f"{base}/api/generate", "ollama"),
              "openai": (f"{openai}/completions", "openai-completions")}
    if endpoint.api not in native:
        raise BenchkitError(f"unknown endpoint API {endpoint.api!r}", field="engine")
    if route == "native":
        url, protocol = native[endpoint.api]
    elif route == "completions":
        url, protocol = f"{openai}/completions", "openai-completions"
    else:
        url, protocol = f"{openai}/chat/completions", "openai-chat"
    return Target(url=url, protocol=protocol, model=endpoint.model,
                  base_url=base if endpoint.api == "llama-server" else None)


@dataclass(frozen=True)
class Prompt:
    """One request's prompt: token ids (exact length; llama-server) or text."""

    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    max_tokens: int | None = None     # this prompt's own limit (a prompts file may say)
    messages: tuple[tuple[str, str], ...] | None = None   # (role, text): a conversation
    tokens_planned: int | None = None  # the length drawn for it (a distribution), if any


@dataclass(frozen=True)
class Conversation:
    """One session of a conversation level: an optional system prompt (shared by every
    session when it is the shared prefix) and the user message of each turn."""

    users: tuple[str, ...]
    system: str | None = None


@dataclass(frozen=True)
class LoadSpec:
    """One level of load and its bounds. Exactly one of concurrency / rate, and requests,
    duration_s or both (whichever is reached first ends the level)."""

    concurrency: int | None = None
    rate: float | None = None            # requests per second, Poisson arrivals
    requests: int | None = 64
    duration_s: float | None = None
    warmup: int = 0
    max_tokens: int = 128
    ignore_eos: bool = True
    temperature: float = 0.8
    seed: int = 42
    timeout_s: float = 300.0             # one request, send to last byte
    stall_s: float = 30.0                # no byte from the server for this long
    connect_timeout_s: float = 10.0
    max_in_flight: int = 1024            # open loop: connection pool size
    cache: str = "bust"                  # bust: every prompt cold; reuse: the server may cache
    turns: int = 1                       # sessions: requests per conversation
    think_time_s: float = 0.0            # sessions: pause between a reply and the next turn
    arrival: str = "poisson"             # open loop: poisson, constant, gamma (bursty), ramp
    arrival_cv: float = 1.0              # gamma: the gaps' coefficient of variation

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise BenchkitError("a load level needs exactly one of concurrency and rate",
                                field="serve")
        if self.concurrency is not None and self.concurrency < 1:
            raise BenchkitError(f"concurrency {self.concurrency}: must be at least 1 "
                                "request in flight", field="serve.concurrency")
        if self.rate is not None and not self.rate > 0:
            raise BenchkitError(f"rate {self.rate}: must be more than 0 requests per second",
                                field="serve.rate")
        if self.requests is None and self.duration_s is None:
            raise BenchkitError("a load level needs requests or duration", field="serve")
        if self.requests is not None and self.requests < 1:
            raise BenchkitError(f"requests {self.requests}: must be at least 1",
                                field="serve.requests")
        if self.duration_s is not None and not self.duration_s > 0:
            raise BenchkitError(f"duration {self.duration_s}: must be more than 0 seconds",
                                field="serve.duration")
        for name in ("timeout_s", "stall_s", "connect_timeout_s"):
            if not getattr(self, name) > 0:
                raise BenchkitError(f"{name} must be more than 0 seconds", field="serve")

    @property
    def pool_size(self) -> int:
        return self.concurrency if self.concurrency is not None else self.max_in_flight


def request_body(target: Target, prompt: Prompt, spec: LoadSpec, index: int) -> bytes:
    """The JSON body of one streaming request (serialised before the clock starts)."""
    n = prompt.max_tokens or spec.max_tokens
    seed = spec.seed + (index if index >= 0 else 1_000_000 - index)   # warmups: index < 0
    text = prompt.text if prompt.messages is None else render_transcript(prompt.messages)
    if target.protocol == "llama-server":
        body: dict[str, Any] = {
            "prompt": list(prompt.token_ids) if prompt.token_ids else text,
            "n_predict": n, "stream": True, "cache_prompt": spec.cache == "reuse",
            "ignore_eos": spec.ignore_eos, "temperature": spec.temperature, "seed": seed}
    elif target.protocol == "ollama":
        body = {"prompt": text or "", "stream": True, "raw": True,
                "options": {"num_predict": n, "temperature": spec.temperature, "seed": seed}}
    else:
        body = {"max_tokens": n, "stream": True, "temperature": spec.temperature,
                "seed": seed, "stream_options": {"include_usage": True}}
        if spec.ignore_eos:   # vLLM and llama-server honour ignore_eos, llama-cpp-python min_tokens
            body.update(ignore_eos=True, min_tokens=n)
        if target.protocol == "openai-chat":
            body["messages"] = ([{"role": r, "content": t} for r, t in prompt.messages]
                                if prompt.messages else
                                [{"role": "user", "content": prompt.text or ""}])
        else:
            body["prompt"] = list(prompt.token_ids) if prompt.token_ids else text
        if target.base_url:        # llama-server's OpenAI routes accept its cache flag
            body["cache_prompt"] = spec.cache == "reuse"
    if target.model and target.protocol != "llama-server":
        body["model"] = target.model
    return json.dumps(body).encode()


def render_transcript(messages: Sequence[tuple[str, str]]) -> str:
    """A conversation as one text prompt (for the completion APIs): each message after
    its role's name, then the assistant's name for the reply."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    parts = [f"{names.get(role, role.title())}: {text}" for role, text in messages]
    return "\n\n".join([*parts, "Assistant:"])


def synthetic_texts(n_tokens: int, count: int, seed: int) -> list[str]:
    """`count` distinct texts of about `n_tokens` words each (see WORDS), seeded."""
    rng = random.Random(seed)
    pool = [rng.choice(WORDS) for _ in range(n_tokens + 4 * count + 64)]
    return [" ".join(pool[i * 4:i * 4 + n_tokens]) for i in range(count)]


def check_bounds(rates: Sequence[float], timeout_s: float, turns: int | None,
                 requests: int | None, at: Any) -> None:
    """Limits that must limit, checked when the suite is read (`at`: its SuiteSpot): an
    open loop whose mean gap between arrivals is longer than the level's timeout (a rate
    of 1e-5 slept a day whatever `timeout` said), and more conversations than
    MAX_PROMPT_POOL in one level."""
    for rate in rates:
        if 1.0 / rate > timeout_s:
            raise at.error(f"rate {rate:g}: a mean gap of {1.0 / rate:,.0f} s between "
                           f"arrivals is longer than the level's timeout of {timeout_s:g} s",
                           field=f"{at.field}.rate")
    sessions = -(-requests // turns) if turns and requests else 0
    if sessions > MAX_PROMPT_POOL:
        raise at.error(f"requests {requests:,} at {turns} turns is {sessions:,} "
                       f"conversations, more than the {MAX_PROMPT_POOL:,} a level makes",
                       field=f"{at.field}.requests")


# --------------------------------------------------------------------------- what is measured

@dataclass
class RequestRecord:
    """One request as the client saw it. Times are perf_counter seconds: `start_s` from
    the level's start, the others from this request's send."""

    index: int
    scheduled_s: float | None = None     # open loop: planned arrival, from the level's start
    start_s: float = 0.0
    e2e_s: float = 0.0                   # send -> last byte (or -> the failure)
    ttft_s: float | None = None          # send -> first token event
    token_times_s: list[float] = field(default_factory=list)   # send -> each token event
    tokens_in: int | None = None
    tokens_out: int = 0
    tokens_source: str = "counted"       # "server" when from the server's usage figures
    error: str | None = None             # one of ERROR_KINDS
    detail: str | None = None
    status_code: int | None = None
    retries: int = 0                     # sent again after a pooled connection was dead
    session: int | None = None           # sessions: the conversation and its turn (1, 2 ...)
    turn: int | None = None
    think_s: float | None = None         # sessions: the pause before this turn was sent
    cache_n: int | None = None           # prompt tokens the server took from its cache
    prompt_n: int | None = None          # prompt tokens the server computed
    draft_n: int | None = None           # speculative decoding: tokens drafted, accepted
    draft_accepted: int | None = None
    ttft_answer_s: float | None = None   # send -> first answer token (after any reasoning)
    reasoning_tokens: int | None = None  # token events of reasoning (reasoning_content, <think>)
    text: str = ""                       # the generated text (answer and reasoning)
    parsed: bool = False
    interrupted: bool = False            # cancelled in flight when the level was stopped
    stamps: list[float] = field(default_factory=list, repr=False)    # raw, until parsed
    chunks: list[bytes] = field(default_factory=list, repr=False)
    t0: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def gaps_s(self) -> list[float]:
        """Every inter-token gap: between consecutive token events as they arrived."""
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:])]

    def tpot_s(self) -> float | None:
        """Time per output token after the first: (e2e - ttft) / (tokens - 1)."""
        if self.ttft_s is None or self.tokens_out < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.tokens_out - 1)


@dataclass
class LevelResult:
    """What one level measured: its requests (warmups apart) and its wall time (level
    start to the end of the last request)."""

    spec: LoadSpec
    records: list[RequestRecord]
    wall_s: float
    warmup: list[RequestRecord] = field(default_factory=list)
    interrupted: bool = False
    ended_by: str = "requests"    # the bound that ended it: requests, duration, interrupted
    parse_s: float = 0.0          # parsing the streams after the level (not in wall_s)

    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            if r.error:
                out[r.error] = out.get(r.error, 0) + 1
        return dict(sorted(out.items()))


# --------------------------------------------------------------------------- the level

def run_level(target: Target, prompts: Sequence[Prompt], spec: LoadSpec, *,
              on_request: Callable[[RequestRecord | None], None] = lambda r: None,
              idle_timeout_s: float = 30.0,
              conversations: Sequence[Conversation] = (),
              before_level: Callable[[], None] = lambda: None) -> LevelResult:
    """Warm up, wait for the server to be idle, run one level, parse what came back.

    A level interrupted (SIGINT, SIGTERM, SIGHUP under benchkit.core.interrupts: Ctrl-C,
    a time limit) stops sending, cancels the requests in flight (their records say
    `interrupted`) and returns what it has, `interrupted` set: the caller keeps the
    finished requests, then raises (`CtrlC.check()`).

    `on_request(record)` is called as each timed request ends (None for a warmup), for
    progress display; it must be cheap. With `conversations` (a closed loop only), each
    worker runs whole sessions, one after another: turn k sends the system prompt, every
    earlier user message and reply, and the k-th user message, `spec.think_time_s` after
    the previous reply ended; `prompts` are then the warmups' only. A turn's reply is
    parsed as soon as it ends (in the think time, the next turn needs its text), the
    other requests after the level; a failed turn ends its session. `before_level()` is
    called once the warmups are done and the server is idle, before the level's clock
    starts (a scrape of the server's metrics).
    """
    if not prompts:
        raise BenchkitError("no prompts to send", field="serve.prompts")
    if conversations and spec.concurrency is None:
        raise BenchkitError("sessions run in a closed loop: give concurrency, not rate",
                            field="serve.sessions")
    return asyncio.run(_level(target, prompts, spec, on_request, idle_timeout_s,
                              list(conversations), before_level))


async def _level(target: Target, prompts: Sequence[Prompt], spec: LoadSpec,
                 on_request: Callable[[RequestRecord | None], None],
                 idle_timeout_s: float, conversations: list[Conversation],
                 before_level: Callable[[], None]) -> LevelResult:
    import httpx

    with _fast_pool_locks():
        return await _level_client(httpx, target, prompts, spec, on_request, idle_timeout_s,
                                   conversations, before_level)


async def _level_client(httpx: Any, target: Target, prompts: Sequence[Prompt], spec: LoadSpec,
                        on_request: Callable[[RequestRecord | None], None],
                        idle_timeout_s: float, conversations: list[Conversation],
                        before_level: Callable[[], None]) -> LevelResult:
    from benchkit.core.interrupts import CtrlC

    limits = httpx.Limits(max_connections=spec.pool_size,
                          max_keepalive_connections=spec.pool_size)
    timeout = httpx.Timeout(connect=spec.connect_timeout_s, read=spec.stall_s,
                            write=spec.stall_s, pool=spec.timeout_s)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        state = _State(client, target, prompts, spec, on_request)
        watcher = asyncio.create_task(_watch_interrupt(state, CtrlC))
        try:
            warm = await state.closed_loop(range(-spec.warmup, 0),
                                           min(spec.warmup, spec.concurrency or 1), None)
            await _wait_idle(client, target, idle_timeout_s)
            before_level()
            gc.collect()
            gc.disable()     # no collector pause inside the timed part
            try:
                t_level = state.t_level = time.perf_counter()
                if conversations:
                    records = await state.sessions(conversations, spec.concurrency or 1,
                                                   _deadline(spec, t_level))
                elif spec.concurrency is not None:
                    records = await state.closed_loop(_indexes(spec), spec.concurrency,
                                                      _deadline(spec, t_level))
                else:
                    records = await state.open_loop(t_level)
                wall = time.perf_counter() - t_level
            finally:
                gc.enable()
        finally:
            watcher.cancel()
    t_parse = time.perf_counter()
    for rec in warm + records:
        parse_record(target.protocol, rec)
    ended_by = ("interrupted" if state.stopping else
                "duration" if state.deadline_hit else "requests")
    return LevelResult(spec=spec, records=records, wall_s=wall, warmup=warm,
                       interrupted=state.stopping, ended_by=ended_by,
                       parse_s=time.perf_counter() - t_parse)


@contextlib.contextmanager
def _fast_pool_locks() -> Iterator[None]:
    """httpcore's connection locks without anyio's extra yield on an uncontended acquire.

    httpcore guards each connection with an anyio Lock whose every acquire, even a free
    one, yields to the event loop inside a shielded cancel scope. With tens of streams in
    flight that yield waits behind the other streams' chunks, and a request waited
    hundreds of milliseconds before its headers were even written (64 streams at 50 tok/s
    against a server that answers at once, on 2 cores; scripts/loadgen_ceiling.py's TTFT
    column shows it), against tens with anyio's own `fast_acquire` locks. The locks are
    the same otherwise; only this level's client (created inside) gets them, and the
    patch is undone when the level ends.
    """
    try:
        import anyio
        from httpcore import _synchronization as sync
    except ImportError:
        yield
        return
    original = sync.AsyncLock.setup
    if "fast_acquire" not in inspect.signature(anyio.Lock).parameters:
        yield
        return

    def setup(self: Any) -> None:
        original(self)
        if getattr(self, "_backend", None) == "asyncio":
            self._anyio_lock = anyio.Lock(fast_acquire=True)

    sync.AsyncLock.setup = setup
    try:
        yield
    finally:
        sync.AsyncLock.setup = original


def _indexes(spec: LoadSpec) -> Iterable[int]:
    return range(spec.requests) if spec.requests is not None else itertools.count()


def _deadline(spec: LoadSpec, t_level: float) -> float | None:
    """With a duration: no request starts after this perf_counter time."""
    return t_level + spec.duration_s if spec.duration_s else None


def next_gap(spec: LoadSpec, rng: random.Random, i: int) -> float:
    """The open loop's gap before request `i`, in seconds, at `spec.rate` on average:
    poisson (exponential gaps), constant (1 / rate), gamma (bursty: gaps of coefficient
    of variation `arrival_cv`, shape 1 / cv^2; cv 1 is Poisson), ramp (exponential gaps
    whose rate rises linearly from a tenth of `rate` to `rate` over the level's requests,
    or its duration)."""
    rate = float(spec.rate or 1.0)
    if spec.arrival == "constant":
        return 1.0 / rate
    if spec.arrival == "gamma":
        shape = 1.0 / spec.arrival_cv ** 2
        return rng.gammavariate(shape, 1.0 / (rate * shape))
    if spec.arrival == "ramp":
        if spec.requests:
            share = i / max(spec.requests - 1, 1)
        else:
            share = min(1.0, i / max(rate * (spec.duration_s or 1.0), 1.0))
        return rng.expovariate(rate * (0.1 + 0.9 * share))
    return rng.expovariate(rate)


class _State:
    """The level's shared state: the client, the prompts, every request task in flight."""

    def __init__(self, client: Any, target: Target, prompts: Sequence[Prompt], spec: LoadSpec,
                 on_request: Callable[[RequestRecord | None], None]) -> None:
        self.client, self.target, self.prompts, self.spec = client, target, prompts, spec
        self.on_request = on_request
        self.in_flight: set[asyncio.Task] = set()
        self.stopping = False
        self.stopped = asyncio.Event()       # set with `stopping`: ends a pause at once
        self.deadline_hit = False         # the level's duration ended it (see ended_by)
        self.t_level = time.perf_counter()

    def stop(self) -> None:
        """Stop sending and cancel every request in flight (an interruption)."""
        self.stopping = True
        self.stopped.set()
        for task in list(self.in_flight):
            task.cancel()

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the level is stopped meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)

    def body(self, index: int) -> bytes:
        """Request `index`'s body; timed requests use prompts in order, warmups the last ones.
        Not kept: each index is sent once (a retry reuses the bytes it was given)."""
        prompt = self.prompts[index % len(self.prompts)]
        return request_body(self.target, prompt, self.spec, index)

    async def closed_loop(self, indexes: Iterable[int], workers: int,
                          deadline: float | None) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        if workers < 1:
            return records
        shared = iter(indexes)

        async def worker() -> None:
            for i in shared:         # no await between next() calls: safe across workers
                if self.stopping or self.past(deadline):
                    return
                rec = RequestRecord(index=i)
                records.append(rec)
                body = self.body(i)
                await self.launch(rec, body)

        await asyncio.gather(*(worker() for _ in range(workers)))
        return sorted(records, key=lambda r: r.index)

    async def sessions(self, conversations: list[Conversation], workers: int,
                       deadline: float | None) -> list[RequestRecord]:
        """Whole conversations, `workers` at a time (see run_level)."""
        records: list[RequestRecord] = []
        shared = iter(range(len(conversations)))
        spec, turns = self.spec, max(len(c.users) for c in conversations)

        async def session(k: int) -> None:
            conv, history = conversations[k], []
            for turn, user in enumerate(conv.users):
                if self.stopping or self.past(deadline):
                    return
                if turn and spec.think_time_s:
                    await self.pause(spec.think_time_s)
                index = k * turns + turn
                head = [("system", conv.system)] if conv.system else []
                messages = [*head, *history, ("user", user)]
                if spec.cache == "bust":     # a prefix no other request has
                    role, text = messages[0]
                    messages[0] = (role, f"[{spec.seed:x}.{index}] {text}")
                rec = RequestRecord(index=index, session=k, turn=turn + 1,
                                    think_s=spec.think_time_s if turn else None)
                records.append(rec)
                body = request_body(self.target, Prompt(messages=tuple(messages)), spec, index)
                await self.launch(rec, body)
                parse_record(self.target.protocol, rec)
                if rec.error:
                    return
                history += [("user", user), ("assistant", rec.text)]

        async def worker() -> None:
            for k in shared:
                await session(k)

        await asyncio.gather(*(worker() for _ in range(workers)))
        return sorted(records, key=lambda r: r.index)

    async def open_loop(self, t_level: float) -> list[RequestRecord]:
        spec = self.spec
        rng = random.Random(spec.seed)
        records: list[RequestRecord] = []
        tasks = []
        arrival = 0.0
        for i in _indexes(spec):
            # no arrival waits longer than the level's timeout (a gap of a bursty or slow
            # schedule is cut there); the wait ends at once when the level is stopped
            arrival += min(next_gap(spec, rng, i), spec.timeout_s)
            if spec.duration_s is not None and arrival > spec.duration_s:
                self.deadline_hit = True
                break
            body = self.body(i)
            delay = t_level + arrival - time.perf_counter()
            if delay > 0:
                await self.pause(delay)
            if self.stopping:
                break
            rec = RequestRecord(index=i, scheduled_s=arrival)
            records.append(rec)
            tasks.append(asyncio.create_task(self.launch(rec, body)))
        await asyncio.gather(*tasks)
        return records

    def past(self, deadline: float | None) -> bool:
        """Whether the level's duration is over (and so ended it)."""
        if deadline is not None and time.perf_counter() >= deadline:
            self.deadline_hit = True
        return self.deadline_hit

    async def launch(self, rec: RequestRecord, body: bytes) -> None:
        """One request under the per-request timeout, tracked so Ctrl-C can cancel it."""
        task = asyncio.current_task()
        self.in_flight.add(task)
        try:
            await asyncio.wait_for(_stream(self.client, self.target.url, body, rec,
                                           self.t_level), self.spec.timeout_s)
        except asyncio.TimeoutError:
            rec.error = rec.error or "timeout"
            rec.detail = f"no end of stream within {self.spec.timeout_s:g} s"
        except asyncio.CancelledError:
            rec.error = rec.error or "timeout"
            rec.detail = CANCELLED
            rec.interrupted = True
            if not self.stopping:
                raise
        finally:
            self.in_flight.discard(task)
            if rec.error == "timeout":      # cut off from outside: time until the cut
                rec.t0 = rec.t0 or time.perf_counter()
                rec.e2e_s = time.perf_counter() - rec.t0
        self.on_request(rec if rec.index >= 0 else None)


async def _stream(client: Any, url: str, body: bytes, rec: RequestRecord,
                  t_level: float) -> None:
    """Send one request and keep every chunk with its arrival time; classify failures.

    A connection that the server closed while it sat in the pool fails the next request
    sent on it before any byte of a response (llama-server closes the connection after
    every streamed response, and the close can cross the next request): that request is
    sent once more, on a new connection, as curl does, and its clock restarts; `retries`
    records it.
    """
    import httpx

    for attempt in (0, 1):
        try:
            await _attempt(client, url, body, rec, t_level)
            return
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if attempt == 0 and rec.status_code is None and not rec.chunks:
                rec.retries += 1
                continue
            rec.error, rec.detail = "closed", f"connection ended: {_reason(exc)}"
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            rec.error = "connect"
            rec.detail = f"cannot connect to {without_credentials(url)}: {_reason(exc)}"
        except httpx.ReadTimeout:
            rec.error = "stalled"
            rec.detail = f"nothing from the server for {client.timeout.read:g} s"
        except (httpx.PoolTimeout, httpx.WriteTimeout) as exc:
            rec.error, rec.detail = "timeout", f"{type(exc).__name__}: {_reason(exc)}"
        rec.e2e_s = time.perf_counter() - rec.t0
        return


async def _attempt(client: Any, url: str, body: bytes, rec: RequestRecord,
                   t_level: float) -> None:
    stamps, chunks, clock = rec.stamps, rec.chunks, time.perf_counter
    rec.t0 = t0 = clock()
    rec.start_s = t0 - t_level
    async with client.stream("POST", url, content=body, headers=_HEADERS) as resp:
        rec.status_code = resp.status_code
        if resp.status_code >= 400:
            text = (await resp.aread())[:300].decode("utf-8", "replace")
            rec.error = "http_5xx" if resp.status_code >= 500 else "http_4xx"
            rec.detail = f"HTTP {resp.status_code}: {' '.join(text.split())}"
            rec.e2e_s = clock() - t0
            return
        add_stamp, add_chunk = stamps.append, chunks.append
        size = 0
        async for chunk in resp.aiter_raw():
            add_stamp(clock())
            add_chunk(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:      # no answer of a level is this long
                rec.error = "malformed"
                rec.detail = f"the response passed {MAX_RESPONSE_BYTES >> 20} MiB"
                break
    rec.e2e_s = (stamps[-1] if stamps else clock()) - t0


def _reason(exc: BaseException) -> str:
    return without_credentials(str(exc) or type(exc).__name__)


async def _watch_interrupt(state: _State, ctrl_c: Any) -> None:
    """Ctrl-C under the runner's guard only sets a flag: stop launching, cancel streams."""
    while True:
        await asyncio.sleep(0.05)
        if ctrl_c.pending:
            state.stop()
            return


async def _wait_idle(client: Any, target: Target, timeout_s: float) -> None:
    """Until llama-server's /slots shows no slot processing (best effort: other servers,
    or a llama-server started with --no-slots, have nothing to ask)."""
    if not target.base_url:
        return
    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        try:
            slots = await _small_json(client, f"{target.base_url}/slots")
        except Exception:  # noqa: BLE001 - an idle check must never fail the level
            return
        if not isinstance(slots, list) or not any(
                isinstance(s, dict) and s.get("is_processing") for s in slots):
            return
        await asyncio.sleep(0.05)


async def _small_json(client: Any, url: str, limit: int = 1 << 20) -> Any:
    """GET `url` as JSON, reading at most `limit` decoded bytes (None past it or on an
    error status): a server's answer about its slots is small."""
    async with client.stream("GET", url, timeout=5.0) as resp:
        if resp.status_code != 200:
            return None
        got: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            got.append(chunk)
            size += len(chunk)
            if size > limit:
                return None
    return json.loads(b"".join(got))


# --------------------------------------------------------------------------- prompts

def token_prompts(base_url: str, n_tokens: int, count: int, seed: int,
                  timeout_s: float = 30.0) -> list[Prompt]:
    """`count` prompts of exactly `n_tokens` token ids, cut from one seeded text that
    llama-server's /tokenize turns into ids (one call, before the level), each starting
    at a different offset so that no two share a prefix."""
    import httpx

    from benchkit.engines.http.client import fetch

    shown = without_credentials(base_url)
    text = " ".join(synthetic_texts(n_tokens + 4 * count, 1, seed))
    try:
        status, raw = fetch("POST", f"{base_url}/tokenize", body={"content": text},
                            timeout_s=timeout_s)
        doc = json.loads(raw) if status == 200 else None
    except (httpx.HTTPError, ValueError, BenchkitError) as exc:
        reason = exc.message if isinstance(exc, BenchkitError) else _reason(exc)
        raise BenchkitError(f"cannot tokenize the prompts at {shown}/tokenize: {reason}",
                            field="serve.prompt_tokens") from None
    ids = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or len(ids) < n_tokens + 4 * (count - 1) or \
            not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BenchkitError(f"{shown}/tokenize did not return enough token ids",
                            field="serve.prompt_tokens")
    return [Prompt(token_ids=tuple(ids[4 * i:4 * i + n_tokens])) for i in range(count)]

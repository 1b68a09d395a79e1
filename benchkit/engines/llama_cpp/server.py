"""llama-server: llama.cpp's HTTP server, started and stopped by benchkit on loopback.

The server is the same llama.cpp as the in-process engine when it comes from
`benchkit engines build` (the vendored source of the installed llama-cpp-python, same
backend). One server per engine configuration: the suite's llama.cpp settings become its
command line (`-ngl -c -b -ub -t -fa -ctk -ctv -lm`, and `--split-mode --tensor-split
--main-gpu --device` where they differ from llama.cpp's defaults, spelled as the vendored
`common/arg.cpp` spells them), `args` adds any other flag (e.g. `["-np", "4"]`).

Measured through the native API, `POST /completion`, on prompts given as token ids (no
tokenization in the server; random ids, as llama-bench's prompts), with the prompt cache
off, so that every iteration does the whole work:

- pp N: an N-token prompt, one token sampled. Figure: the server's own `timings`
  (prompt_n over prompt_ms, clock "server"); the request's wall time on the client beside it.
- tg N: a 1-token prompt, then N+1 tokens with end of sequence ignored. The first comes from
  the prompt's logits, so the server's `predicted_ms` (first token -> last) times exactly N
  decodes, as llama-bench's tg N; figure: (predicted_n - 1) / predicted_ms, clock "server",
  which is the server's own `predicted_per_second`. The response is streamed and every event
  stamped on arrival: the client's decode rate over the same tokens (first -> last event) is
  recorded beside it (`client_tps`), and the difference between them is what HTTP and the
  server's streaming cost.
- pp N + tg M: both in one request; (prompt_n + predicted_n - 1) over prompt_ms + predicted_ms.
- chat: the suite's prompt as text, streamed, timed on the client as the in-process chat
  (time to first token, every token's latency, decode rate first -> last), with the
  server's timings beside.
- serve: the load generator of the `serve` workload drives `session.endpoint`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit.engines.base import CLOCK_SERVER, Endpoint, Engine, Iteration, ModelFile, Session, \
    setting
from benchkit.engines.http.client import SECONDS_SCHEMA, HttpClient, ManagedServer, Stream, Timed
from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

DEFAULT_CTX = 4096          # -c when n_ctx is unset: pp512+tg128, chat 128, up to pp4000
ALL_LAYERS = "999"          # -ngl for n_gpu_layers -1: more than any model has
LOG_HEAD_BYTES = 4 * 2**20  # of the server's log: its load and context lines come first
_SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 42}  # chat's defaults


@dataclass(frozen=True)
class Options(LlamaCppOptions):
    """llama.cpp's settings, and how to run the server."""

    binary: str | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1}],
               "x-error": "must be the path of a llama-server binary"},
        "llama-server binary; default: $BENCHKIT_LLAMA_SERVER, PATH, then the build of "
        "`benchkit engines build`", sweep=False, column=False)
    args: list[str] | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "string"}}],
               "x-error": "must be a list of command-line arguments, e.g. [\"-np\", \"4\"]"},
        "extra llama-server arguments, after benchkit's (e.g. [\"-np\", \"4\"])", sweep=False)
    draft_model: str | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1}],
               "x-error": "must be the path of a GGUF draft model (same vocabulary)"},
        "speculative decoding: a draft model for llama-server's -md (same vocabulary as "
        "the model)", sweep=False)
    draft_max: int | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1, "maximum": 1024}],
               "x-error": "must be an integer >= 1: most tokens drafted at a time"},
        "speculative decoding: --spec-draft-n-max (formerly --draft-max), the most tokens "
        "drafted at a time", sweep=True)
    draft_min: int | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 0, "maximum": 1024}],
               "x-error": "must be an integer >= 0: fewest tokens drafted at a time"},
        "speculative decoding: --spec-draft-n-min (formerly --draft-min), the fewest "
        "tokens drafted at a time", sweep=False)
    draft_p_min: float | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0, "maximum": 1}],
               "x-error": "must be a probability from 0 to 1"},
        "speculative decoding: --spec-draft-p-min (--draft-p-min), the draft's least "
        "probability to go on",
        sweep=False)
    ready_timeout_s: float = setting(
        300.0, SECONDS_SCHEMA, "seconds to wait for the server to load the model and answer "
        "GET /health", sweep=False, column=False)
    timeout_s: float = setting(
        600.0, SECONDS_SCHEMA, "seconds one request may take, from sending it to the last "
        "byte of its answer (streamed or not)", sweep=False, column=False)


class LlamaServer(Engine):
    kind = "llama-server"
    order = 20
    layer = "HTTP/JSON server layer (llama.cpp's llama-server)"
    Options = Options
    workloads = frozenset({"pp", "tg", "pp+tg", "chat", "serve"})
    tools = ("llama-server",)       # the llama.cpp binaries it runs (`engines list`)

    def unsupported(self, workload: Workload) -> str | None:
        if workload.depth:
            return ("a context depth (tokens in the KV cache before the timed part) is not "
                    "measured through the server; run it in process or with llama-bench")
        return super().unsupported(workload)

    def open(self, model: ModelFile | None) -> Session:
        from benchkit.engines.llama_cpp.build import find_tool

        if model is None:
            raise BenchkitError("llama-server needs a model file")
        binary = find_tool("llama-server", self.options.binary)
        if self.options.draft_model:
            check_draft(model.path, os.path.expanduser(self.options.draft_model))
        session = ServerSession(self.options, model, binary)
        try:
            session.start()
        except BaseException:
            session.close()
            raise
        return session


def vocabulary_size(path: str) -> int | None:
    """A GGUF file's vocabulary: the rows of its token embedding (else its tokenizer's
    token list), from the header alone."""
    from benchkit.models.gguf import read_header

    header = read_header(path)
    for t in header.tensors:
        if t.name == "token_embd.weight" and len(t.shape) >= 2:
            return int(t.shape[1])
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    n = getattr(tokens, "length", None)
    return int(n) if n is not None else (len(tokens) if isinstance(tokens, list) else None)


def check_draft(model_path: str, draft_path: str) -> None:
    """Refuse a draft model whose vocabulary differs from the model's, in one line: this
    llama-server starts with such a draft all the same, and its drafts would be tokens of
    another vocabulary."""
    name = Path(draft_path).name
    if not os.path.isfile(draft_path):
        raise BenchkitError(f"draft_model {name}: no such file ({draft_path})",
                            field="engine.draft_model")
    mine, theirs = vocabulary_size(model_path), vocabulary_size(draft_path)
    if mine is not None and theirs is not None and mine != theirs:
        raise BenchkitError(f"draft_model {name} has a vocabulary of {theirs:,} tokens, the "
                            f"model {Path(model_path).name} {mine:,}: speculative decoding "
                            "needs the same vocabulary; refused", field="engine.draft_model")


def server_argv(binary: Path | str, model_path: str, o: Options, n_ctx: int,
                port: int) -> list[str]:
    """The command line: benchkit's flags, then the suite's `args` (later flags win).
    `--metrics` serves Prometheus figures at /metrics (the serve workload scrapes them)."""
    ngl = ALL_LAYERS if o.n_gpu_layers < 0 else str(o.n_gpu_layers)
    argv = [str(binary), "-m", model_path, "--host", "127.0.0.1", "--port", str(port),
            "-ngl", ngl, "-c", str(n_ctx), "-b", str(o.n_batch), "-ub", str(o.n_ubatch),
            "-t", str(o.n_threads), "-fa", o.flash_attn_flag(), "-ctk", o.type_k,
            "-ctv", o.type_v, "-lm", "mmap" if o.use_mmap else "none"]
    if not o.op_offload:
        argv.append("--no-op-offload")
    argv += o.multi_device_flags(sep=",", long=True)
    argv.append("--metrics")
    if o.draft_model:      # this llama.cpp drafts only with a --spec-type named
        argv += ["-md", os.path.expanduser(o.draft_model), "--spec-type", "draft-simple"]
    # this llama.cpp spells them --spec-draft-*; --draft-max / --draft-min are removed there
    for flag, value in (("--spec-draft-n-max", o.draft_max), ("--spec-draft-n-min", o.draft_min),
                        ("--spec-draft-p-min", o.draft_p_min)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + list(o.args or [])


class ServerSession(Session):
    """One llama-server process serving the suite's model; restarted if it dies."""

    def __init__(self, options: Options, model: ModelFile, binary: Path) -> None:
        self.options, self.model, self.binary = options, model, binary
        self.n_ctx = options.n_ctx or DEFAULT_CTX
        self.server = ManagedServer(
            "llama-server",
            lambda port: server_argv(binary, model.path, options, self.n_ctx, port))
        self.client: HttpClient | None = None
        self.props: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.endpoint: Endpoint | None = None
        self._rng = random.Random(0x5EED)
        self._version: dict[str, Any] | None = None

    # --- lifecycle

    def start(self) -> None:
        """Start the server, wait for /health, then check it serves the suite's file."""
        self.server.start(self.options.ready_timeout_s)
        self.load_seconds = self.server.start_seconds
        if self.client is not None:
            self.client.close()
        self.client = HttpClient(self.server.base_url, "llama-server",
                                 timeout_s=self.options.timeout_s, server=self.server)
        self.props = self.client.get_json("/props")
        models = self.client.get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        self.meta = first.get("meta") or {}
        self._check_model()
        base = self.server.base_url
        self.endpoint = Endpoint(base, "llama-server", first.get("id"), base + "/v1")

    def _check_model(self) -> None:
        served = self.props.get("model_path")
        if not served:
            raise BenchkitError("llama-server did not report its model_path (GET /props): "
                                "cannot check it serves the suite's model")
        if not _same_file(served, self.model.path):
            raise BenchkitError(f"llama-server serves {Path(served).name}, not the suite's "
                                f"model {Path(self.model.path).name}")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        self.server.stop()

    def without_draft(self) -> "ServerSession | None":
        """The same server without its draft model, started now beside this one (the
        caller closes it): what speculative decoding's speedup is measured against
        (benchkit.workloads.serve.speculative). None when this server has no draft."""
        if not self.options.draft_model:
            return None
        plain = dataclasses.replace(self.options, draft_model=None, draft_max=None,
                                    draft_min=None, draft_p_min=None)
        twin = ServerSession(plain, self.model, self.binary)
        try:
            twin.start()
        except BaseException:
            twin.close()
            raise
        return twin

    # --- what it is

    def facts(self) -> dict[str, Any]:
        from benchkit.engines.llama_cpp.build import tool_version

        if self._version is None:
            try:
                self._version = tool_version(self.binary)
            except BenchkitError as exc:
                self._version = {"error": exc.message}
        gen = self.props.get("default_generation_settings") or {}
        draft = os.path.expanduser(self.options.draft_model) if self.options.draft_model else None
        return {
            "name": "llama-server", "process": "separate process on loopback, started by "
            "benchkit", "url": self.server.base_url, "version": self._version,
            # what llama-bench would write for this build and model: exports line up
            "build_commit": self._version.get("build_commit"),
            "build_number": self._version.get("build_number"),
            "model_type": self._model_type(),
            "build_info": self.props.get("build_info"),
            "model_file": Path(self.props.get("model_path") or "").name or None,
            "model_match": "same file",
            "n_ctx": self.n_ctx, "n_ctx_slot": gen.get("n_ctx"),
            "total_slots": self.props.get("total_slots"),
            "n_vocab": self.meta.get("n_vocab"),
            "argv": [Path(a).name if a in (self.model.path, draft) else a
                     for a in self.server.argv[1:]],   # models by name: no local paths
            "draft_model": Path(draft).name if draft else None,
            "start_seconds": self.server.start_seconds,
        }

    def _model_type(self) -> str | None:
        """llama.cpp's description of the served file (llama_model_desc, read without its
        weights), or None when this process cannot read it."""
        from benchkit.engines.llama_cpp.native import describe_model

        try:
            return describe_model(self.model.path)
        except (ImportError, OSError):
            return None

    def placement(self) -> dict[str, Any] | None:
        """Where the layers went, as far as it can be known. llama-server prints its
        buffer, device and offload lines only at verbosity 4 (`args: ["-lv", "4"]`; more
        would log every token, which costs decode time): where its log holds them, they
        are read as the in-process engine reads them, per device; otherwise this is -ngl
        on a build that can offload, labelled as such."""
        try:
            import llama_cpp

            gpu_build = bool(llama_cpp.llama_supports_gpu_offload())
        except Exception:  # noqa: BLE001 - no in-process llama.cpp to ask
            gpu_build = False
        logged = self._logged_placement(gpu_build)
        if logged is not None:
            return logged
        on_gpu = gpu_build and self.options.n_gpu_layers != 0
        return {"device_kind": "gpu" if on_gpu else "cpu",
                "n_gpu_layers_requested": self.options.n_gpu_layers,
                "gpu_offload_supported": gpu_build, "buffers": [],
                **self.options.split_asked(),
                "note": "llama-server does not report where layers went at its default "
                        "verbosity; from -ngl and whether this llama.cpp build can offload"}

    def _logged_placement(self, gpu_build: bool) -> dict[str, Any] | None:
        """The placement in the server's log, or None where it printed no buffer line."""
        from benchkit.engines.llama_cpp.placement import Placement, parse_placement

        path = self.server.log_path
        if path is None or not path.exists():
            return None
        with open(path, "rb") as f:
            head = f.read(LOG_HEAD_BYTES).decode("utf-8", errors="replace")
        p = Placement(n_gpu_layers_requested=self.options.n_gpu_layers,
                      gpu_offload_supported=gpu_build, asked=self.options.split_asked())
        parse_placement(head.splitlines(), p)
        if not p.buffers:
            return None
        p.note = "from llama-server's log (verbosity 4)"
        return p.to_dict()

    # --- measuring

    def prepare(self, workload: Workload) -> list[str]:
        warnings = []
        if not self.server.alive():
            how = self.server.exit_description()
            self.server.stop()
            self.start()
            warnings.append(f"llama-server had exited ({how}); restarted it for this test")
        if workload.kind == "serve":
            return warnings
        need = self._context_needed(workload)
        slot = int((self.props.get("default_generation_settings") or {}).get("n_ctx")
                   or self.n_ctx)
        if need > slot:
            per = f" ({slot} per slot)" if slot != self.n_ctx else ""
            raise BenchkitError(f"{workload.test} needs a context of {need} tokens; "
                                f"llama-server was started with -c {self.n_ctx}{per}",
                                field="engine.n_ctx")
        return warnings

    def _context_needed(self, w: Workload) -> int:
        if w.kind == "chat":
            doc = self._http().post_json("/tokenize", {"content": w.prompt, "add_special": True})
            tokens = doc.get("tokens") if isinstance(doc, dict) else None
            if not isinstance(tokens, list):
                raise BenchkitError(f"{self._http().base_url}/tokenize answered without a list "
                                    f"of tokens ({type(doc).__name__}): cannot size the chat")
            return len(tokens) + w.max_tokens
        if w.kind == "pp":
            return w.n_prompt + 1
        return max(w.n_prompt, 1) + w.n_gen + 1

    def iteration(self, w: Workload) -> Iteration:
        if w.kind == "pp":
            return self._pp(w)
        if w.kind == "chat":
            return self._chat(w)
        return self._generate(w)

    def _pp(self, w: Workload) -> Iteration:
        body = {**self._fixed(), "prompt": self._tokens(w.n_prompt), "n_predict": 1,
                "stream": False}
        doc, wall = self._http().timed_post("/completion", body)
        t = _timings(doc, self.server.base_url)
        n = int(t["prompt_n"])
        return Iteration(n, t["prompt_ms"] / 1000.0, clock=CLOCK_SERVER,
                         extra={"client_seconds": wall, "client_tps": w.n_prompt / wall,
                                "server_timings": t})

    def _generate(self, w: Workload) -> Iteration:
        """tg N and pp N + tg M: streamed, N (M) decodes timed by the server and the client."""
        n_prompt = w.n_prompt if w.kind == "pp+tg" else 1
        body = {**self._fixed(), "prompt": self._tokens(n_prompt), "n_predict": w.n_gen + 1,
                "ignore_eos": True, "stream": True}
        timed, final = self._stream(body)
        t = _timings(final, self.server.base_url)
        extra: dict[str, Any] = {"server_timings": t, "n_events": len(timed.times)}
        if w.kind == "tg":
            tokens, seconds = int(t["predicted_n"]) - 1, t["predicted_ms"] / 1000.0
            extra.update(client_tokens=timed.decode_tokens, client_seconds=timed.decode_s,
                         client_tps=_rate(timed.decode_tokens, timed.decode_s))
        else:
            tokens = int(t["prompt_n"]) + int(t["predicted_n"]) - 1
            seconds = (t["prompt_ms"] + t["predicted_ms"]) / 1000.0
            client_tokens = w.n_prompt + timed.decode_tokens
            extra.update(client_tokens=client_tokens, client_seconds=timed.total_s,
                         client_tps=_rate(client_tokens, timed.total_s))
        return Iteration(tokens, seconds, clock=CLOCK_SERVER, extra=extra)

    def _chat(self, w: Workload) -> Iteration:
        body = {**self._fixed(), "prompt": w.prompt, "n_predict": w.max_tokens,
                "ignore_eos": True, "stream": True, "temperature": w.temperature,
                "top_k": w.top_k, "top_p": w.top_p, "seed": w.seed}
        timed, final = self._stream(body)
        t = final.get("timings") or {}
        n_gen = timed.n_tokens
        return Iteration(timed.decode_tokens, timed.decode_s, ttft_s=timed.ttft_s,
                         token_latencies_s=timed.latencies(),
                         extra={"n_prompt": t.get("prompt_n", final.get("tokens_evaluated")),
                                "n_generated": n_gen,
                                "decode_tps": _rate(timed.decode_tokens, timed.decode_s),
                                "total_s": timed.total_s, "server_timings": t or None})

    def _stream(self, body: dict[str, Any]) -> tuple[Timed, dict[str, Any]]:
        """POST /completion streamed: token events on the client's clock, and the final
        event (the one with `stop: true`, which carries the timings)."""
        stream = self._http().stream("/completion", body)
        return parse_completion_stream(stream)

    def _fixed(self) -> dict[str, Any]:
        return {**_SAMPLING, "cache_prompt": False}

    def _tokens(self, n: int) -> list[int]:
        """n random token ids, as llama-bench's prompts (a new draw every request)."""
        n_vocab = self.meta.get("n_vocab")
        if not n_vocab:
            raise BenchkitError("llama-server did not report n_vocab (GET /v1/models): "
                                "cannot make a prompt of random tokens")
        rand = self._rng.randrange
        return [rand(int(n_vocab)) for _ in range(n)]

    def _http(self) -> HttpClient:
        if self.client is None:
            raise BenchkitError("llama-server is not running")
        return self.client


def parse_completion_stream(stream: Stream) -> tuple[Timed, dict[str, Any]]:
    """llama-server's /completion events: each partial says how many tokens are decoded so
    far (`tokens_predicted`), so a token held back for an incomplete UTF-8 character is
    counted with the event that carries it."""
    timed = Timed(stream.t_submit)
    final: dict[str, Any] | None = None
    seen = 0
    for t, event in stream.json_events("llama-server"):
        if event.get("stop"):
            final = event
            break
        said = event.get("tokens_predicted")
        done = said if isinstance(said, int) and not isinstance(said, bool) and said > seen \
            else seen + 1
        timed.add(t, done - seen)
        seen = done
    if final is None:
        raise BenchkitError(f"{stream.url}: the stream ended without its final event "
                            f"(stop: true)")
    return timed, final


def _timings(doc: Any, url: str) -> dict[str, Any]:
    t = doc.get("timings") if isinstance(doc, dict) else None
    need = ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms")
    if not isinstance(t, dict) or any(not _finite(t.get(k)) for k in need):
        raise BenchkitError(f"{url}/completion answered without its timings as numbers "
                            f"(prompt_n, prompt_ms, predicted_n, predicted_ms)")
    return t


def _finite(value: Any) -> bool:
    """A number JSON can hold (the writer checks the rest: benchkit.results.io.case_problem)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _rate(tokens: int, seconds: float) -> float | None:
    return tokens / seconds if seconds > 0 else None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)

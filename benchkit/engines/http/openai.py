"""Any OpenAI-compatible server already running at a URL: LM Studio, vLLM, mlx_lm.server,
llama-cpp-python's server, llama.cpp's server, Ollama's /v1. Which server it is is data
(`url`, `model`), not code.

benchkit does not start these servers and does not choose their settings; it records what
the server says it serves (GET /models) and fails the case when that is not the suite's
model. Measured on the client's clock, streaming (server-sent events), every event stamped
on arrival:

- chat: POST /chat/completions with the suite's prompt as one user message; time to first
  token, every token's latency, the decode rate first -> last token. Token counts come from
  the server's `usage` when it sends one (`stream_options.include_usage`), else one token
  per content event.
- tg N: POST /completions with a short prompt and max_tokens N+1, so that first -> last
  token spans N decodes (the first token comes from the prompt). A server that stops early
  (end of sequence) makes the iteration's tokens the real count, with a warning.
- pp: the OpenAI API reports no prompt-processing time, only token counts (see
  `PP_UNSUPPORTED`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit.engines.base import Endpoint, Engine, Iteration, ModelFile, Options, Session, \
    setting
from benchkit.engines.http.client import SECONDS_SCHEMA, URL_SCHEMA, HttpClient, Stream, Timed, \
    api_key_headers
from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

TG_PROMPT = "Once upon a time"
PP_UNSUPPORTED = ("the OpenAI API reports no prompt-processing time (only token counts; on "
                  "the client it would be the time to first token); measure pp through the "
                  "server's native API: the llama-server or ollama engine")
_NULL_OR_STRING = {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1}],
                   "x-error": "must be a non-empty string"}


@dataclass(frozen=True)
class OpenAIOptions(Options):
    """Where the server is and which of its models to ask for."""

    url: str | None = setting(
        None, {"anyOf": [{"type": "null"}, URL_SCHEMA], "x-error": URL_SCHEMA["x-error"]},
        "the API's base URL, with its /v1 (e.g. http://127.0.0.1:1234/v1)", sweep=False)
    model: str | None = setting(
        None, _NULL_OR_STRING, "the model id to ask for (GET /models lists them); default: "
        "the only one served", sweep=False)
    api_key_env: str | None = setting(
        None, _NULL_OR_STRING, "name of the environment variable holding the API key (the "
        "key is never recorded)", sweep=False, column=False)
    timeout_s: float = setting(
        600.0, SECONDS_SCHEMA, "seconds one request may take, from sending it to the "
        "last byte of its answer (streamed or not)", sweep=False, column=False)
    extensions: bool = setting(
        True, {"type": "boolean", "x-error": "must be true or false"},
        "also send the fields llama.cpp's server, llama-cpp-python, vLLM and LM Studio take "
        "beyond the OpenAI API (top_k, ignore_eos, min_tokens), so that every token asked "
        "for is generated and sampling matches the in-process chat; false for servers that "
        "refuse unknown fields", sweep=False, column=False)


class OpenAICompatible(Engine):
    kind = "openai"
    order = 30
    layer = "HTTP/JSON server, OpenAI-compatible API"
    Options = OpenAIOptions
    workloads = frozenset({"tg", "chat", "serve"})
    uses_model_file = False

    def unsupported(self, workload: Workload) -> str | None:
        if workload.kind in ("pp", "pp+tg"):
            return PP_UNSUPPORTED
        if workload.depth:
            return ("a context depth (tokens in the KV cache before the timed part) cannot "
                    "be set up through the OpenAI API")
        return super().unsupported(workload)

    def open(self, model: ModelFile | None) -> Session:
        o = self.options
        if not o.url:
            raise BenchkitError("the openai engine needs url: (e.g. http://127.0.0.1:1234/v1)",
                                field="url")
        client = HttpClient(o.url, "openai server", timeout_s=o.timeout_s,
                            headers=api_key_headers(o.api_key_env))
        try:
            return OpenAISession(o, client, model)
        except BaseException:
            client.close()
            raise


class OpenAISession(Session):
    """A connection to the server; the model it serves checked against the suite's."""

    def __init__(self, options: OpenAIOptions, client: HttpClient,
                 model: ModelFile | None) -> None:
        self.options, self.client = options, client
        self.served = served_models(client)
        self.model_id = choose_model(self.served, options.model, client.base_url)
        self.match = check_identity(self.model_id, model) if model is not None else None
        self.endpoint = Endpoint(client.request_base, "openai", self.model_id,
                                 client.request_base)      # requests carry any credentials
        self._warnings: list[str] = []

    def facts(self) -> dict[str, Any]:
        return {"name": "openai", "process": "server at a URL, not started by benchkit",
                "url": self.client.base_url, "served_models": self.served[:20],
                "model": self.model_id, "model_match": self.match}

    def take_warnings(self) -> list[str]:
        """What iterations noticed (a server that stopped early), once."""
        out, self._warnings = self._warnings, []
        return list(dict.fromkeys(out))

    def iteration(self, w: Workload) -> Iteration:
        if w.kind == "chat":
            return self._chat(w)
        return self._tg(w)

    def _tg(self, w: Workload) -> Iteration:
        asked = w.n_gen + 1
        body = {"model": self.model_id, "prompt": TG_PROMPT, "max_tokens": asked,
                "temperature": 0.8, "top_p": 0.95, "seed": 42, **self._stream_fields(),
                **self._extensions(asked)}
        r = parse_openai_stream(self.client.stream("/completions", body), chat=False)
        if r.n_generated < asked:
            self._warnings.append(
                f"the server stopped after {r.n_generated} of {asked} tokens "
                f"(finish_reason {r.finish_reason}): iterations count the real tokens")
        return Iteration(r.decode_tokens, r.timed.decode_s, ttft_s=r.timed.ttft_s,
                         extra=r.extra(asked))

    def _chat(self, w: Workload) -> Iteration:
        body = {"model": self.model_id, "messages": [{"role": "user", "content": w.prompt}],
                "max_tokens": w.max_tokens, "temperature": w.temperature, "top_p": w.top_p,
                "seed": w.seed, **self._stream_fields(), **self._extensions(w.max_tokens)}
        if self.options.extensions:
            body["top_k"] = w.top_k
        r = parse_openai_stream(self.client.stream("/chat/completions", body), chat=True)
        if r.n_generated < w.max_tokens:
            self._warnings.append(
                f"the server stopped after {r.n_generated} of {w.max_tokens} tokens "
                f"(finish_reason {r.finish_reason})")
        return Iteration(r.decode_tokens, r.timed.decode_s, ttft_s=r.timed.ttft_s,
                         token_latencies_s=r.timed.latencies(),
                         extra={"n_prompt": r.usage.get("prompt_tokens"), **r.extra(w.max_tokens)})

    @staticmethod
    def _stream_fields() -> dict[str, Any]:
        return {"stream": True, "stream_options": {"include_usage": True}}

    def _extensions(self, n: int) -> dict[str, Any]:
        return {"ignore_eos": True, "min_tokens": n} if self.options.extensions else {}

    def close(self) -> None:
        self.client.close()


@dataclass
class StreamResult:
    """An OpenAI stream, parsed after it ended."""

    timed: Timed
    usage: dict[str, Any]
    finish_reason: str | None
    server_timings: dict[str, Any] | None

    @property
    def n_generated(self) -> int:
        """The server's count (usage) when it sent one, else one per content event."""
        n = self.usage.get("completion_tokens")
        return int(n) if isinstance(n, int) and n > 0 else self.timed.n_tokens

    @property
    def decode_tokens(self) -> int:
        """Tokens after the first event: the decode rate's numerator."""
        return max(self.n_generated - (self.timed.counts[0] if self.timed.counts else 0), 0)

    def extra(self, asked: int) -> dict[str, Any]:
        t = self.timed
        out: dict[str, Any] = {
            "n_generated": self.n_generated, "n_asked": asked, "n_events": len(t.times),
            "tokens_counted_from": "usage" if self.usage.get("completion_tokens") else "events",
            "finish_reason": self.finish_reason, "total_s": t.total_s,
            "decode_tps": self.decode_tokens / t.decode_s if t.decode_s > 0 else None}
        if self.server_timings:
            out["server_timings"] = self.server_timings
        return out


def parse_openai_stream(stream: Stream, *, chat: bool) -> StreamResult:
    """Content events (text, or a chat delta's content / reasoning_content) as token events;
    the usage chunk; `data: [DONE]` ends it. llama.cpp's server adds its `timings`."""
    timed = Timed(stream.t_submit)
    usage: dict[str, Any] = {}
    finish: str | None = None
    timings: dict[str, Any] | None = None
    for t, event in stream.json_events():
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        if isinstance(event.get("timings"), dict):
            timings = event["timings"]
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if chat:
                delta = choice.get("delta") or {}
                text = delta.get("content") or delta.get("reasoning_content")
            else:
                text = choice.get("text")
            if text:
                timed.add(t, 1)
            finish = choice.get("finish_reason") or finish
    if not timed.times:
        raise BenchkitError(f"{stream.url}: the server streamed no tokens "
                            f"(finish_reason {finish})")
    return StreamResult(timed, usage, finish, timings)


def served_models(client: HttpClient) -> list[str]:
    """The model ids of GET /models."""
    doc = client.get_json("/models")
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise BenchkitError(f"{client.base_url}/models answered without a data list: "
                            f"not an OpenAI-compatible API at this URL?")
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]


def choose_model(served: list[str], wanted: str | None, url: str) -> str:
    """`wanted` if the server serves it; else the only model served."""
    listed = ", ".join(served[:10]) or "none"
    if wanted:
        if wanted not in served:
            raise BenchkitError(f"{url} does not serve model {wanted!r} (it serves: {listed})",
                                field="model")
        return wanted
    if len(served) != 1:
        raise BenchkitError(f"{url} serves {len(served)} models ({listed}): say which with "
                            f"model:", field="model")
    return served[0]


def check_identity(served_id: str, model: ModelFile) -> str:
    """How the served model id names the suite's model: the same file (an id that is its
    path), its file name, or its name. Anything else is another model."""
    file = Path(model.path).name
    if os.path.isfile(served_id):
        try:
            if os.path.samefile(served_id, model.path):
                return "same file"
        except OSError:
            pass
    base = served_id.replace("\\", "/").rsplit("/", 1)[-1].lower()
    base = base.removesuffix(":latest")
    if base == file.lower():
        return "same file name"
    names = {Path(file).stem.lower(), (model.name or "").lower(),
             Path(model.name or "").stem.lower()} - {""}
    if base in names:
        return "same name"
    raise BenchkitError(f"the server serves {served_id!r}, not the suite's model {file}"
                        f"{f' ({model.name})' if model.name and model.name != file else ''}: "
                        f"if it is the same model, give it the server's name in the suite "
                        f"(models: - name: {base})")

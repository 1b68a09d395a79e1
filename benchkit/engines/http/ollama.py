"""Ollama, already running at a URL, through its native API.

Requests go to `POST /api/generate` with `raw: true` (no prompt template: the same text
the in-process engine decodes) and `options` (`num_predict` and the sampling settings,
over the suite's own `options:` such as num_ctx, num_gpu, num_thread). The response
streams as newline-delimited JSON; its last line carries Ollama's own figures
(`prompt_eval_count`, `prompt_eval_duration`, `eval_count`, `eval_duration`, in
nanoseconds), which are each iteration's figure (clock "server"); the client's timing of
the same stream is recorded beside them.

- pp N: a prompt of about N tokens (random common words; Ollama takes text, not token ids,
  and reuses a cached prompt prefix, so every request draws new words), one token
  generated. Figure: prompt_eval_count over prompt_eval_duration; the real count is the
  iteration's tokens.
- tg N: a short prompt, num_predict N+1 (as the other engines: first -> last token spans N
  decodes). Figure: eval_count over eval_duration, Ollama's "eval rate"; the client's
  decode rate (first -> last line) beside it.
- pp N + tg M: (prompt_eval_count + eval_count) over the two durations.
- chat: the suite's prompt, timed on the client (time to first token, every token's
  latency, decode rate), Ollama's figures beside.

Model identity: `POST /api/show` says what the tag is (family, parameter size,
quantization, and in its Modelfile the sha256 of the GGUF blob); it must be the suite's
file (same sha256) or, when Ollama's blob differs, the same architecture, parameter count
and quantization as the file's GGUF header (a warning says the files differ). Ollama's
OpenAI-compatible API is the `openai` engine with url: http://HOST:11434/v1.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchkit.engines.base import CLOCK_SERVER, Endpoint, Engine, Iteration, ModelFile, \
    Options, Session, setting
from benchkit.engines.http.client import SECONDS_SCHEMA, URL_SCHEMA, HttpClient, Stream, Timed, \
    status_error
from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

DEFAULT_URL = "http://127.0.0.1:11434"
TG_PROMPT = "Once upon a time"
# Common English words that are one token in the usual BPE vocabularies (with their space).
WORDS = ("the of and to in is it that for on with as was at by be this are from or have an "
         "they which one you were her all she there would their we him been has when who "
         "will more no if out so said what up its about into than them can only other new "
         "some could time these two may then do first any my now such like our over man me "
         "even most made after also did many before must through back years where much your "
         "way well down should because each just those people how too little state good "
         "very make world still own see men work long get here between both life being under "
         "never day same another know while last might us great old year off come since "
         "against go came right used take three").split()
_SHA = re.compile(r"sha256[-:]([0-9a-f]{64})")


@dataclass(frozen=True)
class OllamaOptions(Options):
    """Where Ollama is, which model tag, and what to pass in its `options`."""

    url: str = setting(DEFAULT_URL, URL_SCHEMA, "Ollama's base URL", sweep=False)
    model: str | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1}],
               "x-error": "must be an Ollama model tag, e.g. tinyllama"},
        "the Ollama model tag (ollama list shows them)", sweep=False)
    keep_alive: str | int | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1},
                         {"type": "integer"}],
               "x-error": "must be a duration such as 10m, or seconds"},
        "how long Ollama keeps the model loaded after a request (its keep_alive)",
        sweep=False, column=False)
    options: dict[str, Any] | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "object"}],
               "x-error": "must be a mapping of Ollama options (num_ctx, num_gpu, ...)"},
        "Ollama `options` sent with every request (num_ctx, num_gpu, num_thread, ...); "
        "benchkit sets num_predict and the sampling ones", sweep=False)
    timeout_s: float = setting(
        600.0, SECONDS_SCHEMA, "seconds one request may take, from sending it to the "
        "last byte of its answer (streamed or not)", sweep=False, column=False)


class Ollama(Engine):
    kind = "ollama"
    order = 40
    layer = "HTTP/JSON server (Ollama)"
    Options = OllamaOptions
    workloads = frozenset({"pp", "tg", "pp+tg", "chat", "serve"})
    uses_model_file = False

    def unsupported(self, workload: Workload) -> str | None:
        if workload.depth:
            return ("a context depth (tokens in the KV cache before the timed part) cannot "
                    "be set up through Ollama's API")
        return super().unsupported(workload)

    def open(self, model: ModelFile | None) -> Session:
        o = self.options
        if not o.model:
            raise BenchkitError("the ollama engine needs model: (an Ollama tag, e.g. "
                                "tinyllama)", field="model")
        client = HttpClient(o.url, "ollama", timeout_s=o.timeout_s)
        try:
            return OllamaSession(o, client, model)
        except BaseException:
            client.close()
            raise


class OllamaSession(Session):
    def __init__(self, options: OllamaOptions, client: HttpClient,
                 model: ModelFile | None) -> None:
        self.options, self.client = options, client
        self.version = _version(client)
        self.show = show_model(client, str(options.model))
        self.identity, self._identity_warning = check_identity(self.show, model)
        self._warnings: list[str] = []
        self._rng = random.Random(0x5EED)
        self.endpoint = Endpoint(client.request_base, "ollama", options.model,
                                 client.request_base + "/v1")   # with any credentials

    def facts(self) -> dict[str, Any]:
        d = self.show.get("details") or {}
        return {"name": "ollama", "process": "server at a URL, not started by benchkit",
                "url": self.client.base_url, "version": self.version,
                "model": self.options.model, "family": d.get("family"),
                "parameter_size": d.get("parameter_size"),
                "quantization_level": d.get("quantization_level"), **self.identity}

    def prepare(self, workload: Workload) -> list[str]:
        """The identity warning, with the first test only."""
        warning, self._identity_warning = self._identity_warning, None
        return [warning] if warning else []

    def take_warnings(self) -> list[str]:
        out, self._warnings = self._warnings, []
        return list(dict.fromkeys(out))

    def iteration(self, w: Workload) -> Iteration:
        if w.kind == "chat":
            return self._chat(w)
        if w.kind == "pp":
            return self._pp(w)
        return self._generate(w)

    def _body(self, prompt: str, num_predict: int, **sampling: Any) -> dict[str, Any]:
        opts = {**(self.options.options or {}), "temperature": 0.8, "top_k": 40,
                "top_p": 0.95, "seed": 42, **sampling, "num_predict": num_predict}
        body: dict[str, Any] = {"model": self.options.model, "prompt": prompt, "raw": True,
                                "stream": True, "options": opts}
        if self.options.keep_alive is not None:
            body["keep_alive"] = self.options.keep_alive
        return body

    def _pp(self, w: Workload) -> Iteration:
        body = {**self._body(self._words(w.n_prompt), 1), "stream": False}
        doc, wall = self.client.timed_post("/api/generate", body)
        final = _final(doc, self.client.base_url)
        n, ns = final["prompt_eval_count"], final["prompt_eval_duration"]
        if abs(n - w.n_prompt) > max(2, w.n_prompt // 20):
            self._warnings.append(f"Ollama evaluated {n} prompt tokens of the ~{w.n_prompt} "
                                  f"sent (a cached prefix, or another tokenizer)")
        return Iteration(n, ns / 1e9, clock=CLOCK_SERVER,
                         extra={"client_seconds": wall, "client_tps": n / wall,
                                "server_timings": _figures(final)})

    def _generate(self, w: Workload) -> Iteration:
        asked = w.n_gen + 1
        prompt = self._words(w.n_prompt) if w.kind == "pp+tg" else TG_PROMPT
        timed, final = self._stream(self._body(prompt, asked))
        self._check_length(final, asked)
        extra: dict[str, Any] = {"server_timings": _figures(final), "n_events": len(timed.times)}
        if w.kind == "tg":
            tokens, seconds = final["eval_count"], final["eval_duration"] / 1e9
            extra.update(client_tokens=timed.decode_tokens, client_seconds=timed.decode_s,
                         client_tps=_rate(timed.decode_tokens, timed.decode_s))
        else:
            tokens = final["prompt_eval_count"] + final["eval_count"]
            seconds = (final["prompt_eval_duration"] + final["eval_duration"]) / 1e9
            n_client = final["prompt_eval_count"] + timed.decode_tokens
            extra.update(client_tokens=n_client, client_seconds=timed.total_s,
                         client_tps=_rate(n_client, timed.total_s))
        return Iteration(tokens, seconds, clock=CLOCK_SERVER, extra=extra)

    def _chat(self, w: Workload) -> Iteration:
        body = self._body(w.prompt, w.max_tokens, temperature=w.temperature, top_k=w.top_k,
                          top_p=w.top_p, seed=w.seed)
        timed, final = self._stream(body)
        self._check_length(final, w.max_tokens)
        return Iteration(timed.decode_tokens, timed.decode_s, ttft_s=timed.ttft_s,
                         token_latencies_s=timed.latencies(),
                         extra={"n_prompt": final["prompt_eval_count"],
                                "n_generated": timed.n_tokens,
                                "decode_tps": _rate(timed.decode_tokens, timed.decode_s),
                                "total_s": timed.total_s, "server_timings": _figures(final)})

    def _stream(self, body: dict[str, Any]) -> tuple[Timed, dict[str, Any]]:
        return parse_generate_stream(self.client.stream("/api/generate", body))

    def _check_length(self, final: dict[str, Any], asked: int) -> None:
        if final["eval_count"] < asked:
            self._warnings.append(
                f"Ollama stopped after {final['eval_count']} of {asked} tokens (done_reason "
                f"{final.get('done_reason')}): Ollama cannot ignore end of sequence; "
                f"iterations count the real tokens")

    def _words(self, n: int) -> str:
        pick = self._rng.choice
        return " ".join(pick(WORDS) for _ in range(max(n - 1, 1)))  # BOS is the n-th token

    def close(self) -> None:
        self.client.close()


def parse_generate_stream(stream: Stream) -> tuple[Timed, dict[str, Any]]:
    """Ollama's NDJSON lines: one per token (`response`), the last with `done: true`."""
    timed = Timed(stream.t_submit)
    final: dict[str, Any] | None = None
    for t, line in stream.ndjson():
        if not isinstance(line, dict):
            raise BenchkitError(f"{stream.url} sent a line that is not a JSON object")
        if "error" in line:
            raise BenchkitError(f"Ollama error mid-stream ({stream.url}): {line['error']}")
        if line.get("done"):
            final = line
            break
        if line.get("response"):
            timed.add(t, 1)
    if final is None:
        raise BenchkitError(f"{stream.url}: the stream ended without its final line "
                            f"(done: true)")
    return timed, _final(final, stream.url)


def _final(doc: Any, url: str) -> dict[str, Any]:
    need = ("prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration")
    if not isinstance(doc, dict) or any(not isinstance(doc.get(k), int) for k in need):
        raise BenchkitError(f"{url}/api/generate answered without Ollama's figures "
                            f"({', '.join(need)})")
    return doc


def _figures(final: dict[str, Any]) -> dict[str, Any]:
    keys = ("prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration",
            "total_duration", "load_duration", "done_reason")
    return {k: final.get(k) for k in keys if k in final}


def _rate(tokens: int, seconds: float) -> float | None:
    return tokens / seconds if seconds > 0 else None


def _version(client: HttpClient) -> str | None:
    doc = client.get_json("/api/version")
    return doc.get("version") if isinstance(doc, dict) else None


def show_model(client: HttpClient, tag: str) -> dict[str, Any]:
    """POST /api/show; a tag Ollama does not have is one line saying how to get it."""
    try:
        doc = client.post_json("/api/show", {"model": tag})
    except BenchkitError as exc:
        if "HTTP 404" in exc.message:
            raise BenchkitError(f"Ollama at {client.base_url} has no model {tag!r} "
                                f"(ollama pull {tag})", field="model") from None
        raise
    if not isinstance(doc, dict):
        raise status_error("ollama", client.base_url + "/api/show", 200, str(doc))
    return doc


@dataclass(frozen=True)
class _Header:
    architecture: str | None
    n_params: int | None
    quantization: str | None


def check_identity(show: dict[str, Any],
                   model: ModelFile | None) -> tuple[dict[str, Any], str | None]:
    """(facts about the match, a warning or None); raises when Ollama serves another model."""
    details = show.get("details") or {}
    info = show.get("model_info") or {}
    blob = _SHA.search(str(show.get("modelfile") or ""))
    served = _Header(info.get("general.architecture") or details.get("family"),
                     info.get("general.parameter_count"), details.get("quantization_level"))
    facts: dict[str, Any] = {"blob_sha256": blob[1] if blob else None}
    if model is None:
        return {**facts, "model_match": None}, None
    if blob and model.sha256 and blob[1] == model.sha256:
        return {**facts, "model_match": "same file (sha256)"}, None
    header = _suite_header(model)
    diffs = _differences(served, header)
    if diffs:
        raise BenchkitError(f"Ollama serves another model than the suite's "
                            f"{model.name or model.path}: {'; '.join(diffs)}")
    how = "same architecture, parameter count and quantization"
    facts["model_match"] = how
    warning = (f"Ollama's model file is not the suite's (sha256 {blob[1][:12]}... vs "
               f"{(model.sha256 or '')[:12]}...), though it has the {how}") if blob else None
    return facts, warning


def _suite_header(model: ModelFile) -> _Header:
    from benchkit.models.gguf import read_gguf_info

    info = read_gguf_info(model.path)
    return _Header(info.architecture, info.n_params, info.file_type)


def _differences(served: _Header, suite: _Header) -> list[str]:
    out = []
    if served.architecture and suite.architecture and \
            served.architecture.lower() != suite.architecture.lower():
        out.append(f"architecture {served.architecture} vs {suite.architecture}")
    if isinstance(served.n_params, int) and suite.n_params and served.n_params != suite.n_params:
        out.append(f"{served.n_params} parameters vs {suite.n_params}")
    if served.quantization and suite.quantization and \
            served.quantization.upper() != suite.quantization.upper():
        out.append(f"quantization {served.quantization} vs {suite.quantization}")
    if not any((served.architecture, served.n_params, served.quantization)):
        out.append("/api/show says nothing about the model to compare")
    return out

"""The streams of the `serve` workload's requests, parsed after the level: token times,
counts, the server's own figures (cache, speculative decoding) and reasoning apart.

Per protocol (llama-server's native SSE, OpenAI's SSE, Ollama's JSON lines) a reader
turns each event into a `Step`; `parse_record` walks them for one request record
(benchkit.workloads.serve.loadgen.RequestRecord).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from benchkit.core.streamlines import split_stamped

def parse_record(protocol: str, rec: Any) -> None:
    """Turn a request's raw chunks into token times and counts (after the level).

    Token events are the stream's events that carry generated text: llama-server's
    `content` events before `stop`, OpenAI's choices with text or a delta with content
    (or reasoning_content / reasoning), Ollama's lines before `done`. An event's time is
    the arrival of the chunk that completed it. Token counts come from the server's usage
    figures when it gives them (tokens_predicted / usage / eval_count), else they are the
    token events counted.

    Reasoning: a token event of `reasoning_content` (or `reasoning`), or text inside
    `<think>...</think>`, is a reasoning token; `ttft_s` is the first token of any kind,
    `ttft_answer_s` the first answer token. The server's own figures, where it sends them
    (llama-server's final `timings`, OpenAI usage's `prompt_tokens_details`), give the
    prompt tokens taken from its cache (`cache_n`) and computed (`prompt_n`), and the
    speculative decoding draft tokens drafted and accepted.
    """
    if rec.parsed:
        return
    rec.parsed = True
    lines = _lines(rec.stamps, rec.chunks)
    rec.chunks, rec.stamps = [], []
    if rec.error and rec.error not in ("stalled", "closed", "timeout"):
        return
    events = _ndjson(lines) if protocol == "ollama" else _sse(lines)
    if lines and not events:
        return _fail(rec, "malformed", f"no stream events in the response: {lines[0][1][:80]!r}")
    times, final, usage_in, usage_out = [], False, None, None
    texts: list[str] = []
    thinking = False
    for t, payload in events:
        if payload == b"[DONE]":
            final = True
            continue
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError):    # RecursionError: nested past the parser
            return _fail(rec, "malformed", f"not JSON: {payload[:80]!r}")
        step = _READERS[protocol](event)
        if step is None:
            return _fail(rec, "malformed", f"unexpected event: {payload[:80]!r}")
        if step.error:
            return _fail(rec, "http_5xx", f"error in the stream: {step.error}"[:200])
        if step.token:
            times.append(t - rec.t0)
            reasoning = step.reasoning
            if step.text:
                texts.append(step.text)
                thinking = _think_state(thinking, step.text)
                reasoning = reasoning or thinking or "</think>" in step.text
            if reasoning:
                rec.reasoning_tokens = (rec.reasoning_tokens or 0) + 1
            elif rec.ttft_answer_s is None and (step.text is None or step.text.strip()):
                rec.ttft_answer_s = t - rec.t0
        usage_in = step.n_in if step.n_in is not None else usage_in
        usage_out = step.n_out if step.n_out is not None else usage_out
        for name in ("cache_n", "prompt_n", "draft_n", "draft_accepted"):
            if getattr(step, name) is not None:
                setattr(rec, name, getattr(step, name))
        final = final or step.done
    rec.token_times_s = times
    rec.ttft_s = times[0] if times else None
    rec.text = "".join(texts)
    rec.tokens_in = usage_in
    rec.tokens_out = usage_out if usage_out is not None else len(times)
    rec.tokens_source = "server" if usage_out is not None else "counted"
    if rec.error is None and not final:
        _fail(rec, "closed", "the stream ended before its final event")
    elif rec.error is None and not times:
        _fail(rec, "malformed", "the stream carried no token")


def _think_state(thinking: bool, text: str) -> bool:
    """Whether the text after `text` is inside a <think> block."""
    opened, closed = text.rfind("<think>"), text.rfind("</think>")
    if opened > closed:
        return True
    if closed > opened:
        return False
    return thinking


def _fail(rec: Any, kind: str, detail: str) -> None:
    rec.error, rec.detail = kind, detail


def _lines(stamps: list[float], chunks: list[bytes]) -> list[tuple[float, bytes]]:
    """Complete lines with the arrival time of the chunk that ended each, cut in time
    linear in the stream's length (benchkit.core.streamlines: a 50 MB line took 32 s)."""
    return [(t, line.rstrip(b"\r")) for t, line in split_stamped(stamps, chunks)]


def _sse(lines: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Server-sent events: `data:` lines up to a blank line make one event."""
    events, data, t_last = [], [], 0.0
    for t, line in lines:
        if not line:
            if data:
                events.append((t, b"\n".join(data)))
                data = []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
            t_last = t
        # comments (":"), event:, id:, retry: lines carry no token
    if data:
        events.append((t_last, b"\n".join(data)))
    return events


def _ndjson(lines: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    return [(t, line) for t, line in lines if line.strip()]


@dataclass
class Step:
    """What one stream event says (a reader's answer; None from a reader: not the API's)."""

    token: bool = False                # carries generated text
    done: bool = False                 # the final event
    n_in: int | None = None
    n_out: int | None = None
    error: str | None = None
    text: str | None = None            # the generated text it carries
    reasoning: bool = False            # that text is reasoning (reasoning_content)
    cache_n: int | None = None
    prompt_n: int | None = None
    draft_n: int | None = None
    draft_accepted: int | None = None


def _server_timings(step: Step, timings: Any) -> Step:
    """llama-server's `timings` (its final event, native and OpenAI routes alike)."""
    if isinstance(timings, dict):
        step.cache_n, step.prompt_n = _int(timings.get("cache_n")), _int(timings.get("prompt_n"))
        step.draft_n = _int(timings.get("draft_n"))
        step.draft_accepted = _int(timings.get("draft_n_accepted"))
    return step


def _read_llama(e: Any) -> Step | None:
    if not isinstance(e, dict):
        return None
    if "error" in e:
        return Step(error=_error_text(e["error"]))
    if "content" not in e and "stop" not in e:
        return None
    if e.get("stop"):
        return _server_timings(Step(done=True, n_in=_int(e.get("tokens_evaluated")),
                                    n_out=_int(e.get("tokens_predicted"))), e.get("timings"))
    text = e.get("content")
    return Step(token="content" in e, text=text if isinstance(text, str) else None)


def _read_openai(e: Any) -> Step | None:
    if not isinstance(e, dict):
        return None
    if "error" in e:
        return Step(error=_error_text(e["error"]))
    choices, usage = e.get("choices"), e.get("usage")
    if not isinstance(choices, list):
        return None
    step = _server_timings(Step(), e.get("timings"))
    if isinstance(usage, dict):
        step.n_in, step.n_out = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
        if cached is not None and step.cache_n is None and step.n_in is not None:
            step.cache_n, step.prompt_n = cached, step.n_in - cached
    texts: list[str] = []
    for c in choices:
        if not isinstance(c, dict):
            return None
        delta = c.get("delta")
        if isinstance(delta, dict):
            answer = delta.get("content")
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if answer:
                step.token = True
                texts.append(str(answer))
            elif thought:
                step.token = step.reasoning = True
                texts.append(str(thought))
        elif isinstance(c.get("text"), str):
            step.token = step.token or bool(c["text"]) or c.get("finish_reason") is None
            texts.append(c["text"])
        step.done = step.done or c.get("finish_reason") is not None
    step.text = "".join(texts) if texts else None
    return step


def _read_ollama(e: Any) -> Step | None:
    if not isinstance(e, dict):
        return None
    if "error" in e:
        return Step(error=_error_text(e["error"]))
    if "done" not in e:
        return None
    text = e.get("response") if isinstance(e.get("response"), str) else None
    if e["done"]:
        return Step(token=bool(text), done=True, n_in=_int(e.get("prompt_eval_count")),
                    n_out=_int(e.get("eval_count")), text=text)
    return Step(token="response" in e, text=text)


_READERS: dict[str, Callable[[Any], Step | None]] = {
    "llama-server": _read_llama, "openai-completions": _read_openai,
    "openai-chat": _read_openai, "ollama": _read_ollama}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)

"""The server's own figures, from its Prometheus `/metrics`, before and after a level and
sampled while it runs.

llama-server serves them when started with `--metrics` (benchkit adds it to the servers
it starts); vLLM and SGLang serve them always. Counters are read as the level's change
(after - before), gauges as their value after the level and, from a `Sampler` that
scrapes every SAMPLE_PERIOD_S while the level runs, their peak and mean during it
(`server_<gauge>_max`, `server_<gauge>_mean`, over `server_samples` samples). The names
read, per server:

| figure (summary key `server_*`) | llama-server | vLLM | SGLang |
| --- | --- | --- | --- |
| KV cache in use (fraction) | llamacpp:kv_cache_usage_ratio | vllm:kv_cache_usage_perc, vllm:gpu_cache_usage_perc | sglang:token_usage |
| requests running | llamacpp:requests_processing | vllm:num_requests_running | sglang:num_running_reqs |
| requests deferred (waiting) | llamacpp:requests_deferred | vllm:num_requests_waiting | sglang:num_queue_reqs |
| prompt tokens computed | llamacpp:prompt_tokens_total | vllm:prompt_tokens_total | sglang:prompt_tokens_total |
| prompt tokens from the cache | llamacpp:prompt_tokens_cached_total | | |
| tokens generated | llamacpp:tokens_predicted_total | vllm:generation_tokens_total | sglang:generation_tokens_total |
| prefix cache hits / queries (tokens) | | vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total | |

This llama-server serves no KV-cache gauge in /metrics; where its `/slots` answers, the
sampler reads the KV cache in use there instead: the tokens each slot holds
(`n_prompt_tokens`) over the slots' context (`n_ctx`), and `server_kv_cache_source` says so.

A server without /metrics, or one answering something that is not Prometheus text,
leaves one line in `server_metrics_note` and the level goes on. The sampler is one thread
making one small request every SAMPLE_PERIOD_S: a cost of about a millisecond of the
client's CPU per sample, beside the level's streams.
"""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any

GAUGES = {
    "kv_cache_usage": ("llamacpp:kv_cache_usage_ratio", "vllm:kv_cache_usage_perc",
                       "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
    "requests_running": ("llamacpp:requests_processing", "vllm:num_requests_running",
                         "sglang:num_running_reqs"),
    "requests_deferred": ("llamacpp:requests_deferred", "vllm:num_requests_waiting",
                          "sglang:num_queue_reqs"),
}
COUNTERS = {
    "prompt_tokens": ("llamacpp:prompt_tokens_total", "vllm:prompt_tokens_total",
                      "sglang:prompt_tokens_total"),
    "cached_prompt_tokens": ("llamacpp:prompt_tokens_cached_total",),
    "generated_tokens": ("llamacpp:tokens_predicted_total", "vllm:generation_tokens_total",
                         "sglang:generation_tokens_total"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total",
                             "vllm:gpu_prefix_cache_queries_total"),
    "draft_tokens": ("llamacpp:spec_decode_num_draft_tokens_total",),
    "draft_accepted_tokens": ("llamacpp:spec_decode_num_accepted_tokens_total",),
}
MAX_METRICS_BYTES = 4 << 20    # a server's /metrics is a few KB
SAMPLE_PERIOD_S = 0.5
SLOTS_SOURCE = "llama-server /slots: tokens held by the slots over their context"
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics_url(endpoint: Any) -> str:
    """Where the endpoint's server serves /metrics: its root (an OpenAI URL's /v1 off)."""
    base = (endpoint.base_url or "").rstrip("/")
    if endpoint.api == "openai" and endpoint.openai_url:
        base = re.sub(r"/v1/?$", "", endpoint.openai_url.rstrip("/"))
    return base + "/metrics"


def parse(text: str) -> dict[str, float]:
    """Prometheus text: each series' value, summed over its labels per name."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if math.isfinite(value):
            out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def scrape(url: str, timeout_s: float = 5.0) -> dict[str, float] | str:
    """The server's figures, or one line saying why there are none."""
    import httpx

    from benchkit.core.errors import BenchkitError
    from benchkit.core.urls import without_credentials
    from benchkit.engines.http.client import fetch

    shown = without_credentials(url)
    try:        # bounded: a compressed answer is not expanded past 4 MiB
        status, body = fetch("GET", url, timeout_s=timeout_s, limit=MAX_METRICS_BYTES)
    except httpx.HTTPError as exc:
        return f"{shown}: no answer ({type(exc).__name__})"
    except BenchkitError as exc:
        return exc.message
    if status != 200:
        return f"{shown}: HTTP {status}; the server serves no metrics there"
    found = parse(body.decode("utf-8", errors="replace"))
    if not any(name in found for names in (*GAUGES.values(), *COUNTERS.values())
               for name in names):
        return (f"{shown}: answered no Prometheus figure benchkit knows (llama-server, vLLM, "
                "SGLang)")
    return found


def level_figures(before: dict[str, float] | str, after: dict[str, float] | str
                  ) -> dict[str, Any]:
    """The level's `server_*` figures (counters' change, gauges after), or a note."""
    if isinstance(after, str) or isinstance(before, str):
        return {"server_metrics_note": after if isinstance(after, str) else before}
    out: dict[str, Any] = {}
    for key, names in GAUGES.items():
        name = next((n for n in names if n in after), None)
        if name:
            out[f"server_{key}"] = after[name]
    for key, names in COUNTERS.items():
        name = next((n for n in names if n in after and n in before), None)
        if name:
            out[f"server_{key}"] = after[name] - before[name]
    hits, queries = out.get("server_prefix_cache_hits"), out.get("server_prefix_cache_queries")
    if hits is not None and queries:
        out["server_prefix_cache_hit_rate"] = hits / queries
    return out


def slots_kv_usage(doc: Any) -> float | None:
    """llama-server's /slots as the fraction of its KV cache in use: the tokens every slot
    holds over the slots' context; None for anything else."""
    if not isinstance(doc, list) or not doc:
        return None
    held = ctx = 0
    for slot in doc:
        n_ctx = slot.get("n_ctx") if isinstance(slot, dict) else None
        if not isinstance(n_ctx, int) or n_ctx <= 0:
            return None
        n = slot.get("n_prompt_tokens")
        held += n if isinstance(n, int) and n > 0 else 0
        ctx += n_ctx
    return held / ctx


class Sampler:
    """Scrapes the server's gauges every `period_s` in a thread while a level runs: the
    first sample when started (after the warmups), the last when finished."""

    def __init__(self, url: str, period_s: float = SAMPLE_PERIOD_S) -> None:
        self.url, self.period_s = url, period_s
        self.slots_url: str | None = url.rsplit("/metrics", 1)[0] + "/slots"
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="benchkit-metrics",
                                        daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def finish(self) -> dict[str, Any]:
        """Stop sampling; the peak and mean of each gauge over the samples."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10.0)
        return sampled_figures(self.samples, self.period_s)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while True:
                sample = self._sample(client, httpx)
                if sample:
                    self.samples.append(sample)
                if self._stop.wait(self.period_s):
                    return

    def _sample(self, client: Any, httpx: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        try:
            got = _bounded_get(client, self.url)
            found = parse(got.decode("utf-8", errors="replace")) if got is not None else {}
        except httpx.HTTPError:
            found = {}
        for key, names in GAUGES.items():
            name = next((n for n in names if n in found), None)
            if name:
                out[key] = found[name]
        if self.slots_url and "kv_cache_usage" not in out:
            try:
                got = _bounded_get(client, self.slots_url)
                kv = slots_kv_usage(json.loads(got)) if got is not None else None
            except (httpx.HTTPError, ValueError, RecursionError):
                kv = None
            if kv is None:
                self.slots_url = None       # no /slots here: not asked again
            else:
                out["slots_kv_cache_usage"] = kv
        return out


def _bounded_get(client: Any, url: str, limit: int = MAX_METRICS_BYTES) -> bytes | None:
    """The body of a 200 answer to GET `url`, read to at most `limit` decoded bytes (None
    past it, or for another status): a compressed answer is not expanded without end."""
    from benchkit.engines.http.client import read_limited

    with client.stream("GET", url) as resp:
        return read_limited(resp.iter_bytes(), limit) if resp.status_code == 200 else None


def sampled_figures(samples: list[dict[str, float]], period_s: float) -> dict[str, Any]:
    """`server_<gauge>_max` and `_mean` over the samples taken during a level."""
    if not samples:
        return {}
    out: dict[str, Any] = {"server_samples": len(samples), "server_sample_period_s": period_s}
    for key in (*GAUGES, "slots_kv_cache_usage"):
        values = [s[key] for s in samples if key in s]
        if not values:
            continue
        name = "kv_cache_usage" if key == "slots_kv_cache_usage" else key
        if f"server_{name}_max" in out:
            continue
        out[f"server_{name}_max"] = max(values)
        out[f"server_{name}_mean"] = sum(values) / len(values)
        if key == "slots_kv_cache_usage":
            out["server_kv_cache_source"] = SLOTS_SOURCE
    return out

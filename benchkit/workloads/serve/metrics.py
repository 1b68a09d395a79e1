"""The server's own figures, from its Prometheus `/metrics`, before and after a level.

llama-server serves them when started with `--metrics` (benchkit adds it to the servers
it starts); vLLM and SGLang serve them always. Counters are read as the level's change
(after - before), gauges as their value after the level. The names read, per server:

| figure (summary key `server_*`) | llama-server | vLLM | SGLang |
| --- | --- | --- | --- |
| KV cache in use (fraction) | llamacpp:kv_cache_usage_ratio | vllm:kv_cache_usage_perc, vllm:gpu_cache_usage_perc | sglang:token_usage |
| requests running | llamacpp:requests_processing | vllm:num_requests_running | sglang:num_running_reqs |
| requests deferred (waiting) | llamacpp:requests_deferred | vllm:num_requests_waiting | sglang:num_queue_reqs |
| prompt tokens computed | llamacpp:prompt_tokens_total | vllm:prompt_tokens_total | sglang:prompt_tokens_total |
| prompt tokens from the cache | llamacpp:prompt_tokens_cached_total | | |
| tokens generated | llamacpp:tokens_predicted_total | vllm:generation_tokens_total | sglang:generation_tokens_total |
| prefix cache hits / queries (tokens) | | vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total | |

A server without /metrics, or one answering something that is not Prometheus text,
leaves one line in `server_metrics_note` and the level goes on.
"""

from __future__ import annotations

import math
import re
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

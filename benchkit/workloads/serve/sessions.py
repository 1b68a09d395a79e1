"""Conversations and the server's caches, for the `serve` workload.

```yaml
- serve:
    concurrency: 2
    requests: 8                  # turns in all: ceil(8 / turns) sessions
    prompt_tokens: 24            # each user message (words, about one token each)
    sessions: {turns: 4, think_time_s: 0.5, shared_prefix_tokens: 64}
    cache: reuse                 # or bust (the default): every prompt computed in full
```

A session is an N-turn conversation: turn k sends the system prompt (when
`shared_prefix_tokens` is set: one text of that many words, the same in every session of
the level), every earlier user message and reply, and a new user message, after a think
time. `cache: reuse` lets the server keep and reuse what it computed (llama-server's
`cache_prompt: true`); `cache: bust` (the default of every level) asks it not to where it
accepts the request (`cache_prompt: false`, llama-server's routes) and, for conversations,
puts a prefix no other request has at the start of every prompt, which no prefix cache can
match.

What the server says it took from its cache is recorded per request: llama-server's
final `timings` (`cache_n` prompt tokens reused, `prompt_n` computed), or an OpenAI
server's `usage.prompt_tokens_details.cached_tokens`. The level's `cache_hit_rate` is
reused / (reused + computed) over the requests that report it, with its first-turn and
later-turn parts; the level's TTFT is split the same way. A level that meant to be cold
(`cache: bust`) and still shows reused prompt tokens gets a warning with their count.
"""

from __future__ import annotations

import random
from typing import Any

from benchkit.core.stats import percentile

CACHE_MODES = ("bust", "reuse")

SCHEMA_SESSIONS = {
    "type": "object", "additionalProperties": False, "required": ["turns"],
    "properties": {
        "turns": {"type": "integer", "minimum": 1, "maximum": 1000,
                  "x-error": "must be an integer >= 1: requests per conversation"},
        "think_time_s": {"type": "number", "minimum": 0, "maximum": 3600,
                         "x-error": "must be a number of seconds >= 0"},
        "shared_prefix_tokens": {"type": "integer", "minimum": 0, "maximum": 1_000_000,
                                 "x-error": "must be an integer >= 0: a system prompt's "
                                            "length, shared by every session"},
    },
    "x-error": "must be a mapping with turns:, and optionally think_time_s: and "
               "shared_prefix_tokens:",
}
SCHEMA_CACHE = {"enum": list(CACHE_MODES),
                "x-error": "must be reuse (the server may reuse cached prompts) or bust "
                           "(every prompt computed in full)"}


def conversations(sessions: int, turns: int, user_tokens: int, prefix_tokens: int,
                  seed: int) -> list[Any]:
    """`sessions` conversations of `turns` user messages of `user_tokens` words each,
    behind one shared system prompt of `prefix_tokens` words (none for 0); seeded."""
    from benchkit.workloads.serve.loadgen import WORDS, Conversation

    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    system = text(prefix_tokens) if prefix_tokens else None
    return [Conversation(users=tuple(text(user_tokens) for _ in range(turns)), system=system)
            for _ in range(sessions)]


def from_file(lines: Any, sessions: int, turns: int) -> list[Any]:
    """`sessions` conversations from a prompts file's lines (cycled): each line's user
    messages are its turns (the first `turns` of them; the replies are the server's own),
    its system message the system prompt; a single prompt is a one-turn conversation."""
    from benchkit.workloads.serve.loadgen import Conversation

    out = []
    for k in range(sessions):
        value, _ = lines[k % len(lines)]
        if isinstance(value, str):
            out.append(Conversation(users=(value,)))
            continue
        system = next((text for role, text in value if role == "system"), None)
        users = tuple(text for role, text in value if role == "user")[:turns]
        out.append(Conversation(users=users, system=system))
    return out


def _rate(hits: int, computed: int) -> float | None:
    return hits / (hits + computed) if hits + computed else None


def cache_figures(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """The server's cache, speculative decoding and reasoning figures of a level's
    succeeded requests (their iteration dicts); keys only for what was reported."""
    out: dict[str, Any] = {}
    known = [it for it in ok if it.get("cache_n") is not None and it.get("prompt_n") is not None]
    if known:
        hits = sum(int(it["cache_n"]) for it in known)
        computed = sum(int(it["prompt_n"]) for it in known)
        out.update(cache_hit_rate=_rate(hits, computed), cached_prompt_tokens=hits,
                   computed_prompt_tokens=computed, cache_reported_requests=len(known))
    turned = [it for it in ok if it.get("turn") is not None]
    if turned:
        first = [it for it in turned if it["turn"] == 1]
        later = [it for it in turned if it["turn"] > 1]
        out["sessions"] = len({it.get("session") for it in turned})
        for name, group in (("first_turn", first), ("later_turns", later)):
            ttft = [float(it["ttft_s"]) for it in group if it.get("ttft_s") is not None]
            out[f"ttft_p50_{name}_s"] = percentile(ttft, 50)
            out[f"ttft_p99_{name}_s"] = percentile(ttft, 99)
            out[f"requests_{name}"] = len(group)
            k = [it for it in group if it.get("cache_n") is not None
                 and it.get("prompt_n") is not None]
            out[f"cache_hit_rate_{name}"] = _rate(sum(int(it["cache_n"]) for it in k),
                                                  sum(int(it["prompt_n"]) for it in k))
    drafted = [it for it in ok if it.get("draft_n")]
    if drafted:
        n = sum(int(it["draft_n"]) for it in drafted)
        acc = sum(int(it.get("draft_accepted") or 0) for it in drafted)
        out.update(draft_acceptance=acc / n if n else None, draft_tokens=n,
                   draft_accepted_tokens=acc)
    if any(it.get("reasoning_tokens") for it in ok):
        answer = [float(it["ttft_answer_s"]) for it in ok if it.get("ttft_answer_s") is not None]
        out.update(ttft_answer_p50_s=percentile(answer, 50),
                   ttft_answer_p99_s=percentile(answer, 99),
                   reasoning_tokens=sum(int(it.get("reasoning_tokens") or 0) for it in ok),
                   ttft_is="first token of any kind (reasoning included); "
                           "ttft_answer_*: first answer token")
    return out


def cache_warnings(summary: dict[str, Any]) -> list[str]:
    """'warm cache' when a level meant to be cold (cache: bust) shows prompt tokens the
    server took from its cache: its TTFT is not that of a cold prompt. One token a
    request is let pass: any two prompts may share their first token (a BOS token, a
    first word), which a server counts as reused and which costs no measurable time."""
    hits = summary.get("cached_prompt_tokens") or 0
    if summary.get("cache", "bust") != "bust" or hits <= (summary.get("requests_ok") or 0):
        return []
    total = hits + (summary.get("computed_prompt_tokens") or 0)
    return [f"warm cache: the server took {hits:,} of {total:,} prompt tokens from its "
            f"cache in a cold-cache level (cache: bust) over "
            f"{summary.get('cache_reported_requests') or 0} requests; its TTFT is not a "
            "cold prompt's"]

"""chat: a real prompt, then sampled tokens, timed as a streaming client sees them.

tok/s is the decode rate a reader sees: (generated tokens - 1) over the time from the
first token to the last; the time to first token (submit -> first token) is kept apart,
with every token's latency.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from benchkit.workloads.base import Workload

ORDER = 10                  # place among the workloads (benchkit.workloads.modules)
SUITE_KEYS = ("chat",)
DEFAULT_PROMPT = "Explain quantum computing in simple terms."
DEFAULTS = {"max_tokens": 128, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 42}

SCHEMA = {
    "chat": {
        "anyOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False,
            "properties": {
                "prompt": {"type": "string", "minLength": 1,
                           "x-error": "must be a non-empty string"},
                "max_tokens": {"type": "integer", "minimum": 2, "maximum": 2**31 - 1,
                               "x-error": "must be an integer >= 2 (a decode rate needs two "
                                          "tokens)"},
                "temperature": {"type": "number", "minimum": 0, "maximum": 100,
                                "x-error": "must be a number >= 0"},
                "top_k": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1,
                          "x-error": "must be an integer >= 0 (0 = off)"},
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                          "x-error": "must be a number in (0, 1]"},
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1,
                         "x-error": "must be a non-negative integer"},
            }}],
        "x-error": "must be a mapping with prompt: and max_tokens:"},
}


@dataclass(frozen=True)
class ChatWorkload(Workload):
    """A real prompt and up to max_tokens sampled tokens (end of sequence ignored)."""

    prompt: str = DEFAULT_PROMPT
    max_tokens: int = 128
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    seed: int = 42

    kind = "chat"

    @property
    def n_gen(self) -> int:
        return self.max_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "prompt": self.prompt, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p,
                "seed": self.seed}

    def summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        ttft = [it["ttft_s"] for it in iterations if it.get("ttft_s") is not None]
        total = [it["total_s"] for it in iterations if it.get("total_s") is not None]
        lat = [x for it in iterations for x in it.get("token_latencies_s") or []]
        return {"ttft_median_s": statistics.median(ttft) if ttft else None,
                "ttft_mean_s": statistics.fmean(ttft) if ttft else None,
                "total_median_s": statistics.median(total) if total else None,
                "token_latency_median_s": statistics.median(lat) if lat else None}


def parse(entry: dict[str, Any]) -> list[Workload]:
    chat = {**DEFAULTS, **(entry["chat"] or {})}
    return [ChatWorkload(prompt=chat.get("prompt", DEFAULT_PROMPT),
                         max_tokens=chat["max_tokens"], temperature=float(chat["temperature"]),
                         top_k=chat["top_k"], top_p=float(chat["top_p"]), seed=chat["seed"])]


def main_keys() -> tuple[str, ...]:
    return ("chat",)

"""pp N, tg N and pp N + tg M: llama-bench's tests, on random tokens.

- pp N: an N-token prompt in n_batch chunks; tok/s = N / seconds.
- tg N: N single-token decodes; tok/s = N / seconds.
- pp N + tg M: both as one request; tok/s = (N + M) / seconds.
- depth D (llama-bench -d): D tokens fill the KV cache before the timed part, so that the
  test measures speed at that context depth; the test is named `tg128 @ d4096`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from benchkit.workloads import testnames
from benchkit.workloads.base import Workload

ORDER = 0                  # place among the workloads (benchkit.workloads.modules)
SUITE_KEYS = ("pp", "tg", "depth")
_COUNT = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1,
          "x-error": "must be a positive integer"}
_DEPTH = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1,
          "x-error": "must be a non-negative integer"}


def _list_of(one: dict[str, Any], what: str) -> dict[str, Any]:
    return {"anyOf": [one, {"type": "array", "minItems": 1, "items": one}],
            "x-error": f"must be {what} or a non-empty list of them"}


SCHEMA = {
    "pp": _list_of(_COUNT, "a positive integer"),
    "tg": _list_of(_COUNT, "a positive integer"),
    "depth": _list_of(_DEPTH, "a non-negative integer (tokens in the KV cache first)"),
}


@dataclass(frozen=True)
class TokensWorkload(Workload):
    """pp, tg or pp+tg on random tokens, at a context depth."""

    kind: str = "pp"               # type: ignore[misc]  # pp | tg | pp+tg, per instance
    prompt_tokens: int = 0
    gen_tokens: int = 0
    depth_tokens: int = 0

    @property
    def n_prompt(self) -> int:
        return self.prompt_tokens

    @property
    def n_gen(self) -> int:
        return self.gen_tokens

    @property
    def depth(self) -> int:
        return self.depth_tokens

    @property
    def test(self) -> str:
        """pp512, tg128, pp512+tg128; `tg128 @ d4096` at a depth, as llama-bench names them."""
        return testnames.name(self.n_prompt, self.n_gen, self.depth)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.depth:
            d["depth"] = self.depth
        return d


def parse(entry: dict[str, Any]) -> list[Workload]:
    """One entry as its tests: every combination of its pp, tg and depth values."""
    pps = _as_list(entry.get("pp", 0))
    tgs = _as_list(entry.get("tg", 0))
    depths = _as_list(entry.get("depth", 0))
    kind = "pp+tg" if "pp" in entry and "tg" in entry else ("pp" if "pp" in entry else "tg")
    return [TokensWorkload(kind, p, t, d) for d, p, t in itertools.product(depths, pps, tgs)]


def main_keys() -> tuple[str, ...]:
    """The keys that make an entry this workload (depth only qualifies pp / tg)."""
    return ("pp", "tg")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]

"""The workload contract: what a suite asks an engine to do, and how its figures summarise.

A workload module (one file per kind of test) declares the suite keys it owns, the JSON
Schema of those keys, and `parse(entry)`, which turns one `workloads:` entry into the
tests it stands for (`pp: [128, 512]` is two). A Workload is immutable and knows its
llama-bench-style test name, its `workload` object in the result, and any summary
figures beyond tok/s. Engines say which kinds they run (`Engine.workloads`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Workload:
    """Base of every workload. `kind` is what engines dispatch on."""

    kind: ClassVar[str] = ""

    @property
    def test(self) -> str:
        """The test's name in tables and result files (llama-bench's names where it has one)."""
        return self.kind

    @property
    def n_prompt(self) -> int:
        return 0

    @property
    def n_gen(self) -> int:
        return 0

    @property
    def depth(self) -> int:
        """Tokens already in the KV cache before the timed part (llama-bench -d)."""
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The case's `workload` object."""
        return {"kind": self.kind, "n_prompt": self.n_prompt, "n_gen": self.n_gen}

    def summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        """Figures beyond the tok/s statistics, from the recorded iterations."""
        return {}

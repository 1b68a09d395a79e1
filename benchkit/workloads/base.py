"""The workload contract: what a suite asks an engine to do, and how its figures summarise.

A workload module (one file per kind of test) declares the suite keys it owns, the JSON
Schema of those keys, and `parse(entry)`, which turns one `workloads:` entry into the
tests it stands for (`pp: [128, 512]` is two). A Workload is immutable and knows its
llama-bench-style test name, its `workload` object in the result, and any summary
figures beyond tok/s. Engines say which kinds they run (`Engine.workloads`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from benchkit.core.errors import BenchkitError
from benchkit.core.stats import drift_warning, spread_warning


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

    def spread_warnings(self, case: dict[str, Any]) -> list[str]:
        """What a reader should be warned about in a case's figures: high spread and drift
        of a finished case's per-iteration tok/s (benchkit.core.stats). A workload whose
        iterations are not repetitions of one test has its own rule (serve)."""
        if case.get("status") == "failed":
            return []
        tps = [it["tps"] for it in case["iterations"]]
        return [w for w in (spread_warning(tps), drift_warning(tps)) if w]

    def progress_total(self, warmup: int, iterations: int) -> int | None:
        """Steps of a case's progress bar (None: unknown)."""
        return warmup + iterations

    def progress_of(self, done: int, iterations: int) -> str:
        """How far a case got, for a case stopped before its end: `done` of the suite's
        `iterations` (a workload whose iterations are not the suite's says its own)."""
        return f"{done} of {iterations} timed iterations"

    def progress_text(self, summary: dict[str, Any]) -> str:
        """A finished case's figures in one line, for a run's progress without a bar."""
        spread = f" ± {summary['tps_stdev']:.2f}" if summary["n"] > 1 else ""
        return (f"{summary['tps_mean']:.2f}{spread} t/s (mean{' ± sd' if spread else ''} of "
                f"{summary['n']} iterations)")


@dataclass(frozen=True)
class SuiteSpot:
    """Where a workload entry stands in its suite: the file, field and line an error about
    it names, and the folder its relative paths (texts, prompts files) are read from."""

    file: str | None = None
    field: str | None = None
    line: int | None = None

    @property
    def folder(self) -> Path:
        """The suite file's folder; the working folder for an entry without a file."""
        return Path(os.path.expanduser(self.file)).resolve().parent if self.file else Path.cwd()

    def error(self, message: str, field: str | None = None) -> BenchkitError:
        return BenchkitError(message, file=self.file, field=field or self.field,
                             line=self.line)

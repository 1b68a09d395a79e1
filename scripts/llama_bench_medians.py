#!/usr/bin/env python3
"""Median tok/s of llama-bench jsonl files, per model, flash attention, test and backend.

Every repetition of every file counts once (llama-bench's `samples_ts`, tokens over its
wall clock per repetition): the median over rounds and repetitions keeps a build's
one-off costs out, such as the first repetitions of a Vulkan run that still compile
pipelines, or the first pp512 repetition of a CUDA run. With two backends in the files the
last column is the ratio of the second backend's median to the first's.

    python scripts/llama_bench_medians.py reports/nvidia/v3-vulkan/*.jsonl
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from benchkit.projection.bench_runs import read_rows
from benchkit.workloads import testnames


def load(paths: list[Path]) -> dict[tuple, list[float]]:
    """Samples by (model_type, flash_attn, test, backends)."""
    samples: dict[tuple, list[float]] = defaultdict(list)
    for path in paths:
        for row in read_rows(path):
            test = testnames.name(row["n_prompt"], row["n_gen"], row.get("n_depth", 0))
            key = (row["model_type"], int(row["flash_attn"]), test, row["backends"])
            samples[key].extend(row["samples_ts"])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="llama-bench -o jsonl files")
    args = parser.parse_args()
    samples = load(args.files)
    backends = sorted({k[3] for k in samples})
    print("| model | fa | test | " + " | ".join(
        f"{b} tok/s, median (min-max, n)" for b in backends)
        + (f" | {backends[1]} / {backends[0]} |" if len(backends) == 2 else " |"))
    print("|---|---|---|" + "---|" * (len(backends) + (len(backends) == 2)))
    for model, fa, test in sorted({k[:3] for k in samples}):
        found = [samples.get((model, fa, test, b)) for b in backends]
        cells = [f"{statistics.median(s):,.1f} ({min(s):,.0f}-{max(s):,.0f}, {len(s)})"
                 if s else "-" for s in found]
        if len(backends) == 2:
            cells.append(f"{statistics.median(found[1]) / statistics.median(found[0]):.3f}"
                         if all(found) else "-")
        print(f"| {model} | {fa} | {test} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

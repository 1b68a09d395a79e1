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
import json
import statistics
from collections import defaultdict
from pathlib import Path


def load(paths: list[Path]) -> dict[tuple, list[float]]:
    """Samples by (model_type, flash_attn, test, backends)."""
    samples: dict[tuple, list[float]] = defaultdict(list)
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
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
        cells, medians = [], []
        for b in backends:
            s = samples.get((model, fa, test, b))
            if not s:
                cells.append("-")
                medians.append(None)
                continue
            m = statistics.median(s)
            medians.append(m)
            cells.append(f"{m:,.1f} ({min(s):,.0f}-{max(s):,.0f}, {len(s)})")
        ratio = (f" | {medians[1] / medians[0]:.3f}" if len(backends) == 2
                 and all(medians) else (" | -" if len(backends) == 2 else ""))
        print(f"| {model} | {fa} | {test} | " + " | ".join(cells) + ratio + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Where llama.cpp dequantizes to F16 for prompts, can a quantized model beat its F16 model?

The projection's consistency screen (scripts/projection_accuracy.py, `inconsistent`) rests on
one property of llama.cpp's CUDA code: a build that sends quantized prompt batches through a
dequantized F16 copy and cuBLAS (the builds of spring 2024, and any build configured with
-DGGML_CUDA_FORCE_CUBLAS=ON) does all of the F16 model's GEMM work, and more, for a quantized
model, so the quantized model cannot process prompts faster than the F16 model. Default
builds since mid 2024 run quantized prompts through MMQ on INT8 tensor cores and may.

This script measures both on one GPU: two llama-bench binaries from one llama.cpp source, one
default (MMQ) and one with FORCE_CUBLAS, alternated in rounds (the order flips every round),
on pairs of files of one shape (a quantized file and the F16 file). It prints, per build and
pair, the prompt rate of each file (median +/- sd over every repetition of every round), the
quantized / F16 ratio, and the ratio the projection's priors give on that path for the chip
(`prompt_seconds` with and without the `dequant-f16` units; the priors were fitted without
any of these figures).

    python scripts/prompt_path_check.py --bench mmq=A/bin/llama-bench \\
        --bench cublas=B/bin/llama-bench --pair q4_k_m.gguf,f16.gguf --chip h200 \\
        --rounds 3 --reps 5 --samples samples.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchkit.core.units import fmt_tps

FORCE_CUBLAS = "cublas"   # the --bench name of the FORCE_CUBLAS build


def run_bench(binary: str, files: list[str], reps: int, ngl: int, n_prompt: int) -> dict[str, list[float]]:
    """One llama-bench call over the files: per-repetition prompt tok/s by file name."""
    cmd = [binary, "-p", str(n_prompt), "-n", "0", "-ngl", str(ngl), "-r", str(reps), "-o", "json"]
    for f in files:
        cmd += ["-m", f]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {binary} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return {Path(row["model_filename"]).name: [float(x) for x in row["samples_ts"]]
            for row in json.loads(proc.stdout)}


def projected_ratio(chip_id: str, quant_file: str, f16_file: str, cublas: bool,
                    n_prompt: int) -> float | None:
    """The priors' quantized / F16 prompt rate on the chip, on the build's path."""
    from benchkit.projection.chips import get_chip
    from benchkit.projection.physics import prompt_seconds
    from benchkit.projection.priors import load_priors
    from benchkit.projection.shapes import shape_from_gguf

    chip, priors = get_chip(chip_id), load_priors()
    units = {"quant": "dequant-f16"} if cublas else None
    t_q = prompt_seconds(chip, shape_from_gguf(quant_file), priors, n_prompt=n_prompt, units=units)
    t_f = prompt_seconds(chip, shape_from_gguf(f16_file), priors, n_prompt=n_prompt, units=units)
    return t_f / t_q if t_q and t_f else None


def summary(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt_tps(statistics.median(values))} ± {fmt_tps(sd)} (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", action="append", required=True, metavar="NAME=PATH",
                        help=f"a llama-bench binary; name the FORCE_CUBLAS one {FORCE_CUBLAS!r}")
    parser.add_argument("--pair", action="append", required=True, metavar="QUANT.gguf,F16.gguf",
                        help="a quantized file and the F16 file of the same shape (repeatable)")
    parser.add_argument("--chip", help="chip id for the projected ratios (benchkit project --list-chips)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--reps", type=int, default=5, help="llama-bench -r per round (default 5)")
    parser.add_argument("--ngl", type=int, default=99, help="layers offloaded (default 99)")
    parser.add_argument("--n-prompt", type=int, default=512, help="prompt tokens (default 512)")
    parser.add_argument("--samples", type=Path, help="write every repetition here (JSON)")
    args = parser.parse_args()

    benches = dict(b.split("=", 1) for b in args.bench)
    pairs = [tuple(p.split(",", 1)) for p in args.pair]
    files = list(dict.fromkeys(f for pair in pairs for f in pair))   # one F16 file, many pairs
    rounds: list[dict[str, dict[str, list[float]]]] = []
    for r in range(args.rounds):
        order = list(benches) if r % 2 == 0 else list(reversed(benches))
        got = {}
        for name in order:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            got[name] = run_bench(benches[name], files, args.reps, args.ngl, args.n_prompt)
        rounds.append(got)

    test = f"pp{args.n_prompt}"
    print(f"{test} tok/s, llama-bench -r {args.reps} x {args.rounds} alternated rounds "
          f"(median ± sd over every repetition; llama-bench's wall clock), -ngl {args.ngl}\n")
    print(f"| pair | build | quantized {test} | F16 {test} | quantized / F16 | per-round ratios | "
          "projected quantized / F16 |")
    print("|---|---|---|---|---|---|---|")
    for q, f in pairs:
        qn, fn = Path(q).name, Path(f).name
        for name in benches:
            qs = [x for rd in rounds for x in rd[name][qn]]
            fs = [x for rd in rounds for x in rd[name][fn]]
            per_round = [statistics.median(rd[name][qn]) / statistics.median(rd[name][fn])
                         for rd in rounds]
            proj = projected_ratio(args.chip, q, f, name == FORCE_CUBLAS, args.n_prompt) \
                if args.chip else None
            print(f"| {qn} / {fn} | {name} | {summary(qs)} | {summary(fs)} | "
                  f"{statistics.median(qs) / statistics.median(fs):.3f} | "
                  f"{', '.join(f'{x:.3f}' for x in per_round)} | "
                  f"{'—' if proj is None else f'{proj:.3f}'} |")
    if args.samples:
        args.samples.write_text(json.dumps({"chip": args.chip, "benches": benches,
                                            "pairs": pairs, "test": test,
                                            "reps": args.reps, "rounds": rounds}, indent=1),
                                encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

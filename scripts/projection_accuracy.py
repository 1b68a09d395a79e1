#!/usr/bin/env python3
"""How good are benchkit's projections on chips they were not fitted on?

Data (benchkit/data/published.yaml and the committed benchkit results):

- llama.cpp discussion #4167: LLaMA-2 7B F16 / Q8_0 / Q4_0 on 27 Apple configurations;
- XiongjieDai/GPU-Benchmarks-on-LLM-Inference: LLaMA 3 8B Q4_K_M / F16 and 70B Q4_K_M on
  16 NVIDIA GPUs and 4 Apple chips (transcribed without network access, see the YAML);
- benchkit issue 3: llama-bench on an H100 and an H200 (TinyLlama shape);
- results/nvidia-h100, -h200 and -h200-v2: benchkit's own runs, 135M to 7B stand-ins in
  Q4_1 / Q4_K_M / Q4_0 / Q8_0 / F16, and the H200 context-depth run (TinyLlama Q4_K_M and
  LLaMA-2 7B Q4_0 at depth 0 / 1024 / 4096 / 16384, in process and with llama-bench); of
  those folders only the kernel-throughput runs of the two llama.cpp engines (`skipped`).

The roofline's global parameters (per backend, memory class and quantization kind) are
fitted by least squares on log time per token. Every figure reported is held out:

1. leave-one-chip-out (LOCO): for each target chip the parameters are refitted without any
   row of that chip, then the chip is projected from every other chip that measured the
   same model (one measurement as anchor, calibrated on that chip's rows alone);
2. leave-one-family-out (LOFO): the same with the target's whole generation held out;
   both per vendor on its own backend (Apple on Metal, NVIDIA on CUDA), and LOCO per
   backend across makers for HIP and Vulkan (that backend's parameters refitted alone);
3. context depth: each case at a depth projected from depth 0 (same chip, and H100 -> H200),
   with that model file's deeper cases held out of the fit; and the H100 depth run of
   Qwen3-8B, Gemma-3-12B and gpt-oss-20b (reports/nvidia/v3-depth, in no fit: sliding
   windows), projected from depth 0 with the shipped values, with and without the windows;
4. across quantization types: on one chip and in one run, each F16 prompt figure projected
   from each quantized one and the reverse (the fit never sees these ratios: every model
   file has its own level), with the H200 prompt-path runs of scripts/prompt_path_check.py
   (reports/nvidia/v2/prompt-paths-*-samples.json, in no fit); `--fit` prints the
   `cross_quant_sigma` they give;
5. one 2026 build's MMQ prompt figures on five NVIDIA generations (published.yaml's
   `llama8b-mmq-cuda-pp512`, `fit: false`): each chip projected from every other chip of
   its file with the shipped values.

Bandwidth scaling, the reference page's method, is scored on the same pairs (at depth it
is the depth-0 figure scaled by bandwidth: it has no depth term).

    python scripts/projection_accuracy.py            # the validation tables of docs/projection.md
    python scripts/projection_accuracy.py --fit      # fit on everything, print the YAML values
                                                     # and the LOCO prediction-interval sigmas
    python scripts/projection_accuracy.py --fit --write --only hip --only vulkan
                                                     # write those backends' values alone
    python scripts/projection_accuracy.py --no-screen   # keep the screened figures in

Before anything is fitted, published prompt figures that contradict their own build's
kernel path are screened out (`inconsistent`: a quantized model faster than the F16 model
where the quantized kernels do the F16 GEMM's work and more); the output lists them and
prints the held-out checks with them kept in as well.

The data, the fit and its checks, and the tables are benchkit.projection's `published`,
`fit` and `accuracy_tables`; this script chooses what to print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchkit.projection.accuracy_tables import (HEADER, attention_rates, by_series, coverage,
                                                 depth_table, pct, per_chip_table, print_fit,
                                                 quant_table, summary_rows, transfer_groups,
                                                 transfer_table, window_depth_table)
from benchkit.projection.fit import (cross_quant_sigma, depth_attention_sigma, depth_pairs,
                                     file_pairs, fit_all, held_out, mape, model_pairs,
                                     quant_pairs, sigmas, unanchored_pairs, window_depth_pairs)
from benchkit.projection.priors import Priors, load_priors
from benchkit.projection.published import (all_measurements, check_only_measurements,
                                           depth_run_measurements, paths_measurements,
                                           screened)

VENDOR_BACKEND = {"apple": "metal", "nvidia": "cuda"}
# Backends checked across makers' chips (leave-one-chip-out only): their measurements are
# the few published pull-request and issue tables of published.yaml.
BACKEND_CHECKS = ("hip", "vulkan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true",
                        help="fit on all data, print the YAML values and the LOCO sigmas")
    parser.add_argument("--vendor", action="append", choices=sorted(VENDOR_BACKEND),
                        help="restrict the held-out checks to a vendor (repeatable)")
    parser.add_argument("--write", action="store_true",
                        help="with --fit: write the fitted values and sigmas into "
                             "benchkit/data/projection.yaml (run twice: the sigmas of the "
                             "second run are those of the values the first wrote)")
    parser.add_argument("--only", action="append", metavar="BACKEND",
                        help="with --fit --write: write only this backend's fitted values "
                             "(repeatable); the host terms and the sigmas stay as they are")
    parser.add_argument("--no-screen", action="store_true",
                        help="keep the published prompt figures that contradict their build's "
                             "kernel path (`inconsistent`) in the fit and the checks")
    args = parser.parse_args()
    base = load_priors()
    ms = all_measurements(screen=not args.no_screen)
    vendors = args.vendor or sorted(VENDOR_BACKEND)
    loco = {v: held_out(ms, base, v, "chip", VENDOR_BACKEND[v]) for v in vendors}
    by_backend = {b: held_out(ms, base, None, "chip", b) for b in BACKEND_CHECKS}
    across = quant_pairs(ms + paths_measurements(), base)
    if args.fit:
        priors, rms = fit_all(ms, base)
        print(f"# fitted on {len(ms)} measurements")
        print_fit(priors, rms, {**{VENDOR_BACKEND[v]: sigmas(p, base.interval)
                                   for v, p in loco.items()},
                                **{b: sigmas(p, base.interval) for b, p in by_backend.items()}})
        print("(hip and vulkan sigmas are written no narrower than the default: too few pairs "
              "to narrow a range)")
        print("cross_quant_sigma (90% of |log error| across quantization types / 1.645, "
              "less the prompt sigma in quadrature):")
        for backend in sorted({p["backend"] for p in across}):
            print(f"  {backend}: {cross_quant_sigma(across, backend, base):.3f}")
        if "nvidia" in vendors:
            print("depth_attention_sigma (90% of |log error| / attention share over the "
                  "same-chip depth pairs, / 1.645):")
            print(f"  cuda: {depth_attention_sigma(depth_pairs(ms, base), base.interval):.3f}")
        transfer, alone = model_pairs(ms, base), unanchored_pairs(ms, base)
        print("model_transfer_sigma (90% of |log error| / 1.645 over the leave-one-model-out "
              "pairs, anchored on another model of the same run / with no anchor):")
        print(f"  anchored: {sigmas(transfer, base.interval)}")
        print(f"  no anchor: {sigmas(alone, base.interval)}")
        few = floored_sigmas(by_backend, base)
        if args.write and args.only:
            write_only(priors, args.only, few, base)
        elif args.write:
            write(priors, rms, loco, across, ms, base, transfer, alone, few)
        return
    lofo = {v: held_out(ms, base, v, "family", VENDOR_BACKEND[v]) for v in vendors}
    print("\n".join(HEADER))
    for v in vendors:
        print("\n".join(summary_rows(f"{v}: leave-one-chip-out, all data", loco[v])))
        for name, pairs in by_series(loco[v]).items():
            print("\n".join(summary_rows(f"{v}: LOCO, {name}", pairs)))
        print("\n".join(summary_rows(f"{v}: leave-one-family-out, all data", lofo[v])))
    for b, pairs in by_backend.items():
        print("\n".join(summary_rows(f"{b}: leave-one-chip-out, all data", pairs)))
        for name, mine in by_series(pairs).items():
            print("\n".join(summary_rows(f"{b}: LOCO, {name}", mine)))
    if "nvidia" in vendors:
        deep = depth_pairs(ms, base)
        same = [p for p in deep if p["anchor"] == p["chip"]]
        print("\n".join(summary_rows("nvidia: context depth, from depth 0 of the same chip", same)))
        print("\n".join(summary_rows("nvidia: context depth, from depth 0 of another chip",
                                      [p for p in deep if p not in same])))
        windows = window_depth_pairs(depth_run_measurements(), base)
        print("\n".join(summary_rows("nvidia: depth of 2026 models (H100, in no fit), "
                                      "from depth 0", windows)))
        mmq = file_pairs(check_only_measurements(), base)
        print("\n".join(summary_rows("nvidia: one 2026 MMQ build on five generations "
                                      "(#24127, in no fit)", mmq)))
    if "nvidia" in vendors:
        print_transfer(ms, base)
    print_screen(args.no_screen, base, vendors)
    print("\n### Across quantization types: one chip, one run, F16 <-> quantized\n")
    print(quant_table(across))
    for backend in sorted({p["backend"] for p in across}):
        mine = [p for p in across if p["backend"] == backend]
        print(f"\n{backend}: {len(mine)} pairs, mean abs error "
              f"{pct(mape(mine, 'roofline', 'pp'))}, 90% range holds {coverage(mine, 'pp')}")
    for v in vendors:
        print(f"\n### {v}: per target chip, leave-one-chip-out\n")
        print(per_chip_table(loco[v]))
    for b, pairs in by_backend.items():
        print(f"\n### {b}: per target chip, leave-one-chip-out\n")
        print(per_chip_table(pairs) if pairs else "No pairs: no model measured on two chips.")
    if "nvidia" in vendors:
        print("\n### nvidia: context depth, each case from depth 0\n")
        print(depth_table(deep))
        print("\n### nvidia: attention at depth, measured (tok/s: mean of the case's "
              "iterations)\n")
        print(attention_rates(ms))
        print("\n### nvidia: depth of 2026 models, sliding windows (H100, "
              "reports/nvidia/v3-depth, in no fit), each case from depth 0\n")
        print(window_depth_table(windows))
        print("\n### nvidia: one 2026 MMQ build on five generations (#24127, in no fit), "
              "per target chip, from every other chip of its file\n")
        print(per_chip_table(mmq))


PRIORS_PATH = Path(__file__).resolve().parents[1] / "benchkit" / "data" / "projection.yaml"


def floored_sigmas(by_backend: dict, base: Priors) -> dict[str, dict[str, float]]:
    """Interval sigmas of the backends checked on a few pairs (BACKEND_CHECKS): their
    leave-one-chip-out sigma, never below the default a backend without checks gets (a
    handful of pairs can show a range is too narrow, not that it may be narrower)."""
    out: dict[str, dict[str, float]] = {}
    for b, pairs in by_backend.items():
        s = sigmas(pairs, base.interval)
        out[b] = {kind: round(max(s[kind], table["default"]), 3)
                  for kind, table in (("tg", base.decode_sigma), ("pp", base.prompt_sigma))
                  if kind in s}
    return out


def sigma_tables(few: dict[str, dict[str, float]], decode: dict, prompt: dict) -> dict:
    """decode_sigma / prompt_sigma with the few-pair backends' floored sigmas merged in."""
    return {"decode_sigma": {**decode, **{b: s["tg"] for b, s in few.items() if "tg" in s}},
            "prompt_sigma": {**prompt, **{b: s["pp"] for b, s in few.items() if "pp" in s}}}


def write_only(priors, backends: list[str], few: dict, base: Priors) -> None:
    """--fit --write --only: the named backends' fitted values alone (a refit after new data
    on those backends leaves the others' values, the host terms and the other backends'
    sigmas as they are); a named backend of BACKEND_CHECKS gets its floored sigmas."""
    from benchkit.projection.fit_yaml import write_fit

    mine = {b: s for b, s in few.items() if b in backends}
    tables = sigma_tables(mine, dict(base.decode_sigma), dict(base.prompt_sigma)) if mine else None
    changed = write_fit(PRIORS_PATH, priors, backends, tables, host=False)
    print(f"wrote {len(changed)} values of {', '.join(backends)} into {PRIORS_PATH.name}")


def write(priors, rms, loco, across, ms, base, transfer, alone, few) -> None:
    """--fit --write: the fitted values and the sigmas into projection.yaml."""
    from benchkit.projection.fit_yaml import write_fit

    loco_sig = {VENDOR_BACKEND[v]: sigmas(p, base.interval) for v, p in loco.items()}
    tables = {
        **sigma_tables(
            few,
            {**{b: round(s["tg"], 3) for b, s in loco_sig.items() if "tg" in s},
             "default": base.decode_sigma["default"]},
            {**{b: round(s["pp"], 3) for b, s in loco_sig.items() if "pp" in s},
             "default": base.prompt_sigma["default"]}),
        "cross_quant_sigma": {**{b: round(cross_quant_sigma(across, b, base), 3)
                                 for b in sorted({p["backend"] for p in across})},
                              "default": base.cross_quant_sigma["default"]},
        "model_transfer_sigma": {"default": round(max(
            max(sigmas(transfer, base.interval).values()),
            max(sigmas(alone, base.interval).values())), 3)},
    }
    depth = round(depth_attention_sigma(depth_pairs(ms, base), base.interval), 3)
    tables["depth_attention_sigma"] = {"cuda": depth, "default": depth}
    changed = write_fit(PRIORS_PATH, priors, sorted(rms), tables)
    print(f"wrote {len(changed)} values into {PRIORS_PATH.name}")


def print_transfer(ms, base: Priors) -> None:
    """Across models, settings and placements of one run (published.BENCH_RUN_DIRS), each
    model file held out of the fit: from the run's dense LLaMA-2 7B Q4_0 figure at the same
    flash attention (bandwidth: that figure scaled by file size), and with no anchor."""
    transfer, alone = model_pairs(ms, base), unanchored_pairs(ms, base)
    print("\n".join(HEADER))
    for label, pairs in transfer_groups(transfer).items():
        print("\n".join(summary_rows(f"nvidia: across models from LLaMA-2 7B, {label}", pairs)))
    print("\n".join(summary_rows("nvidia: no anchor, every run figure", alone)))
    print("\n### Across models, settings and placements: one H100 run, each model held out, "
          "from its LLaMA-2 7B Q4_0 figure\n")
    print(transfer_table(transfer))
    print("\n### No anchor: the same run's figures (and benchkit's committed H100/H200 runs) "
          "projected from every other measurement\n")
    print(transfer_table(alone))


def print_screen(off: bool, base: Priors, vendors: list[str]) -> None:
    """The published figures `inconsistent` leaves out, and the checks with them kept in."""
    rows = screened()
    print("\n### Screened: prompt figures that contradict their build's kernel path\n")
    if off:
        print(f"None left out (--no-screen); the screen would leave out {len(rows)} chip(s).")
        return
    for series, chip, why in rows:
        print(f"- {series}, {chip}: {why}; both of its prompt figures left out")
    if not rows:
        print("None.")
        return
    kept = all_measurements(screen=False)
    print("\nThe same checks with them kept in (python scripts/projection_accuracy.py "
          "--no-screen):\n")
    print("\n".join(HEADER))
    for v in vendors:
        for group, label in (("chip", "leave-one-chip-out"), ("family", "leave-one-family-out")):
            print("\n".join(summary_rows(f"{v}: {label}, nothing screened",
                                          held_out(kept, base, v, group,
                                                   VENDOR_BACKEND[v]))))


if __name__ == "__main__":
    main()

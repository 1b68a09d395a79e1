#!/usr/bin/env python3
"""How good are benchkit's projections? Checked against published measurements.

Reads benchkit/data/published.yaml (llama.cpp's Apple Silicon table: LLaMA-2 7B in F16,
Q8_0 and Q4_0, pp512 and tg128 on 27 chip configurations; and an H100 / H200 pair) and,
from a single measurement at a time (one chip, one quantization), projects every other
chip measured on the same model with both methods. Prints per-chip errors and the mean
absolute percentage error (MAPE) for decode (tg128) and prompt (pp512).

Three views, from most to least flattering:

1. shipped priors: the Metal priors in benchkit/data/projection.yaml were fitted on this
   same table (5 parameters, none per chip or family), so this view is in-sample;
2. leave-one-family-out: for each generation (M1, M2, M3, M4) the priors are refitted
   without it, then projected onto it from every chip of the other generations;
3. the GPU pair (H100 <-> H200, TinyLlama shape): tiny and in-sample for one parameter.

    python scripts/projection_accuracy.py            # the tables in docs/projection.md
    python scripts/projection_accuracy.py --fit      # refit the Metal priors, print YAML
    python scripts/projection_accuracy.py --anchor m4max
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import replace
from importlib import resources
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from benchkit.chips import load_chips
from benchkit.projection import (BackendPriors, Measurement, Priors, decode_terms, load_priors,
                                 prompt_compute, validate)

GIB = 2 ** 30


def published() -> list[dict[str, Any]]:
    """The published series as shipped with the package."""
    text = resources.files("benchkit").joinpath("data/published.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["series"]


def measurements(series: dict[str, Any]) -> dict[str, list[Measurement]]:
    """Measurements of one series, per quantization (each quant is a different model)."""
    model = series["model"]
    out: dict[str, list[Measurement]] = {}
    for chip_id, per_quant in series["rows"].items():
        for quant, (pp, tg) in per_quant.items():
            size = series["quants"][quant]["size_gib"] * GIB
            out.setdefault(quant, []).append(Measurement(
                chip_id=chip_id, tg_tps=tg, pp_tps=pp, model_bytes=size,
                n_layers=model["n_layers"], n_params=model["n_params"],
                source=series["id"], model_key=f"{series['id']}:{quant}",
                model_name=f"{model['name']} {quant}"))
    return out


# ----------------------------------------------------------------------------- fitting

def fit_metal(ms: list[Measurement], base: Priors) -> tuple[BackendPriors, dict[str, float]]:
    """Least-squares fit of the Metal priors on log tg and log pp; returns priors and rms."""
    chips = load_chips()
    metal = base.backend("metal")

    def with_params(p: np.ndarray) -> Priors:
        bp = replace(metal, efficiency_single_die=p[0], efficiency_multi_die=p[1],
                     layer_latency_ms=p[2], layer_compute_ms_tflops=p[3])
        return replace(base, backends={**base.backends, "metal": bp})

    def decode_res(p: np.ndarray) -> np.ndarray:
        pri = with_params(p)
        out = []
        for m in ms:
            mem, fixed = decode_terms(chips[m.chip_id], m.model_bytes, m.n_layers, pri)
            out.append(math.log(1 / (mem + fixed)) - math.log(m.tg_tps))
        return np.array(out)

    dec = least_squares(decode_res, [0.8, 0.7, 0.1, 0.5], bounds=([0.1, 0.1, 0, 0], [1.5, 1.5, 5, 50]))
    # Prompt: log pp = log(eff) + log(compute x share / 2N); eff and the share in closed form
    # (mean log ratio on single-die parts, then the multi-die share on the rest).
    pp = [m for m in ms if m.pp_tps]
    single = [math.log(m.pp_tps * 2 * m.n_params / (prompt_compute(chips[m.chip_id], base) * 1e12))
              for m in pp if not chips[m.chip_id].multi_die]
    eff = math.exp(statistics.fmean(single))
    multi = [m.pp_tps * 2 * m.n_params / (eff * chips[m.chip_id].fp32_tflops * 1e12)
             for m in pp if chips[m.chip_id].multi_die]
    share = math.exp(statistics.fmean(math.log(x) for x in multi)) if multi else metal.prompt_multi_die_share
    fitted = replace(metal, efficiency_single_die=float(dec.x[0]),
                     efficiency_multi_die=float(dec.x[1]), layer_latency_ms=float(dec.x[2]),
                     layer_compute_ms_tflops=float(dec.x[3]), prompt_efficiency=eff,
                     prompt_multi_die_share=share)
    pp_res = [math.log(m.pp_tps * 2 * m.n_params / (eff * prompt_compute(chips[m.chip_id], base)
              * 1e12 * (share / metal.prompt_multi_die_share if chips[m.chip_id].multi_die else 1)))
              for m in pp]
    rms = {"decode": float(np.sqrt(np.mean(dec.fun ** 2))),
           "prompt": float(np.sqrt(np.mean(np.square(pp_res))))}
    return fitted, rms


def fit_cuda_latency(ms: list[Measurement], base: Priors) -> tuple[float, float]:
    """CUDA's per-layer latency by least squares on log tg, efficiency held at its prior."""
    from scipy.optimize import minimize_scalar

    chips = load_chips()
    cuda = base.backend("cuda")

    def loss(tau: float) -> float:
        pri = replace(base, backends={**base.backends, "cuda": replace(cuda, layer_latency_ms=tau)})
        return sum((math.log(1 / sum(decode_terms(chips[m.chip_id], m.model_bytes, m.n_layers, pri)))
                    - math.log(m.tg_tps)) ** 2 for m in ms)

    best = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded")
    return float(best.x), math.sqrt(best.fun / len(ms))


def with_metal(base: Priors, metal: BackendPriors) -> Priors:
    return replace(base, backends={**base.backends, "metal": metal})


# ----------------------------------------------------------------------------- checks

def single_anchor_errors(per_quant: dict[str, list[Measurement]], priors: Priors,
                         anchors: list[str] | None = None,
                         targets: set[str] | None = None) -> list[dict[str, Any]]:
    """Pairs (anchor, target) from one measurement at a time, per quantization."""
    pairs = []
    for ms in per_quant.values():
        result = validate(ms, anchors=[a for a in (anchors or [m.chip_id for m in ms])
                                       if any(m.chip_id == a for m in ms)], priors=priors)
        pairs += [p for p in result["pairs"] if targets is None or p["chip"] in targets]
    return pairs


def mape(pairs: list[dict[str, Any]], method: str, kind: str) -> float | None:
    errs = [abs(p[method][f"{kind}_error"]) for p in pairs if p[method][f"{kind}_error"] is not None]
    return 100 * statistics.fmean(errs) if errs else None


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}%"


def signed(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def summary_table(title: str, pairs: list[dict[str, Any]]) -> str:
    lines = [f"**{title}** ({len(pairs)} anchor → chip pairs)", "",
             "| Method | Decode MAPE | Prompt MAPE | Decode worst | Prompt worst |",
             "|---|---|---|---|---|"]
    for method in ("bandwidth", "roofline"):
        worst = {k: max((abs(p[method][f"{k}_error"]) for p in pairs
                         if p[method][f"{k}_error"] is not None), default=None) for k in ("tg", "pp")}
        lines.append(f"| {method} | {pct(mape(pairs, method, 'tg'))} | "
                     f"{pct(mape(pairs, method, 'pp'))} | "
                     f"{pct(100 * worst['tg'] if worst['tg'] is not None else None)} | "
                     f"{pct(100 * worst['pp'] if worst['pp'] is not None else None)} |")
    return "\n".join(lines)


def per_chip_table(pairs: list[dict[str, Any]]) -> str:
    """Per target chip: mean absolute error over anchors and quantizations, both methods."""
    lines = ["| Chip | pairs | decode: bandwidth | decode: roofline | prompt: bandwidth | "
             "prompt: roofline |", "|---|---|---|---|---|---|"]
    for chip in dict.fromkeys(p["chip"] for p in pairs):
        mine = [p for p in pairs if p["chip"] == chip]
        lines.append(f"| {chip} | {len(mine)} | " + " | ".join(
            pct(mape(mine, meth, kind)) for kind in ("tg", "pp")
            for meth in ("bandwidth", "roofline")) + " |")
    return "\n".join(lines)


def anchor_table(pairs: list[dict[str, Any]], anchor: str) -> str:
    """Every projection from one anchor: measured vs projected, signed errors."""
    lines = ["| Model | Chip | tg measured | tg bandwidth | tg roofline (90% range) | "
             "pp measured | pp bandwidth | pp roofline |", "|---|---|---|---|---|---|---|---|"]
    for p in (p for p in pairs if p["anchor"] == anchor):
        bw, rf = p["bandwidth"], p["roofline"]
        lines.append(
            f"| {p['model']} | {p['chip']} | {p['measured_tg']:.2f} | {bw['tg']:.1f} "
            f"({signed(bw['tg_error'])}) | {rf['tg']:.1f} ({signed(rf['tg_error'])}; "
            f"{rf['tg_low']:.0f}–{rf['tg_high']:.0f}) | "
            + (f"{p['measured_pp']:.0f} | {bw['pp']:.0f} ({signed(bw['pp_error'])}) | "
               f"{rf['pp']:.0f} ({signed(rf['pp_error'])}) |" if p["measured_pp"] else "— | — | — |"))
    return "\n".join(lines)


def coverage(pairs: list[dict[str, Any]]) -> float:
    """Share of roofline decode projections whose range holds the measured figure."""
    inside = [p["roofline"]["tg_low"] <= p["measured_tg"] <= p["roofline"]["tg_high"]
              for p in pairs if p["roofline"]["tg"]]
    return 100 * sum(inside) / len(inside)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="refit the Metal priors and print them")
    parser.add_argument("--anchor", default="m4max", help="anchor whose projections to list")
    args = parser.parse_args()

    series = {s["id"]: s for s in published()}
    apple = measurements(series["llama2-7b-apple"])
    apple_all = [m for ms in apple.values() for m in ms]
    shipped = load_priors()

    if args.fit:
        metal, rms = fit_metal(apple_all, shipped)
        print(f"# fitted on {len(apple_all)} Apple rows; rms log error decode "
              f"{rms['decode']:.3f}, prompt {rms['prompt']:.3f}")
        for key in ("efficiency_single_die", "efficiency_multi_die", "layer_latency_ms",
                    "layer_compute_ms_tflops", "prompt_multi_die_share", "prompt_efficiency"):
            print(f"    {key}: {getattr(metal, key):.4g}")
        gpu = [m for ms in measurements(series["tinyllama-h100-h200"]).values() for m in ms]
        tau, rms_gpu = fit_cuda_latency(gpu, shipped)
        print(f"# cuda, fitted on {len(gpu)} H100 / H200 rows (efficiency held at "
              f"{shipped.backend('cuda').efficiency_single_die}); rms log error {rms_gpu:.3f}")
        print(f"    layer_latency_ms: {tau:.3g}")
        return

    chips = load_chips()
    print("## Apple Silicon, LLaMA-2 7B (llama.cpp discussion #4167), one measurement as anchor\n")
    pairs = single_anchor_errors(apple, shipped)
    print(summary_table("Shipped priors, every chip in turn as anchor (in-sample priors)", pairs))
    print(f"\nRoofline decode ranges (90%) that hold the measured figure: {coverage(pairs):.0f}%\n")
    from_anchor = [p for p in pairs if p["anchor"] == args.anchor]
    print(summary_table(f"Shipped priors, anchor {args.anchor} only", from_anchor))
    print()

    lofo: list[dict[str, Any]] = []
    for family in ("m1", "m2", "m3", "m4"):
        train = {q: [m for m in ms if chips[m.chip_id].family != family] for q, ms in apple.items()}
        metal, _ = fit_metal([m for ms in train.values() for m in ms], shipped)
        priors = with_metal(shipped, metal)
        anchors = [c for c in dict.fromkeys(m.chip_id for m in apple_all)
                   if chips[c].family != family]
        targets = {c for c in chips if chips[c].family == family}
        lofo += single_anchor_errors(apple, priors, anchors=anchors, targets=targets)
    print(summary_table("Leave-one-family-out: priors refitted without the target's generation, "
                        "every other-generation chip as anchor (held out)", lofo))
    print(f"\nRoofline decode ranges (90%) that hold the measured figure: {coverage(lofo):.0f}%\n")

    print(f"### Per chip (shipped priors, mean absolute error over every anchor and quant)\n")
    print(per_chip_table(pairs))
    print(f"\n### Every projection from {args.anchor}\n")
    print(anchor_table(pairs, args.anchor))

    gpu = measurements(series["tinyllama-h100-h200"])
    print("\n## NVIDIA H100 SXM <-> H200, TinyLlama-1.1B shape (benchkit issue 3, llama-bench)\n")
    gpairs = single_anchor_errors(gpu, shipped)
    print(anchor_table(gpairs, "h100"))
    print(anchor_table(gpairs, "h200").split("\n", 2)[2])
    print()
    print(summary_table("GPU pair", gpairs))


if __name__ == "__main__":
    main()

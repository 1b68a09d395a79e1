#!/usr/bin/env python3
"""How well does benchkit's multi-GPU projection (benchkit/projection/multigpu.py) project
published machines with several GPUs from one GPU of the same kind?

Data: benchkit/data/multigpu_published.yaml (the RunPod LLaMA 3 table of
XiongjieDai/GPU-Benchmarks-on-LLM-Inference, May 2024: RTX 3090 x 1/2/4/6 and RTX 4090
x 1/2/4/8, 8B Q4_K_M / F16 and 70B Q4_K_M / F16, llama-bench at its default layer split).

The one fitted figure, links.yaml's `layer_boundary_us` (what one layer-split boundary
costs a generated token beyond the hidden state's bytes), is fitted on the RTX 3090
rows' decode figures; the RTX 4090 rows are the check, never seen by the fit. Each case
is projected from the one-GPU figure of the same model, chip and source (tg512, pp512,
and pp1024, whose two ubatches pipeline); the 70B models, which no single card held,
from the 8B figure of the same type scaled by file size (bandwidth only), or with
`--roofline` from benchkit's own single-chip projection of that 8B figure, as
`benchkit project --machine` does.

    python scripts/multigpu_validation.py              # every case, held-out errors
    python scripts/multigpu_validation.py --fit        # the layer_boundary_us to commit
    python scripts/multigpu_validation.py --roofline   # the 70B cases end to end
"""

from __future__ import annotations

import argparse

from benchkit.projection.multigpu import (load_links, load_published, machine_projection,
                                          validate_published)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1%}"


def print_cases(v: dict) -> None:
    for s in v["series"]:
        print(f"Series {s['id']}: layer_boundary_us {s['layer_boundary_us']:.1f} (fitted on "
              f"{s['fit_on']}; checked on {s['check_on']})\n  source: {s['source']}\n")
    print("| role | chip | GPUs | model | per-GPU time from | tg512 measured | projected | "
          "error | pp512 error | pp1024 error |")
    print("| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for c in v["cases"]:
        print(f"| {c['role']} | {c['chip']} | {c['gpus']} | {c['model']} | {c['per_chip']} | "
              f"{c['measured']['tg']:.2f} | {c['projected']['tg']:.2f} | "
              f"{_pct(c['errors']['tg'])} | {_pct(c['errors']['pp'])} | "
              f"{_pct(c['errors']['pp_pipelined'])} |")
    print("\nMean absolute error (tok/s, projected against measured):\n")
    print("| role | per-GPU time | test | cases | MAPE |")
    print("| --- | --- | --- | ---: | ---: |")
    for s in v["summary"]:
        print(f"| {s['role']} | {s['per_chip']} | {s['test']} | {s['n']} | {s['mape']:.1%} |")


def print_roofline() -> None:
    """The 70B cases from benchkit's roofline projection of the one-GPU 8B figure."""
    from benchkit.projection.measurements import Measurement
    from benchkit.projection.shapes import shape_from_preset

    print("\n70B cases from benchkit's roofline projection of the one-GPU 8B figure "
          "(same type, same source):\n")
    print("| chip | GPUs | model | tg512 measured | projected | error | pp512 measured | "
          "projected | error |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for series in load_published():
        models = series["models"]
        for chip, by_count in series["rows"].items():
            single = by_count[1]
            for count, rows in by_count.items():
                for key, figures in rows.items():
                    if key in single:
                        continue
                    quant = models[key]["quant"]
                    small = next(k for k in single if models[k]["quant"] == quant)
                    m = models[small]
                    anchor = Measurement(chip_id=chip, tg_tps=single[small][0],
                                         pp_tps=single[small][1], model_bytes=m["size_gb"] * 1e9,
                                         quant=quant, preset=m["preset"], tg_tokens=512,
                                         source=series["id"])
                    shape = shape_from_preset(models[key]["preset"], quant,
                                              models[key]["size_gb"] * 1e9)
                    r = machine_projection(f"{count}x{chip}@{series['link']}", "layer",
                                           [anchor], shape=shape)
                    tg, pp = r["tg_tps"], r["pp_tps"]
                    print(f"| {chip} | {count} | {key} | {figures[0]:.2f} | "
                          f"{'—' if tg is None else f'{tg:.2f}'} | "
                          f"{_pct(tg / figures[0] - 1 if tg else None)} | {figures[1]:.1f} | "
                          f"{'—' if pp is None else f'{pp:.1f}'} | "
                          f"{_pct(pp / figures[1] - 1 if pp else None)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="print the fitted layer_boundary_us")
    ap.add_argument("--roofline", action="store_true",
                    help="also project the 70B cases through benchkit's roofline")
    args = ap.parse_args()
    v = validate_published()
    if args.fit:
        for s in v["series"]:
            print(f"overheads.layer_boundary_us.value: {s['layer_boundary_us']:.0f}  "
                  f"# fitted on {s['id']} {s['fit_on']} decode (committed: "
                  f"{load_links().overheads.layer_boundary_us:g})")
        return
    print_cases(v)
    if args.roofline:
        print_roofline()


if __name__ == "__main__":
    main()

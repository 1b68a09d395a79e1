"""The tables scripts/projection_accuracy.py prints (docs/projection.md shows them): held-out
errors of both methods per check, per chip, per depth case and across quantization types,
and the fitted values in projection.yaml's layout."""

from __future__ import annotations

import statistics

from benchkit.core.units import fmt_tps
from benchkit.projection.fit import mape
from benchkit.projection.fit_yaml import SCALARS
from benchkit.projection.measurements import KERNEL_ENGINES, Measurement
from benchkit.projection.physics import weight_group
from benchkit.projection.priors import Priors


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}%"


def coverage(pairs: list[dict], kind: str) -> str:
    inside = [p["roofline"][f"{kind}_low"] <= p[f"measured_{kind}"] <= p["roofline"][f"{kind}_high"]
              for p in pairs if p["roofline"][kind] and p[f"measured_{kind}"]]
    return f"{100 * sum(inside) / len(inside):.0f}%" if inside else "—"


def summary_rows(label: str, pairs: list[dict]) -> list[str]:
    n_tg = sum(1 for p in pairs if p["roofline"]["tg_error"] is not None)
    n_pp = sum(1 for p in pairs if p["roofline"]["pp_error"] is not None)
    return [f"| {label} | {n_tg} / {n_pp} | {pct(mape(pairs, 'bandwidth', 'tg'))} | "
            f"{pct(mape(pairs, 'roofline', 'tg'))} | {pct(mape(pairs, 'bandwidth', 'pp'))} | "
            f"{pct(mape(pairs, 'roofline', 'pp'))} | {coverage(pairs, 'tg')} / "
            f"{coverage(pairs, 'pp')} |"]


HEADER = ["| Check | pairs (decode / prompt) | decode: bandwidth | decode: roofline | "
          "prompt: bandwidth | prompt: roofline | 90% range holds (decode / prompt) |",
          "|---|---|---|---|---|---|---|"]


def by_series(pairs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in pairs:
        out.setdefault(p["source"] if not p["source"].endswith(".json") else
                       "benchkit results/nvidia-h*", []).append(p)
    return out


def per_chip_table(pairs: list[dict]) -> str:
    lines = ["| Chip | pairs | decode: bandwidth | decode: roofline | prompt: bandwidth | "
             "prompt: roofline |", "|---|---|---|---|---|---|"]
    for chip in sorted(dict.fromkeys(p["chip"] for p in pairs)):
        mine = [p for p in pairs if p["chip"] == chip]
        lines.append(f"| {chip} | {len(mine)} | " + " | ".join(
            pct(mape(mine, meth, kind)) for kind in ("tg", "pp")
            for meth in ("bandwidth", "roofline")) + " |")
    return "\n".join(lines)


def attention_rates(ms: list[Measurement]) -> str:
    """What attention at depth reaches, measured: per file, engine and depth, the prompt time
    per token the depth adds over depth 0 of the same file and engine, against the FLOPs it
    adds (4 x heads x head size x the layer-tokens attended: layers x depth, a sliding
    layer at most its window), in TFLOPS."""
    lines = ["| Model (engine) | chip | depth | prompt measured | added µs / token | "
             "attention TFLOPS |", "|---|---|---|---|---|---|"]
    bare = {(m.chip_id, m.model_key): m.pp_tps for m in ms if m.pp_tps and m.depth == 0}
    for m in sorted((m for m in ms if m.pp_tps and m.depth and m.shape),
                    key=lambda m: (m.model_key, m.depth)):
        base = bare.get((m.chip_id, m.model_key))
        if not base:
            continue
        added = 1 / m.pp_tps - 1 / base
        half = m.pp_tokens / 2     # a prompt token attends to half the prompt on average
        flops = 4 * m.shape.n_head * m.shape.head_dim * (m.shape.attended(m.depth + half)
                                                         - m.shape.attended(half))
        engine = (m.model_key.split(":") + [KERNEL_ENGINES[0]])[1]
        lines.append(f"| {m.model_name} ({engine}) | {m.chip_id} | {m.depth:,} | "
                     f"{fmt_tps(m.pp_tps)} | {added * 1e6:.2f} | {flops / added / 1e12:.0f} |")
    return "\n".join(lines)


def depth_table(pairs: list[dict]) -> str:
    """Per depth case: measured tok/s and the errors of both methods, same chip and across."""
    lines = ["| Model (engine) | anchor → target | depth | decode measured | decode: bandwidth | "
             "decode: roofline | prompt measured | prompt: bandwidth | prompt: roofline |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(pairs, key=lambda p: (p["model"], p["engine"], p["anchor"] != p["chip"],
                                          p["depth"])):
        lines.append(
            f"| {p['model']} ({p['engine']}) | {p['anchor']} → {p['chip']} | {p['depth']} | "
            f"{p['measured_tg']:.1f} | {_signed(p['bandwidth']['tg_error'])} | "
            f"{_signed(p['roofline']['tg_error'])} | {p['measured_pp']:.0f} | "
            f"{_signed(p['bandwidth']['pp_error'])} | {_signed(p['roofline']['pp_error'])} |")
    return "\n".join(lines)


def window_depth_table(pairs: list[dict]) -> str:
    """Per depth case: measured tok/s, the bandwidth and roofline errors, and the roofline's
    as if the model had no sliding window ("—" where it has none)."""
    lines = ["| Model | depth | decode measured | decode: bandwidth | decode: roofline | "
             "decode: roofline, no window | prompt measured | prompt: bandwidth | "
             "prompt: roofline | prompt: roofline, no window |", "|---|" + "---|" * 9]
    for p in sorted(pairs, key=lambda p: (p["model"], p["depth"])):
        full = p.get("no_window")
        lines.append(
            f"| {p['model']} | {p['depth']:,} | {p['measured_tg']:.1f} | "
            f"{_signed(p['bandwidth']['tg_error'])} | {_signed(p['roofline']['tg_error'])} | "
            f"{_signed(full['tg_error']) if full else '—'} | {p['measured_pp']:,.0f} | "
            f"{_signed(p['bandwidth']['pp_error'])} | {_signed(p['roofline']['pp_error'])} | "
            f"{_signed(full['pp_error']) if full else '—'} |")
    return "\n".join(lines)


def quant_table(pairs: list[dict]) -> str:
    """Per backend and run: pairs, mean |error|, mean signed error of F16 targets."""
    lines = ["| backend | run | chips | pairs | mean abs error | F16 from quantized (mean) | "
             "quantized from F16 (mean) |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(p["backend"], p["run"]) for p in pairs})
    for backend, run in keys:
        mine = [p for p in pairs if (p["backend"], p["run"]) == (backend, run)]
        signed = {g: [p["roofline"]["pp_error"] for p in mine
                      if weight_group(p["target_quant"]) == g]
                  for g in ("f16", "quant")}
        lines.append(f"| {backend} | {run} | {len({p['chip'] for p in mine})} | {len(mine)} | "
                     f"{pct(mape(mine, 'roofline', 'pp'))} | "
                     + " | ".join(_signed(statistics.fmean(v)) if v else "—"
                                  for v in signed.values()) + " |")
    return "\n".join(lines)


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def print_fit(priors: Priors, rms: dict, sig: dict) -> None:
    """The fitted values in projection.yaml's layout (to paste there) and the held-out
    sigmas, on stdout."""
    for name, b in priors.backends.items():
        if name not in rms:
            continue
        print(f"  {name}:   # rms log error {rms[name]}")
        print(f"    efficiency: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.efficiency.items())}}}")
        for key in SCALARS:
            print(f"    {key}: {getattr(b, key):.4g}")
        print(f"    dequant: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.dequant.items())}}}")
        print(f"    prompt_efficiency: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.prompt_efficiency.items())}}}")
        print(f"    prompt_vector: {{{', '.join(f'{k}: {v:.4g}' for k, v in b.prompt_vector.items())}}}")
    print(f"  host: {', '.join(f'{k}: {v:.4g}' for k, v in priors.host.items())}")
    print("uncertainty (LOCO, 90% of held-out |log error| / 1.645):")
    for backend, s in sig.items():
        print(f"  {backend}: decode {s.get('tg', float('nan')):.3f}, prompt {s.get('pp', float('nan')):.3f}")


def transfer_groups(pairs: list[dict]) -> dict[str, list[dict]]:
    """Pairs across models split as the checks report them: dense and mixture-of-experts
    models fully offloaded, and partly offloaded placements."""
    return {"dense, all on the GPU": [p for p in pairs if not p["moe"] and not p["partial"]],
            "mixture of experts, all on the GPU": [p for p in pairs if p["moe"]
                                                   and not p["partial"]],
            "partial offload (-ngl, --n-cpu-moe)": [p for p in pairs if p["partial"]]}


def transfer_table(pairs: list[dict]) -> str:
    """One line per projected figure: model, setting, measured and projected (interval)."""
    lines = ["| Model | setting | decode measured | decode projected (90%) | error | "
             "prompt measured | prompt projected (90%) | error |",
             "|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        r = p["roofline"]
        cells = []
        for kind in ("tg", "pp"):
            err = r[f"{kind}_error"]
            cells += [fmt_tps(p[f"measured_{kind}"]) if p[f"measured_{kind}"] else "—",
                      f"{fmt_tps(r[kind])} ({fmt_tps(r[kind + '_low'])}–"
                      f"{fmt_tps(r[kind + '_high'])})" if r[kind] else "—",
                      f"{100 * err:+.1f}%" if err is not None else "—"]
        lines.append(f"| {p['model']} | {p['setting']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

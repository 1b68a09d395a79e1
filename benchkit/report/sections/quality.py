"""Quality beside speed: perplexity and KL divergence next to the tok/s of the same
configuration, the speed-versus-quality trade across quantizations of one model (its
Pareto front), and "the GPU computes what the CPU computes" as a number.

Rows come from `ppl` cases (benchkit.workloads.ppl.workload). Perplexities compare only on the same
text (sha256), n_ctx and chunks, so the chart groups by those as well as by the model
(architecture and parameter count: the quantizations of one model share both). A
synthetic stand-in's weights are random: its perplexity and KLD measure nothing about
quality, so they are never printed as figures, only said to be meaningless.
"""

from __future__ import annotations

from typing import Any

from benchkit.core.units import fmt_pct, fmt_tps
from benchkit.report.context import SYNTHETIC, Config, case, clean, figure, num
from benchkit.report.sections import section

NAME = "quality"
MEANINGLESS = f"not a quality figure: {SYNTHETIC} (random weights)"
# reference overrides that only move work between devices: the GPU = CPU check
PLACEMENT = {"n_gpu_layers", "op_offload"}


@section(NAME, order=50)
def context(df: Any, docs: dict, configs: list[Config]) -> dict[str, Any] | None:
    """The section's rows, checks and charts, or None when no configuration ran ppl."""
    rows = [_row(c, row, case(docs, row).get("summary") or {})
            for c in configs for row in c.rows.values() if row["workload_kind"] == "ppl"]
    if not rows:
        return None
    groups = _groups(rows)
    return {"rows": rows, "gpu_cpu": [g for r in rows if (g := _gpu_cpu(r))],
            "fronts": groups, "charts": _charts(groups),
            "synthetic": any(r["synthetic"] for r in rows)}


# --------------------------------------------------------------------------- rows


def _row(c: Config, row: Any, s: dict[str, Any]) -> dict[str, Any]:
    """One ppl case beside its configuration's speed."""
    ppl, se = s.get("ppl"), s.get("ppl_stderr")
    kld = s.get("kld_mean")
    out = {
        "label": c.label, "test": row["test"], "synthetic": c.synthetic,
        "model": c.model_name, "quant": clean(row.get("model_quant")) or "—",
        "arch": clean(row.get("model_arch")), "params": num(row.get("model_params")),
        "sha": c.model_sha256, "on_gpu": not c.is_cpu_only,
        "placement": c.placement_text, "n_gpu_layers": c.engine.get("n_gpu_layers"),
        "decode": figure(c.decode, c.synthetic), "prompt": figure(c.prompt, c.synthetic),
        "decode_tps": num(c.decode.get("tps_median")) if c.decode is not None else None,
        "eval_tps": num(row.get("tps_median")), "eval": figure(row, c.synthetic),
        "text": s.get("text") or "—", "text_sha": (s.get("text_sha256") or "")[:12],
        "text_sha256": s.get("text_sha256"), "n_ctx": s.get("n_ctx"),
        "chunks": s.get("chunks"), "tokens": s.get("tokens_scored"),
        "ppl_value": None if c.synthetic else ppl,
        "ppl_se_value": None if c.synthetic else se,
        "ppl": MEANINGLESS if c.synthetic else _pm(ppl, se, 4),
        "kld": None, "reference": None,
    }
    if kld is not None:
        out["reference"] = _reference_text(s.get("reference") or {})
        out["reference_raw"] = s.get("reference") or {}
        out["kld"] = {"meaningless": c.synthetic,
                      "mean": _pm(kld, s.get("kld_stderr"), 6),
                      "same_top": _pm_pct(s.get("same_top_p"), s.get("same_top_p_stderr")),
                      "dp_rms": _pm_pct(s.get("dp_rms"), s.get("dp_rms_stderr")),
                      "dp_mean": _pm_pct(s.get("dp_mean"), s.get("dp_stderr")),
                      "ppl_ratio": _pm(s.get("ppl_ratio"), s.get("ppl_ratio_stderr"), 5),
                      "ppl_base": _pm(s.get("ppl_base"), s.get("ppl_base_stderr"), 4),
                      "kld_p99": _f(((s.get("kld_percentiles") or {}).get("p99")), 6),
                      "kld_value": kld, "same_top_value": s.get("same_top_p")}
    return out


def _pm(x: float | None, se: float | None, digits: int) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def _pm_pct(x: float | None, se: float | None) -> str:
    if x is None:
        return "—"
    return fmt_pct(x, 3) + (f" ± {fmt_pct(se, 3)}" if se is not None else "")


def _f(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _reference_text(ref: dict[str, Any]) -> str:
    """'the same file, n_gpu_layers 0, op_offload false' or 'SmolLM2-f16.gguf'."""
    what = "the same file" if ref.get("same_file") else (ref.get("model") or "another file")
    changes = [f"{k} {str(v).lower() if isinstance(v, bool) else v}"
               for k, v in (ref.get("overrides") or {}).items()]
    if not changes and ref.get("same_file"):
        return "the same file and settings (itself)"
    return ", ".join([what, *changes])


# --------------------------------------------------------------------------- GPU = CPU


def _gpu_cpu(r: dict[str, Any]) -> dict[str, Any] | None:
    """A KLD case whose reference is the same file with no layer on the GPU."""
    ref = r.get("reference_raw") or {}
    settings, overrides = ref.get("settings") or {}, ref.get("overrides") or {}
    if (r["kld"] is None or not ref.get("same_file") or overrides.get("n_gpu_layers") != 0
            or set(overrides) - PLACEMENT or r["n_gpu_layers"] == 0):
        return None
    return {"label": r["label"], "test": r["test"], "on_gpu": r["on_gpu"],
            "synthetic": r["synthetic"], "placement": r["placement"],
            "op_offload": settings.get("op_offload"), "kld": r["kld"],
            "tokens": r["tokens"], "ppl": r["ppl"]}


# --------------------------------------------------------------------------- the trade


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Real-model ppl cases of one model (architecture, parameter count) on one text, n_ctx
    and chunk count, when at least two model files (quantizations) are among them; each
    point marked on or off the Pareto front (faster and lower perplexity win)."""
    by: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["synthetic"] or r["ppl_value"] is None:
            continue
        key = (r["arch"], r["params"], r["text_sha256"], r["n_ctx"], r["chunks"])
        per_config = by.setdefault(key, {})
        if r["label"] not in per_config or "+kld" in per_config[r["label"]]["test"]:
            per_config[r["label"]] = r       # one point per configuration, plain ppl first
    out = []
    for (arch, params, _, n_ctx, chunks), found in by.items():
        members = list(found.values())
        if len({m["sha"] for m in members}) < 2:
            continue
        use_decode = all(m["decode_tps"] for m in members)
        points = [{"label": m["label"], "quant": m["quant"], "ppl": m["ppl_value"],
                   "ppl_se": m["ppl_se_value"] or 0.0,
                   "speed": m["decode_tps"] if use_decode else m["eval_tps"],
                   "speed_test": (m["decode"] or {}).get("test") if use_decode else m["test"]}
                  for m in members if (m["decode_tps"] if use_decode else m["eval_tps"])]
        for p in points:
            p["front"] = not any(o is not p and o["speed"] >= p["speed"] and o["ppl"] <= p["ppl"]
                                 and (o["speed"] > p["speed"] or o["ppl"] < p["ppl"])
                                 for o in points)
            p["speed_text"] = fmt_tps(p["speed"])
            p["ppl_text"] = _pm(p["ppl"], p["ppl_se"], 4)
        points.sort(key=lambda p: -p["speed"])
        out.append({"model": f"{arch or 'model'} · {_params(params)} parameters",
                    "text": members[0]["text"], "n_ctx": n_ctx, "chunks": chunks,
                    "speed_axis": "decode, median tok/s" if use_decode else
                    "perplexity evaluation, median tok/s", "points": points,
                    "key": f"quality-front-{len(out) + 1}"})
    return out


def _params(n: float | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


def _charts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    charts = {}
    for g in groups:
        svg = front_chart(g)
        if svg:
            charts[g["key"]] = {
                "title": f"Speed versus perplexity: {g['model']}",
                "caption": (f"Each point a configuration: {g['speed_axis']} against perplexity "
                            f"on {g['text']} (n_ctx {g['n_ctx']}, {g['chunks']} chunks), bars "
                            f"± one standard error; the line joins the Pareto front (no "
                            f"other point is both faster and lower)."),
                "svg": svg}
    return charts


def front_chart(g: dict[str, Any]) -> str | None:
    """Perplexity (lower is better) against speed (higher is better), front joined."""
    from benchkit.report.charts.draw import WIDTH_IN, colour, pyplot, svg

    points = g["points"]
    if len(points) < 2:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.6))
    for i, p in enumerate(points):
        ax.errorbar(p["speed"], p["ppl"], yerr=p["ppl_se"], fmt="o", color=colour(i),
                    capsize=3, label=p["label"], zorder=3)
    front = sorted((p for p in points if p["front"]), key=lambda p: p["speed"])
    if len(front) > 1:
        ax.plot([p["speed"] for p in front], [p["ppl"] for p in front], "--", color="#555555",
                linewidth=1, zorder=2, label="Pareto front")
    ax.set_xlabel(g["speed_axis"])
    ax.set_ylabel("perplexity (lower is better)")
    ax.legend(fontsize=7, loc="best")
    return svg(fig, g["key"])

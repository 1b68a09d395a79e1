"""The core page's charts: throughput, every iteration, projection, achieved bandwidth.

Every chart is drawn from figures the report already prints in a table; a chart never
shows a number the tables do not. `chart_data` builds their inputs from the
configurations (`benchkit.report.context`); each drawing function takes plain lists of
dicts and returns the SVG markup (drawn as `benchkit.report.charts.draw` says), or None
when there is nothing to draw.
"""

from __future__ import annotations

from typing import Any, Sequence

from benchkit.core.units import fmt_tps
from benchkit.report.charts.draw import (MEASURED, PALETTE, WIDTH_IN, colour, pyplot, svg,
                                         tick_label, unique_legend)
from benchkit.report.context import SYNTHETIC, Config, clean, num


def throughput(bars: Sequence[dict[str, Any]]) -> str | None:
    """Median tok/s per configuration, one panel per test, whiskers from min to max.

    `bars`: dicts with test, label, median, low, high (tok/s), n. Tests get their own
    panel because prompt and decode rates differ by an order of magnitude.
    """
    if not bars:
        return None
    plt = pyplot()
    tests = list(dict.fromkeys(b["test"] for b in bars))
    labels = list(dict.fromkeys(b["label"] for b in bars))
    fig, axes = plt.subplots(len(tests), 1, squeeze=False,
                             figsize=(WIDTH_IN, 0.6 + (0.45 * len(labels) + 0.6) * len(tests)))
    for ax, test in zip(axes[:, 0], tests):
        rows = [b for b in bars if b["test"] == test]
        ys = list(range(len(rows)))
        medians = [b["median"] for b in rows]
        err = [[b["median"] - b["low"] for b in rows], [b["high"] - b["median"] for b in rows]]
        colours = [colour(labels.index(b["label"])) for b in rows]
        ax.barh(ys, medians, xerr=err, color=colours, capsize=3, height=0.6,
                error_kw={"elinewidth": 1})
        ax.set_yticks(ys, [tick_label(b["label"]) for b in rows])
        ax.invert_yaxis()
        ax.set_title(f"{test}: median tok/s, whiskers min to max over "
                     f"{_n_text(rows)} iterations", loc="left")
        ax.set_xlabel("tokens per second")
        for y, b in zip(ys, rows):
            ax.annotate(fmt_tps(b["median"]), (b["high"], y), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.margins(x=0.15)
    fig.tight_layout()
    return svg(fig, "throughput")


def iterations(series: Sequence[dict[str, Any]]) -> str | None:
    """tok/s of every timed iteration in order: drift or throttling shows as a slope.

    `series`: dicts with test, label, values (tok/s per iteration, in run order).
    """
    series = [s for s in series if s["values"]]
    if not series:
        return None
    plt = pyplot()
    tests = list(dict.fromkeys(s["test"] for s in series))
    labels = list(dict.fromkeys(s["label"] for s in series))
    ncols = min(len(tests), 2)
    nrows = -(-len(tests) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(WIDTH_IN, 2.6 * nrows + 0.4))
    for ax in axes.flat[len(tests):]:
        ax.set_visible(False)
    for ax, test in zip(axes.flat, tests):
        for s in (s for s in series if s["test"] == test):
            xs = range(1, len(s["values"]) + 1)
            ax.plot(xs, s["values"], marker="o", markersize=3, linewidth=1.2,
                    color=colour(labels.index(s["label"])), label=tick_label(s["label"], 48))
        ax.set_title(f"{test}: tok/s per timed iteration", loc="left")
        ax.set_xlabel("iteration")
        ax.set_ylabel("tokens per second")
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = unique_legend(list(axes.flat)[:len(tests)])
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 2), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.04 * (len(names) // 2)))
    fig.tight_layout()
    return svg(fig, "iterations")


def projection(rows: Sequence[dict[str, Any]]) -> str | None:
    """Projected decode tok/s per chip with its range; measured figures overlaid.

    `rows`: dicts with name, tg_tps, tg_low, tg_high, and measured_tg (None where the
    chip was not measured).
    """
    rows = [r for r in rows if r.get("tg_tps") is not None]
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.8 + 0.24 * len(rows)))
    ys = list(range(len(rows)))
    est = [r["tg_tps"] for r in rows]
    low = [r["tg_tps"] - (r.get("tg_low") if r.get("tg_low") is not None else r["tg_tps"])
           for r in rows]
    high = [(r.get("tg_high") if r.get("tg_high") is not None else r["tg_tps"]) - r["tg_tps"]
            for r in rows]
    ax.barh(ys, est, xerr=[low, high], color=PALETTE[0], alpha=0.55, height=0.6,
            error_kw={"elinewidth": 0.8, "capsize": 2}, label="projected (range)")
    measured = [(y, r["measured_tg"]) for y, r in zip(ys, rows) if r.get("measured_tg")]
    if measured:
        ax.scatter([m for _, m in measured], [y for y, _ in measured], color=MEASURED,
                   marker="D", s=22, zorder=3, label="measured")
    ax.set_yticks(ys, [r["name"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("decode tokens per second")
    ax.set_title("Projected decode throughput per chip", loc="left", pad=22)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return svg(fig, "projection")


def bandwidth(rows: Sequence[dict[str, Any]]) -> str | None:
    """Achieved memory bandwidth per configuration, against the chip's peak where known.

    `rows`: dicts with label, achieved_gbs, peak_gbs (None when the peak is unknown).
    """
    rows = [r for r in rows if r.get("achieved_gbs") is not None]
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.5 * len(rows)))
    ys = list(range(len(rows)))
    peaks = [(y, r["peak_gbs"]) for y, r in zip(ys, rows) if r.get("peak_gbs")]
    if peaks:
        ax.barh([y for y, _ in peaks], [p for _, p in peaks], height=0.6, fill=False,
                edgecolor="#555555", linestyle="--", label="peak (chip database)")
    ax.barh(ys, [r["achieved_gbs"] for r in rows], height=0.6, color=PALETTE[2],
            label="achieved: model bytes × decode tok/s")
    for y, r in zip(ys, rows):
        note = f" {r['achieved_gbs']:,.1f} GB/s"
        if r.get("peak_gbs"):
            note += f" ({100 * r['achieved_gbs'] / r['peak_gbs']:.0f}% of peak)"
        else:
            note += " (peak unknown)"
        ax.annotate(note, (r["achieved_gbs"], y), xytext=(2, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(ys, [tick_label(r["label"]) for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("GB/s")
    ax.set_title("Achieved memory bandwidth during decode", loc="left", pad=22)
    ax.margins(x=0.35)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return svg(fig, "bandwidth")


def _n_text(rows: Sequence[dict[str, Any]]) -> str:
    """'5' or '3-5' when configurations ran different iteration counts."""
    ns = sorted({int(r["n"]) for r in rows})
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"


def chart_data(configs: list[Config], docs: dict, bw: dict | None,
               proj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Draw every chart the data supports; name -> {title, caption, svg}."""
    bars, series = [], []
    for c in configs:
        for test, row in c.rows.items():
            med = num(row.get("tps_median"))
            if med is None:
                continue
            values = [float(v) for v in (clean(row.get("tps_values")) or [])]
            bars.append({"test": test, "label": c.label, "median": med,
                         "low": num(row.get("tps_min")) or med,
                         "high": num(row.get("tps_max")) or med,
                         "n": int(clean(row.get("n")) or len(values))})
            series.append({"test": test, "label": c.label, "values": values})
    synthetic = any(c.synthetic for c in configs)
    tag = f" Figures of a {SYNTHETIC} model." if synthetic else ""
    out = {}
    drawn = throughput(bars)
    if drawn:
        out["throughput"] = {"title": "Throughput per configuration", "svg": drawn,
                             "caption": "Bars: median tok/s over the timed iterations; "
                                        "whiskers: the slowest and fastest iteration." + tag}
    drawn = iterations(series)
    if drawn:
        out["iterations"] = {"title": "Throughput of every iteration", "svg": drawn,
                             "caption": "tok/s of each timed iteration in run order: a "
                                        "downward slope means throttling or a busy machine."
                                        + tag}
    raw = next((t["raw"] for t in proj.get("tables", []) if t.get("raw")), None)
    if raw:
        drawn = projection(raw)
        if drawn:
            out["projection"] = {"title": "Projected decode throughput", "svg": drawn,
                                 "caption": "Bars: projected decode tok/s with its range; "
                                            "diamonds: measured figures." + tag}
    if bw:
        drawn = bandwidth(bw["rows"])
        if drawn:
            out["bandwidth"] = {"title": "Achieved memory bandwidth", "svg": drawn,
                                "caption": "Model file bytes × median decode tok/s; dashed: "
                                           "the chip's peak where the database knows it."
                                           + tag}
    return out

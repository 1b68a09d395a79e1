"""Report charts, drawn with matplotlib and returned as SVG text.

SVG rather than PNG because the same text serves both outputs: the Markdown report
writes it to a file beside the page, the HTML report inlines it, so the page stays one
self-contained file that scales to a phone screen. Every chart is drawn from figures
the report already prints in a table; a chart never shows a number the tables do not.

Each function takes plain lists of dicts (built by `benchkit.report.core`) and returns the
SVG markup, or None when there is nothing to draw.
"""

from __future__ import annotations

import io
import re
from typing import Any, Iterable, Sequence

from benchkit.report.core import fmt_tps

# A colour-blind-safe palette (Okabe & Ito), in the order configurations appear.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
MEASURED = "#D55E00"
WIDTH_IN = 8.0


def _pyplot():
    """matplotlib with a file-only backend and reproducible SVG output."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({
        "svg.fonttype": "none",        # text stays text: small files, selectable, scalable
        "svg.hashsalt": "benchkit",    # stable ids, so the same input gives the same bytes
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    })
    return plt


def _svg(fig, name: str) -> str:
    """Serialize a figure to SVG and give its ids a per-chart prefix.

    Several charts are inlined into one HTML document; matplotlib's ids (clip paths,
    glyph markers) repeat from one figure to the next, and a duplicated id would make
    one chart borrow another's clip path.
    """
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'url\(#([^)]+)\)', rf'url(#{name}-\1)', text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', text)
    return text


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _line(ax: Any, xs: Sequence[float], ys: Sequence[float], colour: str, label: str) -> None:
    """One configuration's line with its points marked: the look every line chart shares."""
    ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4, color=colour, label=label)


def _unique_legend(axes: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """Legend entries of several panels, each name once: the panels share their colours,
    so one figure-wide legend serves them all."""
    handles: list[Any] = []
    names: list[str] = []
    for ax in axes:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    return handles, names


def throughput(bars: Sequence[dict[str, Any]]) -> str | None:
    """Median tok/s per configuration, one panel per test, whiskers from min to max.

    `bars`: dicts with test, label, median, low, high (tok/s), n. Tests get their own
    panel because prompt and decode rates differ by an order of magnitude.
    """
    if not bars:
        return None
    plt = _pyplot()
    tests = list(dict.fromkeys(b["test"] for b in bars))
    labels = list(dict.fromkeys(b["label"] for b in bars))
    fig, axes = plt.subplots(len(tests), 1, squeeze=False,
                             figsize=(WIDTH_IN, 0.6 + (0.45 * len(labels) + 0.6) * len(tests)))
    for ax, test in zip(axes[:, 0], tests):
        rows = [b for b in bars if b["test"] == test]
        ys = list(range(len(rows)))
        medians = [b["median"] for b in rows]
        err = [[b["median"] - b["low"] for b in rows], [b["high"] - b["median"] for b in rows]]
        colours = [_colour(labels.index(b["label"])) for b in rows]
        ax.barh(ys, medians, xerr=err, color=colours, capsize=3, height=0.6,
                error_kw={"elinewidth": 1})
        ax.set_yticks(ys, [b["label"] for b in rows])
        ax.invert_yaxis()
        ax.set_title(f"{test}: median tok/s, whiskers min to max over "
                     f"{_n_text(rows)} iterations", loc="left")
        ax.set_xlabel("tokens per second")
        for y, b in zip(ys, rows):
            ax.annotate(fmt_tps(b["median"]), (b["high"], y), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.margins(x=0.15)
    fig.tight_layout()
    return _svg(fig, "throughput")


def iterations(series: Sequence[dict[str, Any]]) -> str | None:
    """tok/s of every timed iteration in order: drift or throttling shows as a slope.

    `series`: dicts with test, label, values (tok/s per iteration, in run order).
    """
    series = [s for s in series if s["values"]]
    if not series:
        return None
    plt = _pyplot()
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
                    color=_colour(labels.index(s["label"])), label=s["label"])
        ax.set_title(f"{test}: tok/s per timed iteration", loc="left")
        ax.set_xlabel("iteration")
        ax.set_ylabel("tokens per second")
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = _unique_legend(list(axes.flat)[:len(tests)])
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 2), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.04 * (len(names) // 2)))
    fig.tight_layout()
    return _svg(fig, "iterations")


def projection(rows: Sequence[dict[str, Any]]) -> str | None:
    """Projected decode tok/s per chip with its range; measured figures overlaid.

    `rows`: dicts with name, tg_tps, tg_low, tg_high, and measured_tg (None where the
    chip was not measured).
    """
    rows = [r for r in rows if r.get("tg_tps") is not None]
    if not rows:
        return None
    plt = _pyplot()
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
    return _svg(fig, "projection")


def bandwidth(rows: Sequence[dict[str, Any]]) -> str | None:
    """Achieved memory bandwidth per configuration, against the chip's peak where known.

    `rows`: dicts with label, achieved_gbs, peak_gbs (None when the peak is unknown).
    """
    rows = [r for r in rows if r.get("achieved_gbs") is not None]
    if not rows:
        return None
    plt = _pyplot()
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
    ax.set_yticks(ys, [r["label"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("GB/s")
    ax.set_title("Achieved memory bandwidth during decode", loc="left", pad=22)
    ax.margins(x=0.35)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return _svg(fig, "bandwidth")


def _n_text(rows: Sequence[dict[str, Any]]) -> str:
    """'5' or '3-5' when configurations ran different iteration counts."""
    ns = sorted({int(r["n"]) for r in rows})
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"

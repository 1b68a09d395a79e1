"""Charts of the serve section: how a server's throughput and latency respond to load, and
the levels an SLO search tried.

Drawn as benchkit.report.charts.draw draws (matplotlib, SVG, the same palette and ids
prefixed per chart); every point is a figure the serve table prints: a level's output tok/s and its
p99 time to first token. One line per engine configuration, so engines compare on one
plot; the knee (benchkit.workloads.serve.saturation) is ringed where it was found.
"""

from __future__ import annotations

from typing import Any, Sequence

from benchkit.core.units import fmt_tps
from benchkit.report.charts.draw import MEASURED, WIDTH_IN, colour, line, pyplot, svg


def throughput_vs_load(series: Sequence[dict[str, Any]], mode: str) -> str | None:
    """Output tok/s against concurrency (or offered rate), one line per configuration.

    `series`: dicts with label, points [(load, output_tps)], knee (the knee's load or None).
    """
    series = [s for s in series if s["points"]]
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    for i, s in enumerate(series):
        xs, ys = zip(*sorted(s["points"]))
        line(ax, xs, ys, colour(i), s["label"])
        for x, y in zip(xs, ys):
            ax.annotate(fmt_tps(y), (x, y), xytext=(0, 5), textcoords="offset points",
                        ha="center", fontsize=7)
        if s.get("knee") is not None:
            y = dict(zip(xs, ys))[s["knee"]]
            ax.scatter([s["knee"]], [y], s=160, facecolors="none", edgecolors=colour(i),
                       linewidths=1.5, zorder=3)
    _log2_if_spread(ax, [x for s in series for x, _ in s["points"]])
    ax.set_xlabel("concurrent requests" if mode == "concurrency" else
                  "offered rate (requests per second)")
    ax.set_ylabel("output tokens per second (all requests)")
    ax.set_ylim(bottom=0)
    ax.margins(y=0.15)
    ax.set_title(f"Throughput vs {'concurrency' if mode == 'concurrency' else 'request rate'}"
                 " (ring: the knee)", loc="left", pad=22)
    _legend_above(ax, len(series))
    fig.tight_layout()
    return svg(fig, f"serve-throughput-{mode}")


def latency_vs_throughput(series: Sequence[dict[str, Any]], mode: str) -> str | None:
    """p99 TTFT against output tok/s, each point a level labelled with its load.

    `series`: dicts with label, points [(load, output_tps, ttft_p99_s)].
    """
    series = [s for s in series if s["points"]]
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    prefix = "c=" if mode == "concurrency" else "r="
    for i, s in enumerate(series):
        pts = sorted(s["points"])
        xs = [p[1] for p in pts]
        ys = [p[2] * 1e3 for p in pts]
        line(ax, xs, ys, colour(i), s["label"])
        for (load, x, _), y in zip(pts, ys):
            ax.annotate(f"{prefix}{load:g}", (x, y), xytext=(4, 3), textcoords="offset points",
                        fontsize=7)
    ax.set_xlabel("output tokens per second (all requests)")
    ax.set_ylabel("p99 time to first token (ms)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.margins(x=0.12, y=0.15)
    ax.set_title("p99 time to first token vs throughput", loc="left", pad=22)
    _legend_above(ax, len(series))
    fig.tight_layout()
    return svg(fig, f"serve-latency-{mode}")


def search_levels(levels: Sequence[tuple[float, float | None, float | None, bool]],
                  slo: dict[str, Any], over: str, name: str) -> str | None:
    """An SLO search's levels: p99 TTFT (and p99 TPOT, where the SLO limits it) of each
    level tried against its load, numbered in the order they ran, a filled dot for a
    level that passed and a cross for one that failed, the SLO's limit dashed.

    `levels`: (load, ttft_p99_s, tpot_p99_s, passed) in the order they ran; `name` the
    chart's id prefix."""
    panels = [(key, name, i) for key, name, i in (("ttft_ms", "TTFT", 1), ("tpot_ms", "TPOT", 2))
              if key in slo and any(lv[i] is not None for lv in levels)]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH_IN, 3.2), squeeze=False)
    for ax, (key, what, i) in zip(axes[0], panels):
        for n, lv in enumerate(levels, start=1):
            if lv[i] is None:
                continue
            y = lv[i] * 1e3
            ax.scatter([lv[0]], [y], marker="o" if lv[3] else "x", s=40, zorder=3,
                       color=colour(0) if lv[3] else MEASURED)
            ax.annotate(str(n), (lv[0], y), xytext=(5, 3), textcoords="offset points",
                        fontsize=7)
        ax.axhline(slo[key], linestyle="--", linewidth=1, color="#555555")
        ax.set_xlabel("concurrent requests" if over == "concurrency" else
                      "offered rate (requests per second)")
        ax.set_ylabel(f"p99 {what} (ms)")
        ax.set_ylim(bottom=0)
        ax.margins(x=0.15, y=0.15)
        ax.set_title(f"p99 {what} per level (SLO ≤ {slo[key]:g} ms)", loc="left")
    fig.tight_layout()
    return svg(fig, name)


def _log2_if_spread(ax: Any, xs: list[float]) -> None:
    """Concurrency sweeps double (1, 2, 4 ... 32): a log2 axis spaces them evenly."""
    if xs and min(xs) > 0 and max(xs) / min(xs) >= 8:
        ax.set_xscale("log", base=2)
        ticks = sorted(set(xs))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()


def _legend_above(ax: Any, n_series: int) -> None:
    """The legend above the plot, right-aligned: the points' labels keep the plot area."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(n_series, 2),
              frameon=False, fontsize=8)

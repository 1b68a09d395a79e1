"""Charts of the serve section: how a server's throughput and latency respond to load.

Drawn as benchkit.report.charts.draw draws (matplotlib, SVG, the same palette and ids
prefixed per chart); every point is a figure the serve table prints: a level's output tok/s and its
p99 time to first token. One line per engine configuration, so engines compare on one
plot; the knee (benchkit.workloads.serve.saturation) is ringed where it was found.
"""

from __future__ import annotations

from typing import Any, Sequence

from benchkit.core.units import fmt_tps
from benchkit.report.charts.draw import WIDTH_IN, colour, line, pyplot, svg


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

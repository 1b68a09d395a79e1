"""The depth chart: decode and prompt speed against context depth (llama-bench's -d).

Drawn as benchkit.report.charts.draw draws (matplotlib, SVG, the same palette, ids prefixed
per chart).
Every point is a median the depth table prints; one colour per engine configuration (the
same in both panels), one line per test, so engines compare on one plot. Decode and prompt
differ by two orders of magnitude, so each has its own panel; the figures themselves are
in the table, not on the points, where the lines of two engines that agree overlap.
"""

from __future__ import annotations

from typing import Any, Sequence

from benchkit.report.charts.draw import WIDTH_IN, colour, line, pyplot, svg, unique_legend

KINDS = (("tg", "decode"), ("pp", "prompt processing"))


def throughput_vs_depth(series: Sequence[dict[str, Any]]) -> str | None:
    """tok/s against depth: `series` are dicts with label (the configuration), test,
    kind ('tg' or 'pp') and points [(depth, median tok/s)]; a panel per kind."""
    kinds = [(k, title) for k, title in KINDS if any(s["kind"] == k and s["points"]
                                                     for s in series)]
    if not kinds:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(WIDTH_IN, 3.6), squeeze=False)
    labels = list(dict.fromkeys(s["label"] for s in series))
    for ax, (kind, title) in zip(axes[0], kinds):
        for s in (s for s in series if s["kind"] == kind and s["points"]):
            xs, ys = zip(*sorted(s["points"]))
            several = sum(t["kind"] == kind and t["label"] == s["label"] for t in series) > 1
            line(ax, xs, ys, colour(labels.index(s["label"])),
                  f"{s['label']}: {s['test']}" if several else s["label"])
        ax.set_xlabel("context depth (tokens already in the KV cache)")
        ax.set_ylabel("tokens per second (median)")
        ax.set_ylim(bottom=0)
        ax.margins(y=0.15)
        ax.set_title(f"{title} ({', '.join(_tests(series, kind))})", loc="left")
    handles, names = unique_legend(axes[0])
    fig.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=1, frameon=False, fontsize=8)
    fig.tight_layout()
    return svg(fig, "depth-throughput")


def _tests(series: Sequence[dict[str, Any]], kind: str) -> list[str]:
    return list(dict.fromkeys(s["test"] for s in series if s["kind"] == kind))

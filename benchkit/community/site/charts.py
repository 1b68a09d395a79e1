"""The site's charts: small SVG drawn by hand, inlined into the pages.

Hand-written rather than matplotlib's: its output carries ids and metadata that would make
the bytes differ between builds, and these take their colours from the page's stylesheet
(classes, `currentColor`), so they follow the light or dark scheme. Every number a chart
shows is also printed in a table beside it.
"""

from __future__ import annotations

from typing import Any, Sequence

from benchkit.community.site.entries import tps


def _svg(width: int, height: int, label: str, parts: list[str]) -> Any:
    from markupsafe import Markup, escape

    return Markup(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
                  f'{height}" width="{width}" height="{height}" role="img" '
                  f'aria-label="{escape(label)}">' + "".join(parts) + "</svg>")


def bars(items: Sequence[dict[str, Any]], caption: str) -> Any:
    """Horizontal bars: items with label, value, low, high (whiskers); "" when none."""
    from markupsafe import escape

    data = [i for i in items if i.get("value")]
    if not data:
        return ""
    top = max(i["high"] or i["value"] for i in data) or 1.0
    label_w, bar_w, h = 190, 330, 26
    height = h * len(data) + 30
    parts = []
    for n, item in enumerate(data):
        y = 10 + n * h
        w = bar_w * item["value"] / top
        lo, hi = bar_w * (item["low"] or item["value"]) / top, \
            bar_w * (item["high"] or item["value"]) / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f'{escape(_cut(item["label"], 28))}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16"/>'
            f'<line class="whisker" x1="{label_w + lo:.1f}" x2="{label_w + hi:.1f}" '
            f'y1="{y + 11}" y2="{y + 11}"/>'
            f'<text x="{label_w + max(w, hi) + 6:.1f}" y="{y + 15}">{tps(item["value"])}</text>')
    parts.append(f'<text class="muted" x="{label_w}" y="{height - 4}">{escape(caption)}</text>')
    return _svg(label_w + bar_w + 80, height, caption, parts)


def iterations(values: Sequence[float], test: str) -> Any:
    """tok/s of every timed iteration in run order, the median as a line: drift or a
    throttling GPU shows as a slope."""
    from markupsafe import escape
    import statistics

    if not values:
        return ""
    width, height, left, top, plot_h = 420, 150, 64, 12, 100
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or hi * 0.02 or 1.0
    lo, hi = max(lo - pad, 0.0), hi + pad
    step = (width - left - 16) / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    med = statistics.median(values)
    parts = [f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>',
             f'<text x="{left - 6}" y="{y(hi) + 4:.1f}" text-anchor="end">{tps(hi)}</text>',
             f'<text x="{left - 6}" y="{y(lo):.1f}" text-anchor="end">{tps(lo)}</text>',
             f'<line class="median" x1="{left}" x2="{width - 8}" y1="{y(med):.1f}" '
             f'y2="{y(med):.1f}"/>']
    for i, v in enumerate(values):
        parts.append(f'<circle class="point" cx="{left + 8 + i * step:.1f}" cy="{y(v):.1f}" '
                     f'r="3.5"><title>iteration {i + 1}: {tps(v)} tok/s</title></circle>')
    parts.append(f'<text class="muted" x="{left}" y="{height - 8}">{escape(test)}: tok/s per '
                 f'timed iteration ({len(values)}), line: median {tps(med)}</text>')
    return _svg(width, height, f"{test}: tok/s per iteration", parts)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"

"""How every report chart is drawn: matplotlib with a file-only backend, SVG out, one
palette, ids prefixed per chart.

SVG rather than PNG because the same text serves both outputs: the Markdown report
writes it to a file beside the page, the HTML report inlines it, so the page stays one
self-contained file that scales to a phone screen. The charts themselves are beside this
module: the core page's in `page.py`, the sections' in their own modules.
"""

from __future__ import annotations

import io
import re
from typing import Any, Iterable, Sequence

# A colour-blind-safe palette (Okabe & Ito), in the order configurations appear.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
MEASURED = "#D55E00"
WIDTH_IN = 8.0


def pyplot():
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


def svg(fig, name: str) -> str:
    """Serialize a figure to SVG and give its ids a per-chart prefix.

    Several charts are inlined into one HTML document; matplotlib's ids (clip paths,
    glyph markers) repeat from one figure to the next, and a duplicated id would make
    one chart borrow another's clip path.
    """
    plt = pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'url\(#([^)]+)\)', rf'url(#{name}-\1)', text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', text)
    return text


def tick_label(text: str, width: int = 28) -> str:
    """A configuration's name as an axis or legend label: wrapped onto short lines at its
    " · " separators (then at spaces), so that the chart keeps its width for the bars."""
    import textwrap

    lines: list[str] = []
    for part in text.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, width) or [part]
    return "\n".join(lines)


def colour(i: int) -> str:
    """The i-th configuration's colour: the same one in every chart of a page."""
    return PALETTE[i % len(PALETTE)]


def line(ax: Any, xs: Sequence[float], ys: Sequence[float], colour: str, label: str) -> None:
    """One configuration's line with its points marked: the look every line chart shares."""
    ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4, color=colour, label=label)


def unique_legend(axes: Iterable[Any]) -> tuple[list[Any], list[str]]:
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

"""One formatter per quantity: every table, report, page and message prints a figure
through these, so that the same file is "93.81 MiB" everywhere and a tok/s figure has the
same precision in a run table, a report and the site.

Sizes are binary (MiB, GiB), as llama.cpp and llama-bench print them; throughput is tok/s
with one decimal below 1,000 and none above; times are ms below 100 ms... s above.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_tps(x: float | None) -> str:
    """tok/s with the precision a reader can use: 198.1, 1,234."""
    if _missing(x):
        return MISSING
    return f"{x:,.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_ms(seconds: float | None) -> str:
    """A duration in ms: 4.82 ms, 153 ms."""
    if _missing(seconds):
        return MISSING
    ms = seconds * 1000
    return f"{ms:,.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def fmt_seconds(seconds: float | None) -> str:
    """A longer duration in s: 0.21 s, 12.4 s."""
    if _missing(seconds):
        return MISSING
    return f"{seconds:,.2f} s" if seconds < 10 else f"{seconds:,.1f} s"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A share (0.164) as a percentage: 16.4%."""
    return MISSING if _missing(x) else f"{100 * x:.{digits}f}%"


def fmt_bytes(n: float | None) -> str:
    """A size in binary units, as llama.cpp prints them: 93.81 MiB, 1.23 GiB."""
    if _missing(n) or not n:
        return MISSING
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.2f} MiB"


def fmt_mib(mib: float | None) -> str:
    """A size already in MiB (llama.cpp's buffer sizes): 636.18 MiB."""
    return MISSING if _missing(mib) else fmt_bytes(mib * 2**20) if mib else "0.00 MiB"


def fmt_params(n: float | None) -> str:
    """A parameter count: 134.52 M, 1.10 B."""
    if _missing(n) or not n:
        return MISSING
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def fmt_gbs(x: float | None) -> str:
    """A bandwidth in GB/s (decimal, as vendors quote it): 549 GB/s."""
    if _missing(x):
        return MISSING
    return f"{x:,.1f} GB/s" if x < 100 else f"{x:,.0f} GB/s"

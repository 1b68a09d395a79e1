"""Checks on a case's per-iteration tok/s that a reader should be warned about, and the
one percentile definition that serve summaries and reports share.

Thresholds are deliberately simple and printed with the figure that tripped them, so
a warning can be judged rather than trusted.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

CV_LIMIT = 0.05        # coefficient of variation above which the spread is "high"
DRIFT_LIMIT = 0.05     # fitted drop from first to last iteration, as a share of the mean
DRIFT_P = 0.05         # the downward slope must also be significant at this level


def spread_warning(tps: Sequence[float]) -> str | None:
    """'high spread' when the coefficient of variation is over 5%."""
    if len(tps) < 2:
        return None
    mean = statistics.fmean(tps)
    cv = statistics.stdev(tps) / mean if mean else 0.0
    if cv > CV_LIMIT:
        return f"high spread: CoV {cv:.1%} over {len(tps)} iterations (limit {CV_LIMIT:.0%})"
    return None


def drift_warning(tps: Sequence[float]) -> str | None:
    """'drifts down' when tok/s falls steadily across iterations (thermal throttling).

    A least-squares line through the iterations in order: the warning needs both a
    fitted drop over the run larger than 5% of the mean and a slope significantly
    below zero (one-sided p < 0.05), so that noise alone rarely trips it.
    """
    n = len(tps)
    if n < 3 or len(set(tps)) == 1:
        return None
    from scipy import stats

    fit = stats.linregress(range(n), tps)
    mean = statistics.fmean(tps)
    drop = -fit.slope * (n - 1) / mean if mean else 0.0
    p_down = fit.pvalue / 2 if fit.slope < 0 else 1.0
    if drop > DRIFT_LIMIT and p_down < DRIFT_P:
        return (f"throughput drifts down: {fit.slope:.2f} t/s per iteration, a fitted fall of "
                f"{drop:.1%} of the mean over {n} iterations (p = {p_down:.3f}); "
                f"thermal throttling or background load?")
    return None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks: for
    sorted x of n values, rank h = (n - 1) q / 100 and the result x[floor h] + (h -
    floor h)(x[floor h + 1] - x[floor h]). This is Hyndman and Fan's type 7, numpy's and
    vLLM's default, so figures compare with theirs; None for no values."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return None
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])

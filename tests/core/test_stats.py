"""Warnings on per-iteration tok/s: high spread and downward drift."""

from __future__ import annotations

from benchkit.core.stats import drift_warning, spread_warning


def test_spread_warning_over_five_percent() -> None:
    assert spread_warning([100, 101, 99, 100, 100]) is None
    msg = spread_warning([100, 120, 80, 100, 110])
    assert msg and "CoV" in msg and "5 iterations" in msg
    assert spread_warning([100]) is None


def test_drift_warning_on_a_steady_fall() -> None:
    msg = drift_warning([200, 190, 181, 170, 161, 150])
    assert msg and "drifts down" in msg and "6 iterations" in msg


def test_no_drift_warning_for_flat_noise_or_a_rise() -> None:
    assert drift_warning([100, 102, 99, 101, 100, 98, 101]) is None
    assert drift_warning([150, 160, 170, 181, 190, 200]) is None
    assert drift_warning([100, 100, 100]) is None
    assert drift_warning([100, 90]) is None

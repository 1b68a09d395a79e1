"""Saturation: where more load stops adding throughput and only adds latency (the knee).

A server that batches requests (llama-server's slots, vLLM's continuous batching) turns
more concurrent requests into more output tokens per second, until its compute or its
slots run out; past that point a request only waits longer, for a slot or for its share
of each batch. The rule, applied to one engine configuration's levels in order of load
(concurrency, or offered rate for an open loop):

    a step from level a to the next level b is saturated when output tok/s rose by less
    than GAIN_MIN (10%) while p99 TTFT rose by more than TTFT_GROWTH_MIN (50%), and no
    later level's output tok/s exceeds level a's by GAIN_MIN or more;
    the knee is level a of the first saturated step.
The last condition keeps a dip on the way up (a server slower at 4 requests than at 2 and
faster again at 16, as llama-server on a GPU) from being taken for the knee.

Both conditions are needed: throughput flat with latency flat is a server the load did not
reach yet, and latency up with throughput up is the price of batching, not saturation.
When no step is saturated, the knee lies beyond the measured levels and is reported as
not found, with the last gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

GAIN_MIN = 0.10            # output tok/s gain below this...
TTFT_GROWTH_MIN = 0.50     # ...while p99 TTFT grows by more than this: saturated
RULE = (f"the knee is the last level before the first step whose output tok/s gain is "
        f"below {GAIN_MIN:.0%} while its p99 TTFT grows by more than {TTFT_GROWTH_MIN:.0%}, "
        f"with no later level {GAIN_MIN:.0%} or more above it")


@dataclass(frozen=True)
class Level:
    """One measured load level of one engine configuration."""

    load: float                  # concurrency, or offered rate (requests/s)
    output_tps: float
    ttft_p99_s: float


@dataclass(frozen=True)
class Step:
    """From one level to the next: relative gain in tok/s and growth of p99 TTFT."""

    a: Level
    b: Level

    @property
    def gain(self) -> float:
        return self.b.output_tps / self.a.output_tps - 1 if self.a.output_tps else 0.0

    @property
    def ttft_growth(self) -> float:
        return self.b.ttft_p99_s / self.a.ttft_p99_s - 1 if self.a.ttft_p99_s else 0.0

    @property
    def saturated(self) -> bool:
        return self.gain < GAIN_MIN and self.ttft_growth > TTFT_GROWTH_MIN


@dataclass(frozen=True)
class Knee:
    """The verdict for one configuration: the knee level and the step that shows it, or
    (found False) the last step measured."""

    found: bool
    level: Level | None
    step: Step | None
    steps: tuple[Step, ...]

    def text(self, unit: str = "concurrency") -> str:
        """One sentence with the figures, e.g. for the report."""
        name = "c=" if unit == "concurrency" else "rate "
        suffix = "" if unit == "concurrency" else " req/s"
        if self.step is None:
            return "one load level only: no knee can be named"
        s = self.step
        fig = (f"{name}{s.a.load:g}{suffix} → {name}{s.b.load:g}{suffix}: output tok/s "
               f"{s.a.output_tps:,.1f} → {s.b.output_tps:,.1f} ({s.gain:+.0%}), p99 TTFT "
               f"{s.a.ttft_p99_s * 1e3:,.0f} → {s.b.ttft_p99_s * 1e3:,.0f} ms "
               f"({s.ttft_growth:+.0%})")
        if self.found:
            return f"knee at {name}{s.a.load:g}{suffix}: beyond it, {fig}"
        return (f"no knee within the measured levels (throughput still rising or latency "
                f"flat); last step {fig}")


def knee(levels: Sequence[Level]) -> Knee:
    """The knee of `levels` (any order; sorted by load) under RULE."""
    ordered = sorted((lv for lv in levels if lv.output_tps is not None
                      and lv.ttft_p99_s is not None), key=lambda lv: lv.load)
    steps = tuple(Step(a, b) for a, b in zip(ordered, ordered[1:]))
    for i, s in enumerate(steps):
        later = max((lv.output_tps for lv in ordered[i + 1:]), default=0.0)
        if s.saturated and later < s.a.output_tps * (1 + GAIN_MIN):
            return Knee(True, s.a, s, steps)
    return Knee(False, None, steps[-1] if steps else None, steps)


def levels_of(summaries: Sequence[dict[str, Any]]) -> list[Level]:
    """Levels from serve case summaries (output_tps, ttft_p99_s, concurrency or rate)."""
    out = []
    for s in summaries:
        load = s.get("concurrency") or s.get("rate")
        if load and s.get("output_tps") is not None and s.get("ttft_p99_s") is not None:
            out.append(Level(float(load), float(s["output_tps"]), float(s["ttft_p99_s"])))
    return out

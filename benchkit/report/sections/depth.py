"""Context depth: decode and prompt speed as the KV cache fills (llama-bench's `-d`).

A long chat or an agent runs at thousands of tokens of context, where attention reads the
whole cache for every token; a figure at depth 0 overstates what it feels. This section
takes every pp / tg test that was measured at more than one depth by one engine
configuration and prints, per depth, the median with its spread and the share of the
depth-0 figure, with a chart of tok/s against depth.
"""

from __future__ import annotations

from typing import Any

from benchkit.report.charts.depth import throughput_vs_depth
from benchkit.core.units import fmt_pct, fmt_tps
from benchkit.report.context import Config, clean, num, spread_text
from benchkit.report.sections.engines import CLOCKS
from benchkit.report.sections import section
from benchkit.workloads.testnames import split_depth

NAME = "depth"


@section(NAME, order=20)
def context(df: Any, docs: dict, configs: list[Config]) -> dict[str, Any] | None:
    """One table per configuration that measured a test at several depths, or None."""
    tables, series = [], []
    for c in configs:
        tests = _by_base_test(c)
        rows = [_table_row(base, points) for base, points in tests.items() if len(points) > 1]
        if not rows:
            continue
        depths = sorted({d for r in rows for d in r["points"]})
        clock = clean(next(iter(c.rows.values())).get("clock")) or "client"
        tables.append({"label": c.label, "synthetic": c.synthetic, "depths": depths,
                       "clock": CLOCKS.get(clock, clock),
                       "rows": [_cells(r, depths) for r in rows]})
        series += [{"label": c.label, "test": r["test"], "kind": r["kind"],
                    "points": [(d, p["median"]) for d, p in r["points"].items()
                               if p["median"] is not None]} for r in rows]
    if not tables:
        return None
    svg = throughput_vs_depth(series)
    charts = {"depth-throughput": {
        "title": "Throughput against context depth",
        "caption": "Median tok/s of each test at each depth (the table's figures); "
                   "decode and prompt processing in separate panels.",
        "svg": svg}} if svg else {}
    return {"tables": tables, "charts": charts}


def _by_base_test(c: Config) -> dict[str, dict[int, Any]]:
    """pp / tg rows of a configuration by the test they run at depth: 'tg128' -> {0: row,
    4096: row}. The depth is the case's `depth` column, else the name's `@ dN`."""
    out: dict[str, dict[int, Any]] = {}
    for row in c.rows.values():
        if row["workload_kind"] not in ("pp", "tg"):
            continue
        base, named = split_depth(row["test"])
        depth = clean(row.get("depth"))
        depth = int(depth) if depth is not None else (named or 0)
        out.setdefault(base, {})[depth] = row
    return out


def _table_row(base: str, points: dict[int, Any]) -> dict[str, Any]:
    d0 = num(points[0].get("tps_median")) if 0 in points else None
    cells = {}
    for depth, row in sorted(points.items()):
        median = num(row.get("tps_median"))
        cells[depth] = {"median": median, "text": f"{fmt_tps(median)} {spread_text(row)}",
                        "share": fmt_pct(median / d0) if d0 and median is not None
                        and depth else None}
    kind = next(iter(points.values()))["workload_kind"]
    return {"test": base, "kind": kind, "points": cells}


def _cells(row: dict[str, Any], depths: list[int]) -> dict[str, Any]:
    """The row's cell for every depth of its table ('—' where it was not measured)."""
    cells = []
    for d in depths:
        p = row["points"].get(d)
        if p is None:
            cells.append("—")
        else:
            cells.append(p["text"] + (f", {p['share']} of d0" if p["share"] else ""))
    return {"test": row["test"], "cells": cells}

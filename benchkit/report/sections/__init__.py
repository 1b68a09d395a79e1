"""Report sections beyond the core page, one module each.

A section module has `NAME` (also its templates' name: `templates/sections/NAME.md.j2`
and `NAME.html.j2`) and `context(df, docs, configs)`, which returns the section's data or
None when the results hold nothing for it. Data may carry `charts`: name -> {title,
caption, svg}, drawn like the core charts and printed with the templates' `chart(name)`.
Adding a section is one module, two templates and one line in SECTIONS.
"""

from __future__ import annotations

import importlib
from typing import Any

SECTIONS = (
    "benchkit.report.sections.engines",
    "benchkit.report.sections.depth",
    "benchkit.report.sections.telemetry",
    "benchkit.report.sections.serve",
    "benchkit.report.sections.quality",
)


def build(df: Any, docs: dict, configs: list) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The sections the results support, in order, and every chart they drew."""
    sections, charts = [], {}
    for name in SECTIONS:
        mod = importlib.import_module(name)
        data = mod.context(df, docs, configs)
        if data is None:
            continue
        charts.update(data.get("charts") or {})
        sections.append({"name": mod.NAME, "data": data})
    return sections, charts

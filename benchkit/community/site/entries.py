"""A community result as the site shows it, and the small formatting helpers its pages share.

Figures are formatted with fixed precision and never read the clock, so the same results
give the same bytes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from benchkit.core.units import fmt_tps


@dataclass
class Entry:
    """One accepted result file, with the identity the data set files it under."""

    id: str
    chip: str
    model: str
    file: str
    doc: dict[str, Any]


def entry_of(file: str, doc: dict[str, Any], rel: PurePosixPath | None = None) -> Entry:
    """The entry of an accepted file; `rel` is where its content files it (from the file
    as written: an older format's file keeps its id after the upgrade on read)."""
    from benchkit.community.identity import community_relpath

    rel = rel or community_relpath(doc)
    return Entry(id=PurePosixPath(rel.name).stem, chip=rel.parts[0], model=rel.parts[1],
                 file=file, doc=doc)


# --- small helpers -----------------------------------------------------------------------


def by(entries: list[Entry], key: Any) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(key(e), []).append(e)
    return dict(sorted(out.items()))


def case_of(doc: dict[str, Any], kind: str | None) -> dict[str, Any] | None:
    """The first ok case of a workload kind (any case for None)."""
    for c in doc["cases"]:
        if c.get("status") == "ok" and (kind is None or c["workload"]["kind"] == kind):
            return c
    return doc["cases"][0] if kind is None else None


def test_name(entries: list[Entry], kind: str) -> str:
    case = case_of(entries[0].doc, kind)
    return case["test"] if case else kind


def chip_name(chip: str, doc: dict[str, Any]) -> str:
    """The database name for a known chip, else what the machine reported."""
    from benchkit.projection.chips import load_chips

    db = load_chips().get(chip)
    if db is not None:
        return db.label
    env = doc["environment"]
    if chip.startswith("cpu-"):
        return f"{(env.get('cpu') or {}).get('model') or chip} (CPU)"
    return str((env.get("chip") or {}).get("name") or chip)


def device_label(doc: dict[str, Any]) -> str:
    from benchkit.results.facts import ran_on_gpu

    env = doc["environment"]
    if all(ran_on_gpu(c) for c in doc["cases"]):
        return f"GPU ({env.get('backend')})"
    cores = (env.get("cpu") or {}).get("cores_physical")
    return f"CPU{f', {cores} cores' if cores else ''}"


def short(name: str) -> str:
    return name[:-5] if name.lower().endswith(".gguf") else name


def fig(values: list[float]) -> dict[str, str] | None:
    """Median, stdev and CoV of pooled iterations, formatted (None when there are none)."""
    if not values:
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"median": tps(statistics.median(values)), "stdev": tps(sd),
            "cv": pct(sd / mean if mean else None), "n": str(len(values))}


def tps(value: Any) -> str:
    return fmt_tps(None if value is None else float(value))


def pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def os_name(env: dict[str, Any]) -> str:
    os_ = env.get("os") or {}
    version = os_.get("version") or ""
    return " ".join(str(x) for x in (os_.get("system"), os_.get("release")) if x) + (
        f" ({version})" if version else "")


def pooled(group: list[Entry], kind: str) -> list[float]:
    """Every timed iteration of the first test of this kind, across the group's files."""
    values: list[float] = []
    for e in group:
        case = case_of(e.doc, kind)
        if case is not None:
            values.extend(float(it["tps"]) for it in case["iterations"])
    return values

"""Reading and writing result files: atomic write, checked read, summary statistics.

The format itself (its history, the upgrade of old versions, the typed objects) is
`benchkit.results.model`; this module is the file's way in and out.
"""

from __future__ import annotations

import json
from functools import lru_cache
import math
import os
import statistics
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from benchkit.core.errors import BenchkitError

from benchkit.results.model import (FORMAT, SCHEMA_VERSION, SUPPORTED_VERSIONS, Run,
                                    clock_of, upgrade)

__all__ = ["FORMAT", "SCHEMA_VERSION", "SUPPORTED_VERSIONS", "Run", "clock_of", "upgrade",
           "summarize", "schema", "dumps", "write_result", "read_result", "read_run",
           "parse_result", "check_schema", "case_problem"]

# Two-sided 95% Student t quantiles for small n (df = n - 1); beyond 30 the normal 1.96.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
        23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
        30: 2.042}


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """Summary statistics of per-iteration tok/s: the figures every table prints.

    The 95% confidence interval of the mean uses Student's t, because suites run few
    iterations (5 to 10) and the normal approximation would claim too much.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return {"n": 0, "tps_mean": None, "tps_median": None, "tps_stdev": None,
                "tps_min": None, "tps_max": None, "tps_cv": None,
                "tps_ci95_low": None, "tps_ci95_high": None}
    mean = statistics.fmean(xs)
    stdev = statistics.stdev(xs) if n > 1 else 0.0
    half = _T95.get(n - 1, 1.96) * stdev / math.sqrt(n) if n > 1 else 0.0
    return {
        "n": n,
        "tps_mean": mean,
        "tps_median": statistics.median(xs),
        "tps_stdev": stdev,
        "tps_min": min(xs),
        "tps_max": max(xs),
        "tps_cv": stdev / mean if mean else None,
        "tps_ci95_low": mean - half,
        "tps_ci95_high": mean + half,
    }


@lru_cache(maxsize=None)
def schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of a result format version (package data)."""
    text = resources.files("benchkit").joinpath(
        f"schemas/result-v{version}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def dumps(doc: dict[str, Any]) -> str:
    """A result document as written to disk: the one encoding every writer uses."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_result(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a result atomically: a temp file in the same folder, then rename.

    A reader (or a Ctrl-C) never sees half a file; the previous complete version stays
    until the new one is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps(doc))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_result(path: str | os.PathLike[str], *, validate: bool = True) -> dict[str, Any]:
    """Read a result file, refusing anything that is not a benchkit result we understand.

    Errors name the file and the field, so that a result from elsewhere (another tool's
    JSON, a newer benchkit) is refused in one line rather than half-read.
    """
    from benchkit.core.safeio import MAX_RESULT_BYTES, json_loads_bounded, read_bounded

    p = str(path)
    # bounded: a regular file of at most 64 MiB, nesting limited, no NaN or Infinity
    text = read_bounded(path, MAX_RESULT_BYTES, "result file", p,
                        missing="no such result file")
    return parse_result(json_loads_bounded(text, p), p, validate=validate)


def read_run(path: str | os.PathLike[str], *, validate: bool = True) -> Run:
    """`read_result` as the typed, read-only `Run`: what readers that do not change the
    document use."""
    return Run.from_json(read_result(path, validate=validate))


def parse_result(doc: Any, file: str, *, validate: bool = True) -> dict[str, Any]:
    """`read_result` for a document already loaded: the checks, then the upgrade to the
    current version (a new dict: `doc` stays as written)."""
    from benchkit.results.sanity import check_figures

    p = file
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BenchkitError(f"not a benchkit result (expected \"format\": \"{FORMAT}\")",
                            file=p, field="format")
    version = doc.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        raise BenchkitError(
            f"schema_version {version!r} is not one this benchkit reads "
            f"({', '.join(map(str, SUPPORTED_VERSIONS))}); upgrade benchkit or re-run",
            file=p, field="schema_version")
    if validate:
        check_schema(doc, p)
    check_figures(doc, p)      # negative, absurd or mistyped figures, naming the field
    return upgrade(doc)


def check_schema(doc: dict[str, Any], file: str | None = None) -> None:
    """Validate against the JSON Schema of the document's own version; the first error
    names its JSON path."""
    import jsonschema

    version = doc.get("schema_version")
    validator = jsonschema.Draft202012Validator(
        schema(version if version in SUPPORTED_VERSIONS else SCHEMA_VERSION))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        field = ".".join(str(part) for part in err.absolute_path) or "(top level)"
        raise BenchkitError(err.message, file=file, field=field)


def case_problem(doc: dict[str, Any], case: dict[str, Any]) -> BenchkitError | None:
    """What a reader of the file would refuse in `case`, as part of the run `doc`: every
    check `read_result` applies (finite numbers and nesting, the schema, the figures'
    plausibility), the field named as in the file (`cases.0.iterations.3.tps`, the case
    as the only one). None when a reader accepts it.

    A run asks this of every case before it writes it: a figure from outside (a server's
    timings or token counts, a row llama-bench printed) that no reader would accept fails
    its own case, instead of making the whole file unreadable."""
    from benchkit.core.safeio import check_tree
    from benchkit.results.sanity import check_figures

    probe = {**doc, "cases": [case]}
    try:
        check_tree(probe)
        check_figures(probe)      # first: its lines say what is wrong with a figure
        check_schema(probe)
    except BenchkitError as exc:
        return exc
    return None

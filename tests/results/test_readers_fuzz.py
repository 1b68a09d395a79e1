"""No reader gives a traceback on any JSON input: a real result with one value replaced.

Every node of a real result file (each field, each list item, each object) is replaced
in turn by a hostile value (null, a negative number, 10^300, text, an empty list, an
object, a boolean, 2^63, an escape sequence...), the file written, and every reader
run on it in this process: `load_results`, `compare` (both sides, every format), the
end-of-run table, `validate`'s checks, the projection's measurements, and (on a
deterministic subset, it is the slow one) `report` in both formats. Each must either
accept the file or refuse it with a BenchkitError; any other exception is a crash a
user would see as a traceback, and the test lists them all.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from community_support import REPO, load, standard_result

HOSTILE: tuple[Any, ...] = (None, -1, 0, 1e300, "x", "", [], {}, True, [1, "a"], {"a": None},
                            2**63, -0.5, "\x1b[2J", [[[]]])
REPORT_EVERY = 9          # report runs on every 9th mutation
# a real GPU run with telemetry (NVIDIA H200: per-GPU power, clocks, temperatures), whose
# telemetry the report's section reads
GPU_RESULT = REPO / "results" / "nvidia-h200-v2" / "20261201T173609Z-telemetry-gpu-4c5be3.json"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return standard_result(tmp_path_factory)


def paths(value: Any, here: tuple = ()) -> Iterator[tuple]:
    """The path of every node below the top, containers included."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield (*here, key)
        yield from paths(child, (*here, key))


def mutations(doc: dict[str, Any], within: Callable[[tuple], bool] = lambda p: True
              ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, document) for every node (`within` picks which), with a value chosen
    by its position."""
    for i, path in enumerate(p for p in paths(doc) if within(p)):
        value = HOSTILE[i % len(HOSTILE)]
        changed = copy.deepcopy(doc)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        yield f"{'.'.join(map(str, path))} = {value!r}", changed


def readers(real: Path, suites: Path) -> dict[str, Callable[[Path], Any]]:
    from benchkit import compare
    from benchkit.formats import table as console
    from benchkit.projection.measurements import measurements_from_results
    from benchkit.community.validate import standard_suites, validate_paths
    from benchkit.results.frame import load_results
    from benchkit.results.io import read_result

    standard_suites(suites)          # read once, so the loop measures the readers

    def both_sides(p: Path) -> None:
        for base, new in ((real, p), (p, real)):
            result = compare.compare_results(base, new)
            for fmt in ("md", "csv", "json"):
                compare.render(result, fmt)

    return {
        "load_results": lambda p: load_results([str(p)]),
        "compare": both_sides,
        "table": lambda p: [console.format_table(read_result(p), f)
                            for f in ("md", "csv", "json")],
        "validate": lambda p: [str(x) for v in validate_paths([p], suites_dir=suites)
                               for x in v.problems],
        "project": lambda p: measurements_from_results([p]),
    }


def report(p: Path) -> None:
    from benchkit.report import context, render

    df, docs = context.load([p])
    ctx = render.build_context(df, docs)
    render.render_markdown(ctx, {})
    render.render_html(ctx)


def crash_of(fn: Callable[[Path], Any], path: Path) -> str | None:
    """None when `fn` accepts or refuses the file; the exception and where, otherwise."""
    from benchkit.core.errors import BenchkitError

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            fn(path)
    except BenchkitError:
        return None
    except Exception as exc:  # noqa: BLE001 - any other exception is what this test finds
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__}: {exc} ({Path(frame.filename).name}:{frame.lineno})"
    return None


def test_no_reader_crashes_on_any_value(real: Path, tmp_path: Path) -> None:
    doc = load(real)
    run = readers(real, REPO / "suites")
    crashes: list[str] = []
    path = tmp_path / "mutated.json"
    n = 0
    for n, (what, changed) in enumerate(mutations(doc), 1):
        path.write_text(json.dumps(changed), encoding="utf-8")
        chosen = dict(run, report=report) if n % REPORT_EVERY == 0 else run
        for name, fn in chosen.items():
            crash = crash_of(fn, path)
            if crash:
                crashes.append(f"{name} on {what}: {crash}")
    assert n > 300, "the real result has a few hundred nodes"
    assert not crashes, f"{len(crashes)} crash(es):\n" + "\n".join(crashes[:40])


def test_the_report_survives_any_telemetry_value(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node of the telemetry of a real GPU run, replaced, through `report`.

    The page's own charts (throughput, iterations, projections, bandwidth) read no
    telemetry, and drawing them is most of a report's time: they are drawn from every
    REPORT_EVERY-th mutated file and reused in between. The sections that read telemetry,
    the frame, the tables and both templates run on every file."""
    from benchkit.report import render

    drawn: dict[str, Any] = {}
    real_charts = render.chart_data

    def charts(*args: Any, **kwargs: Any) -> Any:
        if "charts" not in drawn or drawn["n"] % REPORT_EVERY == 0:
            drawn["charts"] = real_charts(*args, **kwargs)
        return drawn["charts"]

    monkeypatch.setattr(render, "chart_data", charts)
    doc = load(GPU_RESULT)
    crashes: list[str] = []
    path = tmp_path / "mutated.json"
    n = 0
    for n, (what, changed) in enumerate(mutations(doc, lambda p: "telemetry" in p[:3]), 1):
        path.write_text(json.dumps(changed), encoding="utf-8")
        drawn["n"] = n
        crash = crash_of(report, path)
        if crash:
            crashes.append(f"report on {what}: {crash}")
    assert n > 200, "three cases of telemetry, with a GPU each"
    assert not crashes, f"{len(crashes)} crash(es):\n" + "\n".join(crashes[:40])

"""`benchkit run SUITE --resume RESULT.json`: continue an interrupted or crashed run.

The run goes on in the same file: its finished cases (ok or unsupported) are kept, its
failed and partial ones are dropped and measured again, and the cases it never reached
are measured. Resuming is refused, with the first difference, unless the suite asks for
the same cases (name, configurations, tests, warmup, iterations), the model files are
the same bytes (sha256) and the machine is the same (chip, CPU, backend, versions):
figures measured under other conditions must not end up in one file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from benchkit.core.errors import BenchkitError
from benchkit.results.io import read_run
from benchkit.results.model import Case

FINISHED = ("ok", "unsupported")
_SUITE_KEYS = ("name", "configurations", "tests", "warmup", "iterations", "synthetic")
_ENV_KEYS = (("chip",), ("cpu", "model"), ("backend",), ("versions", "benchkit"),
             ("versions", "llama_cpp_python"), ("gpus",))


def reopen(path: str | Path, suite: Any, models: list[Any], env: dict[str, Any], *,
           synthetic: bool, command: list[str] | None) -> tuple[dict[str, Any], Path]:
    """The resumed run's document, its unfinished cases removed, marked running again."""
    file = str(path)
    run = read_run(path)
    if run.status == "complete" and not run.partial:
        raise BenchkitError("this run is complete: nothing to resume", file=file,
                            field="status")
    _same_suite(run.suite or {}, {**suite.as_run(), "synthetic": synthetic}, file)
    _same_models(run.cases, models, file)
    _same_environment(run.env, env, file)
    kept = tuple(replace(c, index=i)
                 for i, c in enumerate(c for c in run.cases if c.status in FINISHED))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    resumed = [*(run.extra.get("resumed") or []),
               {"at": now, "command": command, "kept_cases": len(kept)}]
    run = replace(run, cases=kept, status="running", partial=True, finished_at=None)
    return run.without("interrupted_by").with_extra(resumed=resumed).to_json(), Path(path)


def _same_suite(was: Mapping[str, Any], now: dict[str, Any], file: str) -> None:
    for key in _SUITE_KEYS:
        if _norm(was.get(key)) != _norm(now.get(key)):
            raise BenchkitError(f"the suite differs from the one this run measured: {key} was "
                                f"{_short(was.get(key))}, is {_short(now.get(key))}",
                                file=file, field=f"suite.{key}")


def _same_models(cases: tuple[Case, ...], models: list[Any], file: str) -> None:
    was = {c.model_sha256 for c in cases} - {None}
    now = {m.sha256 for m in models}
    extra = sorted(was - now)
    if extra:
        raise BenchkitError(f"a model this run measured is not in the suite now (sha256 "
                            f"{extra[0][:12]}...): the model files changed", file=file,
                            field="cases.model.sha256")


def _same_environment(was: Mapping[str, Any], now: dict[str, Any], file: str) -> None:
    for path in _ENV_KEYS:
        a, b = _get(was, path), _get(now, path)
        if _norm(a) != _norm(b):
            raise BenchkitError(f"this machine differs from the one that made the run: "
                                f"{'.'.join(path)} was {_short(a)}, is {_short(b)}",
                                file=file, field="environment." + ".".join(path))


def _get(d: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _norm(value: Any) -> Any:
    """Compare as JSON does (tuples and lists alike)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

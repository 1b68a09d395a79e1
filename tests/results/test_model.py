"""The typed result objects: every committed result round-trips through them unchanged,
old versions come out upgraded, and nothing a reader holds can be changed."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from paths import REPO

from benchkit.results.io import read_result, read_run
from benchkit.results.model import (FrozenDict, FrozenList, Iteration, Run, Summary, freeze,
                                    upgrade)

RESULTS = sorted((REPO / "results").rglob("*.json"))
V1 = next(p for p in RESULTS if json.loads(p.read_text(encoding="utf-8"))["schema_version"] == 1)


def _text(doc: dict) -> str:
    """The document as written (key order and types included: 1 and 1.0, true and 1
    differ here, as they do in the file)."""
    return json.dumps(doc, indent=2, ensure_ascii=False)


def test_there_are_results_of_both_versions() -> None:
    versions = {json.loads(p.read_text(encoding="utf-8"))["schema_version"] for p in RESULTS}
    assert len(RESULTS) >= 20 and versions == {1, 2}


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_result_round_trips(path: Path) -> None:
    """load -> to_json gives the upgraded document back, byte for byte once encoded."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    run = Run.from_json(raw)
    assert _text(run.to_json()) == _text(upgrade(raw))
    assert _text(read_run(path).to_json()) == _text(read_result(path))
    assert run.schema_version == 2 and len(run.cases) == len(raw["cases"])


def test_typed_fields_are_the_files_figures() -> None:
    raw = json.loads(V1.read_text(encoding="utf-8"))
    run = Run.from_json(raw)
    first, case = raw["cases"][0], run.cases[0]
    assert isinstance(case.summary, Summary) and isinstance(case.iterations[0], Iteration)
    assert case.summary.tps_median == first["summary"]["tps_median"]
    assert [it.tps for it in case.iterations] == [it["tps"] for it in first["iterations"]]
    assert case.test == first["test"] and case.model_name == first["model"]["name"]


def test_version_1_is_upgraded_on_read() -> None:
    """A version 1 case ran in process, on benchkit's clock: the typed run says so."""
    raw = json.loads(V1.read_text(encoding="utf-8"))
    assert "engine_info" not in raw["cases"][0] and "kind" not in raw["cases"][0]["engine"]
    case = Run.from_json(raw).cases[0]
    assert case.engine_kind == "llama-cpp-python" and case.clock == "client"
    assert case.engine_info["name"] == "llama-cpp-python"
    assert raw["schema_version"] == 1          # the input is not changed


def test_unknown_keys_survive_in_extra() -> None:
    """What a later benchkit (or a workload) adds is kept, in its place."""
    raw = upgrade(json.loads(RESULTS[-1].read_text(encoding="utf-8")))
    raw["from_the_future"] = {"a": [1, 2]}
    raw["cases"][0]["new_figure"] = 3.5
    raw["cases"][0]["iterations"][0]["joules"] = 0.25
    raw["cases"][0]["summary"]["tps_p99"] = 1.0
    run = Run.from_json(raw)
    assert run.extra["from_the_future"] == {"a": [1, 2]}
    assert run.cases[0].extra["new_figure"] == 3.5
    assert run.cases[0].iterations[0].extra["joules"] == 0.25
    assert run.cases[0].summary.get("tps_p99") == 1.0
    assert _text(run.to_json()) == _text(raw)


def test_absent_and_null_stay_apart() -> None:
    """A key the file lacks is not written as null, and a null is not dropped."""
    raw = upgrade(json.loads(RESULTS[0].read_text(encoding="utf-8")))
    case = raw["cases"][0]
    case.pop("warmup", None)
    case["error"] = None
    out = Run.from_json(raw).to_json()["cases"][0]
    assert "warmup" not in out and "error" in out and out["error"] is None


def test_results_are_immutable() -> None:
    run = read_run(RESULTS[0])
    case = run.cases[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.status = "failed"                              # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.summary.tps_median = 1.0                       # type: ignore[misc,union-attr]
    with pytest.raises(TypeError):
        case.model["name"] = "another"                      # type: ignore[index]
    with pytest.raises(TypeError):
        run.environment.update(backend="cuda")              # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        case.warnings.append("x")                           # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        case.placement["buffers"].append({})                # type: ignore[index]
    with pytest.raises(AttributeError):
        case.iterations.append(case.iterations[0])          # type: ignore[attr-defined]


def test_changes_are_new_objects_and_to_json_is_writable() -> None:
    """A reader that needs another document builds one; the one it read is unchanged."""
    run = read_run(RESULTS[0])
    done = dataclasses.replace(run, status="running").with_extra(resumed=[{"kept_cases": 1}])
    assert run.status != "running" and "resumed" not in run.extra
    doc = done.to_json()
    assert doc["status"] == "running" and list(doc)[-1] == "resumed"
    doc["cases"][0]["model"]["name"] = "writable"           # plain dicts again
    assert run.cases[0].model_name != "writable"


def test_frozen_values_are_still_json_and_pickle() -> None:
    value = freeze({"a": [1, {"b": None}], "c": "d"})
    assert isinstance(value, FrozenDict) and isinstance(value["a"], FrozenList)
    assert isinstance(value, dict) and isinstance(value["a"], list)
    assert json.loads(json.dumps(value)) == {"a": [1, {"b": None}], "c": "d"}
    assert pickle.loads(pickle.dumps(value)) == value

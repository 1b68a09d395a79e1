"""load_results: the DataFrame contract that reports and projections read."""

from __future__ import annotations

from paths import DOCS

import json
import math
import re
from pathlib import Path

import pytest

import benchkit
from benchkit.core.errors import BenchkitError
from benchkit.results.frame import COLUMNS
from benchkit.results.io import read_result

ARCHITECTURE = DOCS / "architecture.md"
ENGINES_DOC = DOCS / "engines.md"


def test_columns_are_exactly_those_of_the_architecture_doc() -> None:
    """The column list in docs/architecture.md is the contract; the code must match it.
    The engine settings' columns come from the engines themselves (ENGINE_SETTINGS), in
    the place the doc marks; the serve levels' columns (SERVE_COLUMNS) follow the
    figures and are listed where the serve workload is documented (next test)."""
    from benchkit.results.frame import ENGINE_SETTINGS, SERVE_COLUMNS

    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## The DataFrame", 1)[1]
    documented = re.findall(r"`([a-z0-9_]+)`", section.split("\n- ", 1)[1].split("\n\n", 1)[0])
    documented = [c for c in documented if c not in ("gpu", "cpu", "env_", "cpu-...")]
    settings = list(ENGINE_SETTINGS[1:])
    at = COLUMNS.index(settings[0])
    assert COLUMNS[at:at + len(settings)] == settings
    serve = COLUMNS.index("ttft_median_s") + 1
    assert COLUMNS[serve:serve + len(SERVE_COLUMNS)] == list(SERVE_COLUMNS)
    rest = [c for c in COLUMNS if c not in settings and c not in SERVE_COLUMNS]
    assert [c for c in documented if c not in SERVE_COLUMNS] == rest


def test_serve_columns_are_those_of_the_serve_doc() -> None:
    """docs/engines.md names every serve_ column, in order, each a figure of a serve
    level's summary."""
    from benchkit.results.frame import SERVE_COLUMNS

    text = ENGINES_DOC.read_text(encoding="utf-8").split("## serve", 1)[1]
    paragraph = text.split("In the DataFrame", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"`(serve_[a-z0-9_]+)`", paragraph) == list(SERVE_COLUMNS)
    assert all(col == f"serve_{key}" or col == "serve_rate_rps"
               for col, key in SERVE_COLUMNS.items())


def test_one_row_per_case_with_values_from_the_file(smollm2_result: Path) -> None:
    df = benchkit.load_results(smollm2_result)
    doc = read_result(smollm2_result)
    assert list(df.columns) == COLUMNS
    assert len(df) == len(doc["cases"]) == 6
    assert list(df["test"]) == [c["test"] for c in doc["cases"]]
    assert list(df["n_gpu_layers"]) == [0, 0, 0, -1, -1, -1]
    first = doc["cases"][0]
    row = df.iloc[0]
    assert row["file"] == str(smollm2_result) and row["run_id"] == doc["run_id"]
    assert row["run_status"] == "complete" and not row["partial"]
    assert row["suite"] == "smollm2-test"
    assert row["model_quant"] == "Q4_1" and row["model_arch"] == "llama"
    assert row["model_sha256"] == first["model"]["sha256"]
    assert math.isclose(row["tps_mean"], first["summary"]["tps_mean"])
    assert row["tps_values"] == [it["tps"] for it in first["iterations"]]
    assert row["n"] == 3
    assert row["env_backend"] == doc["environment"]["backend"]
    assert row["env_cpu_model"] == doc["environment"]["cpu"]["model"]
    assert row["env_llama_cpp_python_version"] == "0.3.36"


def test_chat_rows_have_ttft_and_others_do_not(smollm2_result: Path) -> None:
    df = benchkit.load_results(smollm2_result)
    chat = df[df["test"] == "chat"]
    assert (chat["ttft_median_s"] > 0).all()
    assert df[df["test"] != "chat"]["ttft_median_s"].isna().all()


def test_serve_columns_are_empty_for_other_workloads(smollm2_result: Path) -> None:
    """A chat case has a ttft and a summary, but no serve level: its serve_ columns are
    empty (a serve row's are tested on a real level in test_serve.py)."""
    from benchkit.results.frame import SERVE_COLUMNS

    df = benchkit.load_results(smollm2_result)
    assert set(df["workload_kind"]) == {"pp", "tg", "chat"}
    assert df[list(SERVE_COLUMNS)].isna().all().all()


def test_device_columns_say_what_did_the_work(smollm2_result: Path) -> None:
    df = benchkit.load_results(smollm2_result)
    doc = read_result(smollm2_result)
    for (_, row), case in zip(df.iterrows(), doc["cases"]):
        assert row["device_kind"] == case["placement"]["device_kind"]
        if row["device_kind"] == "cpu":
            assert row["device_id"].startswith("cpu-")
            assert row["device_name"] == doc["environment"]["cpu"]["model"]
        assert row["model_buffer_mib"] == pytest.approx(
            sum(b["mib"] for b in case["placement"]["buffers"] if b["kind"] == "model"))
        assert row["kv_buffer_mib"] > 0 and row["compute_buffer_mib"] > 0


def test_folder_and_list_inputs(smollm2_result: Path, tmp_path: Path) -> None:
    by_folder = benchkit.load_results(smollm2_result.parent)
    by_list = benchkit.load_results([smollm2_result, str(smollm2_result)])
    assert len(by_folder) == 6 and len(by_list) == 12


def test_a_file_that_is_not_a_result_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(BenchkitError) as exc:
        benchkit.load_results(bad)
    assert exc.value.file == str(bad) and exc.value.field == "format"
    with pytest.raises(BenchkitError, match="no result files"):
        benchkit.load_results(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None
                              else tmp_path)

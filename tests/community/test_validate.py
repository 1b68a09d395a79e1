"""`benchkit validate`: each rejection case on a real result with one thing changed.

Each test takes the real short run of the standard suite, changes one field, writes
it, and checks through the CLI that validate exits 2 with an `error:` line naming the
file and the field (no traceback) — and, where it matters, that the unchanged file
passes, so the test fails if the check stops working rather than if anything fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from community_support import (as_nvidia, assert_rejected, benchkit, case_of, error_lines,
                               load, resummarize, scale_speed, standard_result, write)


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return standard_result(tmp_path_factory)


@pytest.fixture()
def doc(real: Path) -> dict:
    return load(real)


@pytest.fixture()
def filed(real: Path, tmp_path: Path) -> Path:
    """The real result as submit files it in a community folder."""
    proc = benchkit("submit", str(real), "--root", str(tmp_path / "community"))
    assert proc.returncode == 0, proc.stderr
    return next((tmp_path / "community").rglob("*.json"))


def test_the_real_result_is_accepted(real: Path) -> None:
    proc = benchkit("validate", str(real))
    assert proc.returncode == 0, proc.stderr
    assert error_lines(proc) == []
    assert "1 accepted, 0 rejected" in proc.stdout


def test_a_filed_result_is_accepted_with_its_path_checked(filed: Path) -> None:
    proc = benchkit("validate", str(filed.parent.parent.parent))
    assert proc.returncode == 0, proc.stderr
    assert "path not checked" not in proc.stderr


def test_not_a_benchkit_result(doc: dict, tmp_path: Path) -> None:
    doc["format"] = "llama-bench"
    bad = write(doc, tmp_path / "other-tool.json")
    assert_rejected(benchkit("validate", str(bad)), bad, "format")


def test_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text("M4 Max: 198 tok/s\n", encoding="utf-8")
    assert_rejected(benchkit("validate", str(bad)), bad, None)


def test_unknown_schema_version(doc: dict, tmp_path: Path) -> None:
    doc["schema_version"] = 99
    bad = write(doc, tmp_path / "future.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad, "schema_version")
    assert "99" in line


def test_missing_required_field(doc: dict, tmp_path: Path) -> None:
    del doc["cases"][1]["model"]["sha256"]
    del doc["environment"]["backend"]
    bad = write(doc, tmp_path / "missing.json")
    proc = benchkit("validate", str(bad))
    assert_rejected(proc, bad, "cases.1.model.sha256")
    assert_rejected(proc, bad, "environment.backend")   # one line per problem


def test_too_few_iterations(doc: dict, tmp_path: Path) -> None:
    case = case_of(doc, "tg")
    case["iterations"] = case["iterations"][:2]
    resummarize(case)
    bad = write(doc, tmp_path / "two-iterations.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad,
                           f"cases.{case['index']}.iterations")
    assert "too few iterations" in line


def test_model_sha256_differs_from_the_suite(doc: dict, tmp_path: Path) -> None:
    for case in doc["cases"]:
        case["model"]["sha256"] = "0" * 64
    bad = write(doc, tmp_path / "other-model.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad, "cases.0.model.sha256")
    assert "standard suite" in line


def test_decode_above_the_chip_bandwidth_is_impossible(doc: dict, tmp_path: Path) -> None:
    # 98 MB per token: above ~34,000 tok/s an H100 (3,350 GB/s) cannot feed it.
    gpu = as_nvidia(doc, speedup=1.0)
    tg = case_of(gpu, "tg")
    scale_speed(tg, 40000.0 / tg["summary"]["tps_median"])
    bad = write(gpu, tmp_path / "too-fast.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad,
                           f"cases.{tg['index']}.summary.tps_median")
    assert "physically impossible" in line and "GB/s" in line


def test_a_plausible_nvidia_result_is_accepted(doc: dict, tmp_path: Path) -> None:
    gpu = as_nvidia(doc)
    ok = write(gpu, tmp_path / "h100.json")
    proc = benchkit("validate", str(ok))
    assert proc.returncode == 0, proc.stderr
    assert "cannot be checked" not in proc.stderr   # h100 is in the chip database


def test_a_cpu_result_says_its_bandwidth_cannot_be_checked(real: Path) -> None:
    proc = benchkit("validate", str(real))
    assert proc.returncode == 0
    assert any(line.startswith("note:") and "cannot be checked" in line
               for line in proc.stderr.splitlines())


def test_file_too_large(doc: dict, tmp_path: Path) -> None:
    doc["cases"][0]["placement"]["log"] = ["x" * 1000] * 1200
    bad = write(doc, tmp_path / "huge.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad, None)
    assert "too large" in line


def test_path_does_not_match_content(filed: Path) -> None:
    doc = load(filed)
    doc["environment"]["os"]["release"] = "6.99.0"        # edited after submit
    write(doc, filed)
    line = assert_rejected(benchkit("validate", str(filed)), filed, None)
    assert "path does not match the content" in line


def test_filed_under_another_chip(filed: Path) -> None:
    moved = filed.parent.parent.parent / "m4max" / filed.parent.name / filed.name
    moved.parent.mkdir(parents=True)
    shutil.move(filed, moved)
    line = assert_rejected(benchkit("validate", str(moved)), moved, None)
    assert "path does not match" in line


def test_duplicate(filed: Path, tmp_path: Path) -> None:
    # The same measurements under another run id: a different id, the same run.
    doc = load(filed)
    doc["run_id"] = doc["run_id"][:-6] + "ffffff"
    copy_path = write(doc, tmp_path / "copy.json")
    root = filed.parent.parent.parent
    proc = benchkit("submit", str(copy_path), "--root", str(root))
    assert proc.returncode == 2 and "duplicate" in proc.stderr, proc.stderr
    # Placed by hand at its content path, validate catches it.
    from benchkit.community.identity import community_relpath
    from benchkit.results.io import read_result

    placed = write(read_result(copy_path), root / community_relpath(read_result(copy_path)))
    line = assert_rejected(benchkit("validate", str(placed)), placed, None)
    assert "duplicate" in line and filed.name in line


def test_not_a_standard_suite(doc: dict, tmp_path: Path) -> None:
    doc["suite"]["name"] = "my-own-suite"
    bad = write(doc, tmp_path / "own-suite.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad, "suite.name")
    assert "not a standard suite" in line


def test_engine_setting_differs_from_the_suite(doc: dict, tmp_path: Path) -> None:
    doc["cases"][0]["engine"]["n_ubatch"] = 256
    bad = write(doc, tmp_path / "ubatch.json")
    assert_rejected(benchkit("validate", str(bad)), bad, "cases.0.engine.n_ubatch")


def test_summary_not_from_the_iterations(doc: dict, tmp_path: Path) -> None:
    doc["cases"][1]["summary"]["tps_median"] *= 3       # a figure typed in by hand
    bad = write(doc, tmp_path / "summary.json")
    assert_rejected(benchkit("validate", str(bad)), bad, "cases.1.summary.tps_median")


def test_incomplete_run(doc: dict, tmp_path: Path) -> None:
    doc["status"], doc["partial"] = "interrupted", True
    bad = write(doc, tmp_path / "interrupted.json")
    assert_rejected(benchkit("validate", str(bad)), bad, "status")


def test_synthetic_model_refused_by_a_suite_that_does_not_allow_it(doc: dict,
                                                                    tmp_path: Path) -> None:
    for case in doc["cases"]:
        case["model"]["synthetic"] = True
    bad = write(doc, tmp_path / "synthetic.json")
    line = assert_rejected(benchkit("validate", str(bad)), bad, "cases.0.model.synthetic")
    assert "synthetic" in line


def test_synthetic_model_accepted_where_the_suite_allows_it(doc: dict, tmp_path: Path) -> None:
    doc["suite"]["name"] = "standard-tinyllama"          # allow_synthetic: true
    for case in doc["cases"]:
        case["model"]["synthetic"] = True
    ok = write(doc, tmp_path / "standin.json")
    proc = benchkit("validate", str(ok))
    assert proc.returncode == 0, proc.stderr


def test_private_data_refused(doc: dict, tmp_path: Path) -> None:
    doc["environment"]["hostname"] = "alices-macbook"
    doc["cases"][0]["model"]["source"] = {"path": "/Users/alice/models/smollm2.gguf"}
    bad = write(doc, tmp_path / "private.json")
    proc = benchkit("validate", str(bad))
    assert_rejected(proc, bad, "environment.hostname")
    assert_rejected(proc, bad, "cases.0.model.source.path")


def test_high_spread_warns_and_strict_fails(doc: dict, tmp_path: Path) -> None:
    tg = case_of(doc, "tg")
    base = tg["iterations"][0]
    tg["iterations"] = [dict(base, seconds=base["seconds"] * f,
                             tps=base["tokens"] / (base["seconds"] * f))
                        for f in (1.0, 1.3, 0.8)]
    resummarize(tg)
    noisy = write(doc, tmp_path / "noisy.json")
    proc = benchkit("validate", str(noisy))
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("warning:") and "high spread" in line
               and f"[cases.{tg['index']}.summary.tps_cv]" in line
               for line in proc.stderr.splitlines())
    assert benchkit("validate", "--strict", str(noisy)).returncode == 1


def test_one_bad_file_rejects_the_batch(real: Path, doc: dict, tmp_path: Path) -> None:
    doc["schema_version"] = 99
    bad = write(doc, tmp_path / "bad.json")
    proc = benchkit("validate", str(real), str(bad))
    assert proc.returncode == 2
    assert "1 accepted, 1 rejected" in proc.stdout
    assert json.loads(real.read_text())  # the good one untouched

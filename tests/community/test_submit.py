"""`benchkit submit`: scrub, check, and file a real result by its content."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from benchkit.run.environment import cpu_slug
from community_support import (as_nvidia, assert_rejected, benchkit, case_of, load,
                               resummarize, standard_result, write)


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return standard_result(tmp_path_factory)


def _filed(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def test_files_the_result_by_chip_model_and_content_id(real: Path, tmp_path: Path) -> None:
    root = tmp_path / "community"
    proc = benchkit("submit", str(real), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    [path] = _filed(root)
    rel = path.relative_to(root).parts
    doc = load(real)
    assert rel[0] == cpu_slug(doc["environment"]["cpu"]["model"])   # this machine's CPU did it
    assert rel[1] == "smollm2-135m-instruct.q4_1"
    assert re.fullmatch(r"[0-9a-f]{16}\.json", rel[2])
    filed = load(path)
    assert filed["cases"] == doc["cases"]                             # measurements untouched
    assert filed["community"]["notes"] is None
    # The pull-request steps name the file.
    assert f"git add {path}" in proc.stdout
    assert "pull request" in proc.stdout


def test_same_result_twice_is_the_same_file(real: Path, tmp_path: Path) -> None:
    root = tmp_path / "community"
    first = benchkit("submit", str(real), "--root", str(root))
    [path] = _filed(root)
    before = path.read_bytes()
    second = benchkit("submit", str(real), "--root", str(root))
    assert first.returncode == second.returncode == 0
    assert second.stdout.startswith("unchanged:")
    assert _filed(root) == [path] and path.read_bytes() == before
    # Submitting the filed file again is also the same file.
    third = benchkit("submit", str(path), "--root", str(root))
    assert third.returncode == 0 and _filed(root) == [path] and path.read_bytes() == before


def test_notes_are_kept_and_do_not_change_the_id(real: Path, tmp_path: Path) -> None:
    root = tmp_path / "community"
    benchkit("submit", str(real), "--root", str(root))
    [path] = _filed(root)
    proc = benchkit("submit", str(real), "--root", str(root), "--notes",
                    "  plugged in, nothing else running  ")
    assert proc.returncode == 0 and proc.stdout.startswith("updated:")
    assert _filed(root) == [path]
    assert load(path)["community"]["notes"] == "plugged in, nothing else running"


def test_removes_host_names_home_folders_and_serial_numbers(real: Path, tmp_path: Path) -> None:
    doc = load(real)
    host = socket.gethostname()
    env = doc["environment"]
    env["hostname"] = "alices-macbook.local"
    env["os"]["version"] = f"{env['os']['version']} built on {host}"
    env["gpus"] = [{"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85520809984,
                    "driver": "580.1", "uuid": "GPU-6f2a1c9e-0d4b-4e8f-9a3c-2b1d7e5f8a90",
                    "serial": "1652823012345"}]
    doc["cases"][0]["model"]["source"] = {"path": "/home/alice/models/smollm2.gguf"}
    doc["cases"][0]["placement"]["log"].append(
        "llama_model_loader: loaded meta data from /Users/alice/models/x.gguf")
    doc["command"] = ["benchkit", "run", "/home/alice/bench/suites/standard.yaml"]
    src = write(doc, tmp_path / "from-elsewhere.json")
    root = tmp_path / "community"
    proc = benchkit("submit", str(src), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    [path] = _filed(root)
    text = path.read_text(encoding="utf-8")
    for secret in ("alice", "alices-macbook", "6f2a1c9e", "1652823012345"):
        assert secret not in text, secret
    if len(host) >= 3 and host != "localhost":
        assert not re.search(rf"(?<![\w-]){re.escape(host)}(?![\w-])", text)
    filed = load(path)
    assert filed["cases"][0]["model"]["source"] == {"path": "smollm2.gguf"}
    assert filed["command"][-1] == "standard.yaml"
    assert "~/models/x.gguf" in filed["cases"][0]["placement"]["log"][-1]
    removed = "\n".join(filed["community"]["removed"])
    assert "environment.hostname" in removed and "environment.gpus.0.uuid" in removed
    assert "removed before publishing" in proc.stdout
    # What submit wrote passes validate.
    assert benchkit("validate", str(path)).returncode == 0


def test_nvidia_result_is_filed_under_the_gpu(real: Path, tmp_path: Path) -> None:
    src = write(as_nvidia(load(real)), tmp_path / "h100.json")
    root = tmp_path / "community"
    proc = benchkit("submit", str(src), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    [path] = _filed(root)
    assert path.relative_to(root).parts[0] == "h100"


def test_cpu_build_on_an_nvidia_machine_is_filed_under_the_cpu(real: Path,
                                                               tmp_path: Path) -> None:
    doc = as_nvidia(load(real), offloaded=False)
    src = write(doc, tmp_path / "h100-cpu-build.json")
    root = tmp_path / "community"
    assert benchkit("submit", str(src), "--root", str(root)).returncode == 0
    [path] = _filed(root)
    assert path.relative_to(root).parts[0] == cpu_slug(doc["environment"]["cpu"]["model"])


def test_refuses_a_file_that_is_not_a_result(tmp_path: Path) -> None:
    bad = tmp_path / "llama-bench.json"
    bad.write_text(json.dumps([{"model_type": "llama 135M", "avg_ts": 130.2}]))
    root = tmp_path / "community"
    proc = benchkit("submit", str(bad), "--root", str(root))
    assert_rejected(proc, bad, "format")
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not root.exists()


def test_refuses_a_result_validate_would_reject_and_writes_nothing(real: Path,
                                                                   tmp_path: Path) -> None:
    doc = load(real)
    tg = case_of(doc, "tg")
    tg["iterations"] = tg["iterations"][:1]
    resummarize(tg)
    src = write(doc, tmp_path / "one-iteration.json")
    root = tmp_path / "community"
    proc = benchkit("submit", str(src), "--root", str(root))
    assert proc.returncode == 2
    assert "too few iterations" in proc.stderr and "nothing written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _filed(root) == []


def test_missing_result_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    proc = benchkit("submit", str(missing), "--root", str(tmp_path / "community"))
    assert_rejected(proc, missing, None)


def test_synthetic_stand_in_is_filed_apart_from_the_real_model(real: Path,
                                                               tmp_path: Path) -> None:
    doc = load(real)
    doc["suite"]["name"] = "standard-tinyllama"          # a suite that allows stand-ins
    for case in doc["cases"]:
        case["model"]["synthetic"] = True
    src = write(doc, tmp_path / "standin.json")
    root = tmp_path / "community"
    proc = benchkit("submit", str(src), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    [path] = _filed(root)
    assert path.parent.name == "smollm2-135m-instruct.q4_1-synthetic"

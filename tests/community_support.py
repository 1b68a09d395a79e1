"""Helpers for the community tests: one real run of the standard suite, and ways to alter it.

Every bad case in the validate tests is a REAL result file with one thing changed, so
each test shows that exactly that change is caught. The run is made once per test
session (module-level cache: several test modules share it) with the real engine on
the real SmolLM2 model, kept short (3 iterations, no warmup).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchkit.results.io import summarize

REPO = Path(__file__).resolve().parent.parent
STANDARD_SUITE = REPO / "suites" / "standard.yaml"
_CACHE: dict[str, Path] = {}


def benchkit(*args: str, cwd: str | Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user does (from the checkout, so ./suites holds the standard suites)."""
    return subprocess.run([sys.executable, "-m", "benchkit.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def standard_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The result file of one real, short `benchkit run suites/standard.yaml`."""
    if "standard" not in _CACHE:
        out = tmp_path_factory.mktemp("standard-run")
        proc = benchkit("run", str(STANDARD_SUITE), "--iterations", "3", "--warmup", "0",
                        "-o", str(out))
        files = sorted(out.glob("*.json"))
        if proc.returncode != 0 or len(files) != 1:
            pytest.fail(f"benchkit run of the standard suite failed (exit {proc.returncode}, "
                        f"files {files}):\n{proc.stderr[-3000:]}")
        _CACHE["standard"] = files[0]
    return _CACHE["standard"]


def load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write(doc: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def resummarize(case: dict[str, Any]) -> None:
    """Recompute a case's summary from its iterations, as the runner does."""
    case["summary"] = summarize([it["tps"] for it in case["iterations"]])


def scale_speed(case: dict[str, Any], factor: float) -> None:
    """Make every iteration `factor` times faster, consistently (seconds, tps, summary)."""
    for it in case["iterations"]:
        it["seconds"] = it["seconds"] / factor
        it["tps"] = it["tokens"] / it["seconds"]
    resummarize(case)


def as_nvidia(doc: dict[str, Any], *, chip_id: str = "h100",
              name: str = "NVIDIA H100 80GB HBM3", speedup: float = 30.0,
              offloaded: bool = True) -> dict[str, Any]:
    """The real result as the runner writes it on a Linux machine with an NVIDIA GPU.

    With `offloaded` False it is a CPU-only llama.cpp build on that machine: the GPU is
    detected but no layer ran on it.
    """
    d = copy.deepcopy(doc)
    env = d["environment"]
    env["chip"] = {"kind": "nvidia", "name": name, "id": chip_id, "gpu_cores": None}
    env["gpus"] = [{"name": name, "memory_bytes": 85520809984, "driver": "580.95.05"}]
    env["backend"] = "cuda" if offloaded else "cpu"
    for case in d["cases"]:
        placement = case["placement"]
        total = placement.get("layers_total") or 31
        placement.update(layers_offloaded=total if offloaded else 0,
                         device_kind="gpu" if offloaded else "cpu",
                         devices=["CUDA0"] if offloaded else ["CPU"])
        if offloaded:
            scale_speed(case, speedup)
    return d


def case_of(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in doc["cases"] if c["workload"]["kind"] == kind)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_rejected(proc: subprocess.CompletedProcess[str], file: str | Path,
                    field: str | None) -> str:
    """Exit 2, no traceback, and an `error:` line naming the file and (if given) the field."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in error_lines(proc) if str(file) in line
             and (field is None or f"[{field}]" in line)]
    assert lines, f"no error line naming {file} [{field}]:\n{proc.stderr}"
    return lines[0]


NOTES_WITH_MARKUP = ("<script>document.title='XSS'; window.__xss = 1;</script> fan at full "
                     "speed & <b>hot</b>")


def community_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A community data set made by `benchkit submit`: the real short run of the standard
    suite as measured on this machine's CPU (notes with markup), and as the runner writes
    it on an H100 and an H200 (so that the site has chips in the database to project from
    and to mark as measured). Made once per test session."""
    if "community" not in _CACHE:
        real = standard_result(tmp_path_factory)
        work = tmp_path_factory.mktemp("site-data")
        root = work / "community"
        doc = load(real)
        sources = [(real, NOTES_WITH_MARKUP),
                   (write(as_nvidia(doc, speedup=30.0), work / "h100.json"), None),
                   (write(as_nvidia(doc, chip_id="h200", name="NVIDIA H200", speedup=31.0),
                          work / "h200.json"), None)]
        for src, notes in sources:
            args = ["submit", str(src), "--root", str(root)] + (
                ["--notes", notes] if notes else [])
            proc = benchkit(*args)
            assert proc.returncode == 0, proc.stderr
        _CACHE["community"] = root
    return _CACHE["community"]


# The explorer's presets in the sites the tests build: a dense and a mixture-of-experts
# model (each preset is a second or two of projections; the default, every preset, is what
# CI builds and tests/community/test_flow.py checks).
SITE_PRESETS = ("--presets", "llama-3.1-8b,gpt-oss-20b")


def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`benchkit site` of `community_data`, built once per test session."""
    if "site" not in _CACHE:
        out = tmp_path_factory.mktemp("site") / "site"
        proc = benchkit("site", str(community_data(tmp_path_factory)), "-o", str(out),
                        *SITE_PRESETS)
        assert proc.returncode == 0, proc.stderr
        assert "from 3 accepted result(s)" in proc.stdout
        _CACHE["site"] = out
    return _CACHE["site"]

"""Model references: package files, relative paths, and hub files served from the cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.models.ref import cached_hf, resolve, split_hf
from benchkit.run.suite import ModelSpec
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, run_benchkit

REF = "benchkit-test/SmolLM2-GGUF/sub/SmolLM2-135M-Instruct.Q4_1.gguf"


def _spec(kind: str, ref: str, suite_dir: Path, **kw) -> ModelSpec:
    return ModelSpec(kind=kind, ref=ref, field=f"models.0.{kind}", suite_file="s.yaml",
                     suite_dir=str(suite_dir), line=3, **kw)


@pytest.fixture()
def hub_cache(tmp_path: Path, smollm2_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A huggingface_hub cache laid out as hf_hub_download leaves it, holding SmolLM2."""
    cache = tmp_path / "hub"
    repo = cache / "models--benchkit-test--SmolLM2-GGUF"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit / "sub"
    snap.mkdir(parents=True)
    os.symlink(smollm2_model, snap / SMOLLM2_FILE)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_split_hf() -> None:
    assert split_hf(REF) == ("benchkit-test/SmolLM2-GGUF", f"sub/{SMOLLM2_FILE}")


def test_package_and_relative_path(tmp_path: Path, smollm2_model: Path) -> None:
    got = resolve(_spec("package", f"{SMOLLM2_PACKAGE}/{SMOLLM2_FILE}", tmp_path))
    assert got.path == smollm2_model and got.source == {"package": f"{SMOLLM2_PACKAGE}/{SMOLLM2_FILE}"}
    (tmp_path / "m").mkdir()
    os.symlink(smollm2_model, tmp_path / "m" / "x.gguf")
    got = resolve(_spec("path", "m/x.gguf", tmp_path))
    assert got.path == tmp_path / "m" / "x.gguf" and got.source == {"path": "m/x.gguf"}


def test_package_file_missing(tmp_path: Path) -> None:
    with pytest.raises(BenchkitError, match="has no file 'nope.gguf'") as exc:
        resolve(_spec("package", f"{SMOLLM2_PACKAGE}/nope.gguf", tmp_path))
    assert (exc.value.file, exc.value.field, exc.value.line) == ("s.yaml", "models.0.package", 3)


def test_hub_file_from_the_cache_offline(hub_cache: Path, tmp_path: Path,
                                        smollm2_model: Path) -> None:
    assert cached_hf(REF) is not None
    got = resolve(_spec("hf", REF, tmp_path))
    assert got.path.resolve() == smollm2_model.resolve()
    assert got.source == {"hf": REF} and got.standin_for is None


def test_a_cached_hub_model_runs_offline(hub_cache: Path, tmp_path: Path) -> None:
    suite = tmp_path / "hub.yaml"
    suite.write_text(f"name: hub\nmodels:\n  - hf: {REF}\nengine: {{n_gpu_layers: 0}}\n"
                     "workloads:\n  - pp: 8\nwarmup: 0\niterations: 1\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"),
                        env={**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "pp8" in proc.stdout

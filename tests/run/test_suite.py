"""Suites: expansion into cases, and every bad input refused by `benchkit run` in one line
that names the file, the field and (where there is one) the YAML line."""

from __future__ import annotations

from paths import REPO

import os
import re
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.run.suite import load_suite
from conftest import SMOLLM2_FILE, SMOLLM2_PACKAGE, run_benchkit


GOOD = f"""\
name: ok
models:
  - package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}
engine:
  n_gpu_layers: [0, -1]
workloads:
  - pp: 512
  - tg: 128
warmup: 1
iterations: 5
"""


# --- expansion -------------------------------------------------------------------------


def test_repository_suites_load() -> None:
    s = load_suite(REPO / "suites" / "smollm2.yaml")
    assert s.name == "smollm2" and (s.warmup, s.iterations) == (1, 5)
    assert [e.options.n_gpu_layers for e in s.engines] == [0, -1]
    assert [w.test for w in s.workloads] == ["pp512", "tg128", "chat"]
    assert s.models[0].kind == "package"
    t = load_suite(REPO / "suites" / "tinyllama.yaml")
    assert (t.warmup, t.iterations) == (3, 10)
    assert [w.test for w in t.workloads] == ["pp512", "tg100", "chat"]
    assert t.workloads[2].n_gen == 100
    assert t.models[0].kind == "hf" and t.models[0].standin == {
        "preset": "tinyllama-1.1b", "quant": "Q4_K_M", "model_buffer_mib": 636.18,
        "tensor_types": {"Q4_K": 135, "Q6_K": 21, "F32": 45}}
    for other in sorted((REPO / "suites").glob("*.yaml")):
        load_suite(other)          # every suite in the repository is valid


def test_lists_sweep_as_a_cartesian_product(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(GOOD.replace("n_gpu_layers: [0, -1]",
                                 "n_gpu_layers: [0, -1]\n  n_threads: [1, 2]\n  flash_attn: [on, off]")
                    .replace("  - pp: 512\n", "  - pp: [128, 512]\n  - {pp: 512, tg: 128}\n"))
    s = load_suite(path)
    assert len(s.engines) == 8
    assert {(e.options.n_gpu_layers, e.options.n_threads, e.options.flash_attn) for e in s.engines} == {
        (g, t, f) for g in (0, -1) for t in (1, 2) for f in ("on", "off")}
    assert [w.test for w in s.workloads] == ["pp128", "pp512", "pp512+tg128", "tg128"]
    assert s.n_cases == 8 * 4


def test_overrides_replace_the_suite_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    s = load_suite(path, iterations=3, warmup=0)
    assert (s.iterations, s.warmup) == (3, 0)
    assert s.as_run()["iterations"] == 3


def test_defaults_are_llama_bench_s(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("engine:\n  n_gpu_layers: [0, -1]\n", ""))
    (eng,) = load_suite(path).engines
    e = eng.options
    assert eng.kind == "llama-cpp-python"
    assert (e.n_gpu_layers, e.n_batch, e.n_ubatch, e.flash_attn, e.type_k, e.type_v,
            e.use_mmap) == (-1, 2048, 512, "auto", "f16", "f16", True)
    assert e.resolved().n_threads >= 1


# --- bad input, through the CLI ------------------------------------------------------


def _refused(tmp_path: Path, text: str | None, *args: str, env: dict | None = None) -> str:
    """Run `benchkit run` on a suite that must be refused; return its one error line."""
    suite = tmp_path / "bad.yaml"
    if text is not None:
        suite.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    proc = run_benchkit("run", str(suite), "-o", str(out), *args, cwd=tmp_path,
                        env=env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists() or not any(out.iterdir()), "nothing may be written"
    return lines[0]


@pytest.mark.parametrize("text, where, message", [
    ("name: x\nmodels: [\n  {path: a.gguf}\nworkloads: []\n", "bad.yaml:4", "not valid YAML"),
    (GOOD.replace("name: ok", "nmae: ok"), "bad.yaml:1 [nmae]", "unknown key 'nmae'"),
    (GOOD.replace("n_gpu_layers", "n_gpu_layer"), "bad.yaml:5 [engine.n_gpu_layer]",
     "unknown key 'n_gpu_layer'"),
    (GOOD.replace("iterations: 5", "iterations: 0"), "bad.yaml:10 [iterations]",
     "must be a positive integer"),
    (GOOD.replace("iterations: 5", "iterations: -3"), "bad.yaml:10 [iterations]",
     "must be a positive integer"),
    (GOOD.replace("iterations: 5", "iterations: five"), "bad.yaml:10 [iterations]",
     "must be a positive integer"),
    (GOOD.replace("warmup: 1", "warmup: -1"), "bad.yaml:9 [warmup]",
     "must be a non-negative integer"),
    (GOOD.replace("tg: 128", "tg: 0"), "bad.yaml:8 [workloads.1.tg]",
     "must be a positive integer"),
    (GOOD.replace("pp: 512", "pp: [512, 0]"), "bad.yaml:7 [workloads.0.pp.1]",
     "must be a positive integer"),
    (GOOD.replace("- tg: 128", "- tg: 128\n    foo: 1"), "bad.yaml:9 [workloads.1.foo]",
     "unknown key 'foo'"),
    (GOOD.replace("- tg: 128", "- chat: {prompt: hi, max_tokens: 8, colour: red}"),
     "bad.yaml:8 [workloads.1.chat.colour]", "unknown key 'colour'"),
    (GOOD.replace("- tg: 128", "- chat: {max_tokens: 1}"),
     "bad.yaml:8 [workloads.1.chat.max_tokens]", "integer >= 2"),
    (GOOD.replace("- tg: 128", "- {tg: 128, chat: {}}"), "bad.yaml:8 [workloads.1]",
     "must be one of"),
    (GOOD.replace("n_gpu_layers: [0, -1]", "n_gpu_layers: [0, -2]"),
     "bad.yaml:5 [engine.n_gpu_layers.1]", "integer >= -1"),
    (GOOD.replace("n_gpu_layers: [0, -1]", "flash_attn: maybe"),
     "bad.yaml:5 [engine.flash_attn]", "auto, on or off"),
    (GOOD.replace("n_gpu_layers: [0, -1]", "type_k: q3"), "bad.yaml:5 [engine.type_k]",
     "must be one of f32, f16"),
    (GOOD.replace("workloads:\n  - pp: 512\n  - tg: 128\n", "workloads: []\n"),
     "bad.yaml:6 [workloads]", "non-empty list"),
    (GOOD.replace(f"  - package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}\n", "").replace(
        "models:\n", ""), "bad.yaml:1", "missing required key 'models'"),
    (GOOD.replace(f"package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}",
                  "{path: a.gguf, hf: a/b/c.gguf}"), "bad.yaml:3 [models.0]",
     "exactly one of path:, package: or hf:"),
    (GOOD.replace("iterations: 5", "iterations: 5\niterations: 6"), "bad.yaml:11 [iterations]",
     "duplicate key"),
    ("- just\n- a list\n", "bad.yaml:1", "must be a YAML mapping"),
    ("", "bad.yaml:1", "must be a YAML mapping"),
])
def test_bad_suite(tmp_path: Path, text: str, where: str, message: str) -> None:
    line = _refused(tmp_path, text)
    assert f"error: {where}: " in line and message in line, line


def test_missing_suite_file(tmp_path: Path) -> None:
    line = _refused(tmp_path, None)
    assert "bad.yaml" in line and "does not exist" in line


@pytest.mark.parametrize("args, field, message", [
    (("--iterations", "0"), "[--iterations]", "must be a positive integer"),
    (("--iterations", "-2"), "[--iterations]", "must be a positive integer"),
    (("--warmup", "-1"), "[--warmup]", "must be a non-negative integer"),
])
def test_bad_overrides(tmp_path: Path, args: tuple[str, ...], field: str, message: str) -> None:
    line = _refused(tmp_path, GOOD, *args)
    assert field in line and message in line, line


def _with_model(ref: str) -> str:
    return GOOD.replace(f"package: {SMOLLM2_PACKAGE}/{SMOLLM2_FILE}", ref)


def test_model_path_that_does_not_exist(tmp_path: Path) -> None:
    line = _refused(tmp_path, _with_model("path: models/nope.gguf"))
    assert "bad.yaml:3 [models.0.path]" in line and "model file not found: models/nope.gguf" in line


def test_model_that_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "fake.gguf").write_text("<html>404 not found</html>")
    line = _refused(tmp_path, _with_model("path: fake.gguf"))
    assert "bad.yaml:3 [models.0.path]" in line and "not a GGUF file" in line


def test_truncated_model(tmp_path: Path, smollm2_model: Path) -> None:
    data = smollm2_model.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 3])
    line = _refused(tmp_path, _with_model("path: cut.gguf"))
    assert "bad.yaml:3 [models.0.path]" in line and "truncated" in line


def test_sha256_mismatch(tmp_path: Path) -> None:
    text = GOOD.replace(f"{SMOLLM2_FILE}\n", f"{SMOLLM2_FILE}\n    sha256: {'ab' * 32}\n")
    line = _refused(tmp_path, text)
    assert "[models.0.sha256]" in line and "sha256 mismatch" in line


def test_package_not_installed(tmp_path: Path) -> None:
    line = _refused(tmp_path, _with_model("package: no_such_pkg_here/model.gguf"))
    assert "[models.0.package]" in line and "'no_such_pkg_here' is not installed" in line


def _offline_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_hub_model_offline_says_how_to_get_it(tmp_path: Path) -> None:
    ref = "benchkit-test/no-such-repo-GGUF/model.Q4_K_M.gguf"
    line = _refused(tmp_path, _with_model(f"hf: {ref}"), env=_offline_env())
    assert "bad.yaml:3 [models.0.hf]" in line
    assert f"benchkit models pull hf:{ref}" in line and "path:" in line
    assert "--synthetic" in line


def test_synthetic_needs_a_standin(tmp_path: Path) -> None:
    ref = "benchkit-test/no-such-repo-GGUF/model.Q4_K_M.gguf"
    line = _refused(tmp_path, _with_model(f"hf: {ref}"), "--synthetic", env=_offline_env())
    assert "bad.yaml:3 [models.0.hf]" in line and "standin" in line


def test_library_errors_carry_file_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("tg: 128", "tg: 0"))
    with pytest.raises(BenchkitError) as exc:
        load_suite(path)
    err = exc.value
    assert (err.field, err.line) == ("workloads.1.tg", 8)
    assert re.search(r"s\.yaml$", err.file)


def test_standin_keys_match_what_synth_accepts() -> None:
    from benchkit.run.suite import schema
    from benchkit.models.mlx import STANDIN_KEYS as MLX_STANDIN_KEYS
    from benchkit.models.standins import STANDIN_KEYS

    standin = schema()["$defs"]["model"]["properties"]["standin"]
    assert set(standin["properties"]) == STANDIN_KEYS | MLX_STANDIN_KEYS


def test_standin_typo_is_refused_with_its_line(tmp_path: Path) -> None:
    text = _with_model("hf: a/b/c.gguf\n    standin: {preset: tinyllama-1.1b, qaunt: Q4_K_M}")
    line = _refused(tmp_path, text)
    assert "bad.yaml:4 [models.0.standin.qaunt]" in line and "unknown key 'qaunt'" in line

"""MLX stand-ins (`benchkit models synth PRESET --format mlx`) and `models inspect` on MLX
folders: shapes as the preset's, the tokenizer as the GGUF's, bad input in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.models.gguf import read_gguf_info
from benchkit.models.mlx import hf_config, read_mlx_info, synthesize_mlx
from benchkit.models.synth import get_preset, n_params, reduce_preset

from conftest import one_error_line, run_benchkit  # noqa: E402
from mlx_support import QWEN3_MOE_REDUCED, SMOLLM2_REDUCED, mlx_standin  # noqa: E402


def test_cli_synth_and_inspect_smollm2_reduced(tmp_path: Path) -> None:
    out = tmp_path / "smol-mlx"
    proc = run_benchkit("models", "synth", "smollm2-135m", "--format", "mlx", "--bits", "8",
                        "--reduce", "n_layers=2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(out)          # only the path on stdout
    assert "tokenizer gguf:SmolLM2-135M-Instruct.Q4_1.gguf" in proc.stderr
    doc = json.loads(run_benchkit("models", "inspect", str(out), "--json").stdout)
    p = reduce_preset(get_preset("smollm2-135m"), SMOLLM2_REDUCED)
    assert doc["format"] == "mlx" and doc["architecture"] == "llama"
    assert doc["bits"] == 8 and doc["group_size"] == 64 and doc["quantization"] == "MLX 8-bit g64"
    assert doc["n_params"] == n_params(p) and doc["n_layers"] == 2
    assert doc["synthetic"] is True and doc["standin"]["reduced"] == SMOLLM2_REDUCED
    assert len(doc["sha256"]) == 64
    text = run_benchkit("models", "inspect", str(out), "--no-sha256").stdout
    assert "MLX 8-bit g64" in text and "stand-in of preset smollm2-135m" in text
    again = run_benchkit("models", "synth", "smollm2-135m", "--format", "mlx", "--bits", "8",
                         "--reduce", "n_layers=2", "-o", str(out))
    assert again.returncode == 0 and again.stderr.startswith("cached:")


def test_full_smollm2_standin_has_the_ggufs_parameters(smollm2_model: Path) -> None:
    """The full-size stand-in the side-by-side suite runs: as many parameters as the real
    SmolLM2 GGUF (tied embeddings: no separate output matrix)."""
    info = read_mlx_info(mlx_standin("smollm2-135m", None))
    assert info.metadata["format"] == "mlx" and info.n_layers == 30
    assert info.n_params == read_gguf_info(smollm2_model).n_params
    assert info.file_type == "MLX 4-bit g64" and info.synthetic and info.preset == "smollm2-135m"


def test_tokenizer_is_the_ggufs(smollm2_model: Path) -> None:
    """The stand-in's tokenizer.json splits text as llama.cpp's tokenizer of the GGUF does."""
    import llama_cpp
    from tokenizers import Tokenizer

    folder = mlx_standin("smollm2-135m", SMOLLM2_REDUCED)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    llm = llama_cpp.Llama(str(smollm2_model), vocab_only=True, verbose=False)
    for text in ("Explain quantum computing in simple terms.", "naïve café, 1234 tokens!",
                 "<|im_start|>user\nHi<|im_end|>\n"):
        assert tok.encode(text).ids == llm.tokenize(text.encode(), add_bos=False, special=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    assert cfg["eos_token"] == "<|im_end|>" and "<|im_start|>" in cfg["chat_template"]


def test_byte_level_tokenizer_round_trips_any_text() -> None:
    from tokenizers import Tokenizer

    folder = mlx_standin("qwen3-30b-a3b", QWEN3_MOE_REDUCED)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = "héllo — 世界"
    ids = tok.encode(text).ids
    assert len(ids) == len(text.encode()) and max(ids) < QWEN3_MOE_REDUCED["n_vocab"]
    assert tok.decode(ids) == text


def test_architectures_without_an_mlx_model_are_refused() -> None:
    p = get_preset("smollm2-135m")
    bad = reduce_preset(p, None).__class__(**{**p.__dict__, "architecture": "phi9"})
    with pytest.raises(BenchkitError, match="no MLX stand-in for architecture 'phi9'"):
        hf_config(bad)
    assert hf_config(get_preset("qwen3-30b-a3b"))["model_type"] == "qwen3_moe"


@pytest.mark.parametrize("args,expected", [
    (["--bits", "7"], "--bits 7: MLX quantizes to (2, 3, 4, 5, 6, 8)"),
    ([], "--format mlx needs --bits (4 or 8)"),
])
def test_cli_bad_settings_are_one_line(args: list[str], expected: str) -> None:
    proc = run_benchkit("models", "synth", "smollm2-135m", "--format", "mlx", *args)
    assert proc.returncode != 0 and expected in one_error_line(proc)


def test_inspect_names_a_folder_that_is_not_mlx(tmp_path: Path) -> None:
    proc = run_benchkit("models", "inspect", str(tmp_path))
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert "not an MLX model folder: no config.json" in line and str(tmp_path) in line


def test_synth_without_mlx_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    for name in ("mlx", "mlx.core", "mlx_lm"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BenchkitError, match=r"pip install 'benchkit\[mlx\]'"):
        synthesize_mlx("smollm2-135m", 4, output=tmp_path / "x")


HUB_SUITE = """\
name: mlx-hub-test
models:
  - hf: test-org/smol-mlx
engines:
  - mlx
workloads:
  - tg: 4
warmup: 0
iterations: 1
"""


def test_a_hub_id_resolves_to_the_cached_snapshot_offline(tmp_path: Path) -> None:
    """`hf: ORG/REPO` through huggingface_hub's own cache lookup (a cache laid out as the
    hub client writes it, offline); not cached and offline: one line saying how to get it."""
    import os
    import shutil

    src = mlx_standin("smollm2-135m", SMOLLM2_REDUCED)
    repo = tmp_path / "hub" / "models--test-org--smol-mlx"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(src, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    suite = tmp_path / "hub.yaml"
    suite.write_text(HUB_SUITE)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (case,) = json.loads(next((tmp_path / "out").glob("*.json")).read_text())["cases"]
    assert case["status"] == "ok" and case["model"]["source"] == {"hf": "test-org/smol-mlx"}
    assert case["model"]["format"] == "mlx" and case["iterations"][0]["tokens"] == 4

    env["HF_HUB_CACHE"] = str(tmp_path / "empty")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out2"), env=env)
    line = one_error_line(proc)
    assert proc.returncode != 0 and "hf:test-org/smol-mlx is not in the local Hugging " \
        "Face cache" in line and "format: mlx" in line

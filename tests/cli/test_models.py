"""`benchkit models list / inspect / pull / synth` through the real CLI, on real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from benchkit.models import hub
from benchkit.models import presets, synth
from benchkit.core.errors import BenchkitError
from conftest import benchkit_cmd
from conftest import one_error_line as _one_error_line

REF = "hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf"


def _run(*args: str, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*benchkit_cmd(), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(scope="module")
def synthesized(cache: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`benchkit models synth smollm2-135m --quant Q4_0` into an empty cache."""
    proc = _run("models", "synth", "smollm2-135m", "--quant", "Q4_0",
                env={synth.CACHE_ENV: str(cache)})
    assert proc.returncode == 0, proc.stderr
    return proc, Path(proc.stdout.strip())


# --------------------------------------------------------------------------- synth

def test_synth_prints_the_path_then_finds_it_cached(synthesized: tuple, cache: Path) -> None:
    proc, path = synthesized
    assert path == cache / "smollm2-135m.Q4_0.synthetic.gguf"
    assert path.is_file()
    assert "wrote in" in proc.stderr
    mtime = path.stat().st_mtime_ns
    again = _run("models", "synth", "smollm2-135m", "--quant", "q4_0",
                 env={synth.CACHE_ENV: str(cache)})
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(path)
    assert again.stderr.startswith("cached:")
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in cache.iterdir()] == [path.name]


# --------------------------------------------------------------------------- list

def test_list_shows_presets_types_and_cached_standins(synthesized: tuple, cache: Path) -> None:
    proc = _run("models", "list", env={synth.CACHE_ENV: str(cache)})
    assert proc.returncode == 0, proc.stderr
    for preset in presets.preset_names():
        assert preset in proc.stdout
    assert "Q4_K_M" in proc.stdout and "1.10 B" in proc.stdout
    assert "smollm2-135m.Q4_0.synthetic.gguf" in proc.stdout

    doc = json.loads(_run("models", "list", "--json", env={synth.CACHE_ENV: str(cache)}).stdout)
    assert [p["preset"] for p in doc["presets"]] == presets.preset_names()
    tiny = next(p for p in doc["presets"] if p["preset"] == "tinyllama-1.1b")
    assert (tiny["n_layers"], tiny["n_embd"], tiny["n_ff"], tiny["n_head"],
            tiny["n_head_kv"], tiny["n_vocab"]) == (22, 2048, 5632, 32, 4, 32000)
    assert doc["cached"] == [{"file": str(cache / "smollm2-135m.Q4_0.synthetic.gguf"),
                              "preset": "smollm2-135m", "quant": "Q4_0", "synthetic": True,
                              "size_bytes": (cache / "smollm2-135m.Q4_0.synthetic.gguf")
                              .stat().st_size}]


def test_list_shows_experts_and_active_parameters(cache: Path) -> None:
    proc = _run("models", "list", env={synth.CACHE_ENV: str(cache)})
    lines = proc.stdout.splitlines()
    row = next(line for line in lines if line.strip().startswith("qwen3-30b-a3b"))
    assert "8/128 x768" in row and "30.53 B" in row and "3.35 B" in row
    dense = next(line for line in lines if line.strip().startswith("qwen3-8b"))
    assert dense.split().count("8.19") == 2          # params and active alike
    doc = json.loads(_run("models", "list", "--json", env={synth.CACHE_ENV: str(cache)}).stdout)
    gpt = next(p for p in doc["presets"] if p["preset"] == "gpt-oss-20b")
    assert (gpt["n_expert"], gpt["n_expert_used"], gpt["n_params"], gpt["n_params_active"]) \
        == (32, 4, 20_914_757_184, 4_187_440_704)


# --------------------------------------------------------------------------- reduced / routing

REDUCE = "n_layers=2,n_embd=256,n_head=4,n_head_kv=2,head_dim=64,n_expert=8,n_expert_used=2," \
         "n_ff_expert=256,n_vocab=2048"


@pytest.fixture(scope="module")
def moe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of its own, so that the listing tests above see only their stand-in."""
    return tmp_path_factory.mktemp("moe-cache")


@pytest.fixture(scope="module")
def reduced_moe(moe_cache: Path) -> Path:
    """`benchkit models synth gpt-oss-20b --quant MXFP4 --reduce ...` into its cache."""
    proc = _run("models", "synth", "gpt-oss-20b", "--quant", "MXFP4", "--reduce", REDUCE,
                "--threads", "1", env={synth.CACHE_ENV: str(moe_cache)})
    assert proc.returncode == 0, proc.stderr
    assert "REDUCED gpt-oss-20b shapes" in proc.stderr
    return Path(proc.stdout.strip())


def test_list_marks_a_reduced_standin(reduced_moe: Path, moe_cache: Path) -> None:
    proc = _run("models", "list", env={synth.CACHE_ENV: str(moe_cache)})
    line = next(x for x in proc.stdout.splitlines() if reduced_moe.name in x)
    assert "gpt-oss-20b (REDUCED)" in line and "MXFP4" in line
    doc = json.loads(_run("models", "list", "--json",
                          env={synth.CACHE_ENV: str(moe_cache)}).stdout)
    row = next(c for c in doc["cached"] if c["file"] == str(reduced_moe))
    assert row["reduced"] == ",".join(sorted(REDUCE.split(",")))


def test_inspect_shows_active_parameters_of_a_moe(reduced_moe: Path) -> None:
    text = _run("models", "inspect", "--no-sha256", str(reduced_moe)).stdout
    assert "per token (2 of 8 experts)" in text
    doc = json.loads(_run("models", "inspect", "--json", "--no-sha256", str(reduced_moe)).stdout)
    assert doc["n_expert"] == 8 and doc["n_expert_used"] == 2
    assert doc["n_params_active"] < doc["n_params_total"] == doc["n_params"]
    assert doc["bytes_active"] < doc["bytes_total"]
    assert doc["file_type"] == "MXFP4_MOE"
    assert doc["standin"]["reduced"] == ",".join(sorted(REDUCE.split(",")))


def test_inspect_dense_model_is_all_active(smollm2_model: Path) -> None:
    doc = json.loads(_run("models", "inspect", "--json", "--no-sha256", str(smollm2_model)).stdout)
    assert doc["n_params_active"] == doc["n_params"] and doc["n_expert"] is None
    assert "(dense: all of it)" in _run("models", "inspect", "--no-sha256",
                                        str(smollm2_model)).stdout


def test_routing_prints_a_table_per_layer(reduced_moe: Path) -> None:
    proc = _run("models", "routing", str(reduced_moe), "--tokens", "48", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "48 random tokens in one batch, 2 of 8 experts per token" in proc.stdout
    assert "busiest %" in proc.stdout and "chance CV" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["0", "1"] and all(r[1] == "48" and r[3] == "25.0" for r in rows)
    doc = json.loads(_run("models", "routing", str(reduced_moe), "-n", "48", "--json").stdout)
    assert [sum(layer["counts"]) for layer in doc["layers"]] == [96, 96]


def test_routing_of_a_dense_model_is_one_clear_error(smollm2_model: Path) -> None:
    proc = _run("models", "routing", str(smollm2_model), "--tokens", "8")
    assert proc.returncode != 0
    assert "not a mixture of experts" in _one_error_line(proc)


def test_synth_bad_reduce_names_the_field(cache: Path) -> None:
    proc = _run("models", "synth", "qwen3-30b-a3b", "--quant", "Q8_0", "--reduce",
                "n_layers=2,rope_theta=5", env={synth.CACHE_ENV: str(cache)})
    assert proc.returncode != 0
    assert "reduce.rope_theta" in _one_error_line(proc)


# --------------------------------------------------------------------------- inspect

def test_inspect_real_model(smollm2_model: Path) -> None:
    proc = _run("models", "inspect", str(smollm2_model))
    assert proc.returncode == 0, proc.stderr
    assert "llama" in proc.stdout and "Q4_1" in proc.stdout
    assert "Q4_1 210, F32 61, Q8_0 1" in proc.stdout
    assert "synthetic     no" in proc.stdout

    doc = json.loads(_run("models", "inspect", "--json", str(smollm2_model)).stdout)
    assert doc["architecture"] == "llama"
    assert doc["n_params"] == 134_515_008
    assert doc["file_type"] == "Q4_1"
    assert doc["n_layers"] == 30
    assert doc["tensor_types"] == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    assert doc["size_bytes"] == smollm2_model.stat().st_size
    assert doc["sha256"] == hashlib.sha256(smollm2_model.read_bytes()).hexdigest()
    assert doc["synthetic"] is False and doc["standin"] is None


def test_inspect_synthetic_model(synthesized: tuple) -> None:
    _, path = synthesized
    doc = json.loads(_run("models", "inspect", "--json", "--no-sha256", str(path)).stdout)
    assert doc["synthetic"] is True
    assert doc["standin"]["preset"] == "smollm2-135m"
    assert doc["standin"]["quant"] == "Q4_0"
    assert doc["file_type"] == "Q4_0"
    assert doc["sha256"] is None
    text = _run("models", "inspect", str(path)).stdout
    assert "synthetic     yes: stand-in of preset smollm2-135m" in text


@pytest.mark.parametrize("content", [None, b"not a gguf file at all", b"GGUF\x03\x00\x00\x00"])
def test_inspect_bad_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    line = _one_error_line(_run("models", "inspect", str(path)))
    assert str(path) in line


def test_inspect_truncated_file(tmp_path: Path, synthesized: tuple) -> None:
    _, path = synthesized
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    line = _one_error_line(_run("models", "inspect", str(cut)))
    assert "truncated" in line and str(cut) in line


# --------------------------------------------------------------------------- pull

def test_pull_offline_fails_at_once_with_the_ways_out(tmp_path: Path) -> None:
    """No network needed: HF_HUB_OFFLINE=1 and an empty hub cache."""
    proc = _run("models", "pull", REF, env={"HF_HUB_OFFLINE": "1",
                                            "HF_HOME": str(tmp_path / "hf")}, timeout=60)
    line = _one_error_line(proc)
    assert REF in line and "HF_HUB_OFFLINE" in line and "models synth" in line
    assert not list(tmp_path.rglob("*.gguf*"))


@pytest.mark.parametrize("ref", ["TheBloke/x/y.gguf", "hf:onlyrepo", "hf:org/repo"])
def test_pull_bad_reference(ref: str) -> None:
    line = _one_error_line(_run("models", "pull", ref, env={"HF_HUB_OFFLINE": "1"}))
    assert "not a hub reference" in line


def test_parse_ref_with_revision() -> None:
    ref = hub.parse_ref("hf:org/repo/sub/dir/model.Q4_0.gguf@v1.0")
    assert (ref.repo_id, ref.filename, ref.revision) == ("org/repo", "sub/dir/model.Q4_0.gguf",
                                                         "v1.0")


def test_verify_file_accepts_the_right_bytes_and_removes_wrong_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.gguf"
    good.write_bytes(b"GGUF" + bytes(1000))
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    hub.verify_file(good, 1004, digest, ref="hf:o/r/good.gguf")
    assert good.exists()

    for size, sha in ((1004, "0" * 64), (999, digest)):
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(b"GGUF" + bytes(1000))
        with pytest.raises(BenchkitError) as err:
            hub.verify_file(bad, size, sha, ref="hf:o/r/bad.gguf")
        assert "corrupt" in str(err.value)
        assert not bad.exists()


def _hub_cache(home: Path, model: Path) -> str:
    """Lay a file out as huggingface_hub's cache does (blob, snapshot link, refs/main)."""
    repo = home / "hub" / "models--example--smol-GGUF"
    commit = "0123456789abcdef0123456789abcdef01234567"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(model.read_bytes())
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "smol.Q4_1.gguf").symlink_to(f"../../blobs/{digest}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return "hf:example/smol-GGUF/smol.Q4_1.gguf"


def test_hub_cache_is_listed_and_pull_offline_finds_it(tmp_path: Path,
                                                      smollm2_model: Path) -> None:
    ref = _hub_cache(tmp_path / "hf", smollm2_model)
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           synth.CACHE_ENV: str(tmp_path / "empty")}
    doc = json.loads(_run("models", "list", "--json", env=env).stdout)
    assert [h["ref"] for h in doc["hub_cache"]] == [ref]
    assert doc["hub_cache"][0]["size_bytes"] == smollm2_model.stat().st_size
    assert doc["cached"] == []

    proc = _run("models", "pull", ref, env=env)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).read_bytes()[:4] == b"GGUF"
    assert "already cached" in proc.stderr and "not verified (offline)" in proc.stderr

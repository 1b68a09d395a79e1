"""The mlx engine, for real: MLX's CPU backend on reduced MLX stand-ins made by benchkit,
in this process and through `benchkit run` (a worker), and mlx_lm.server through the
openai engine on loopback. Token counts are tiny: these test the engine's paths, not
MLX's speed (tests never assert timings)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.engines import engine_class
from benchkit.engines.base import ModelFile, Plan
from benchkit.engines.http.client import ManagedServer
from benchkit.engines.http.openai import OpenAICompatible, OpenAIOptions
from benchkit.engines.mlx.engine import MLX, MLXOptions
from benchkit.workloads.chat import ChatWorkload
from benchkit.workloads.tokens import TokensWorkload

from conftest import one_error_line, run_benchkit  # noqa: E402
from mlx_support import QWEN3_MOE_REDUCED, SMOLLM2_REDUCED, mlx_standin  # noqa: E402

PP16 = TokensWorkload("pp", 16, 0)
TG4 = TokensWorkload("tg", 0, 4)
PP8_TG4 = TokensWorkload("pp+tg", 8, 4)
PP8_D8 = TokensWorkload("pp", 8, 0, 8)
CHAT6 = ChatWorkload(prompt="Explain MLX in one line.", max_tokens=6)
ONE = Plan(warmup=0, iterations=1)


@pytest.fixture(scope="module")
def smol() -> Path:
    return mlx_standin("smollm2-135m", SMOLLM2_REDUCED)


def model_file(path: Path) -> ModelFile:
    return ModelFile(path=str(path), label="suite.yaml:3 [models.0]", name=path.name)


def mlx_engine(**kw) -> MLX:
    return MLX(MLXOptions(**kw))


def test_registered_and_declares_its_model_format() -> None:
    assert engine_class("mlx") is MLX
    assert MLX.model_formats == {"mlx"}
    assert engine_class("llama-cpp-python").model_formats == {"gguf"}


def test_pp_tg_depth_pp_tg_and_chat_on_mlx(smol: Path) -> None:
    with mlx_engine().open(model_file(smol)) as s:
        facts, placement = s.facts(), s.placement()
        pp = s.measure(PP16, Plan(warmup=1, iterations=2))
        tg = s.measure(TG4, ONE)
        s.prepare(PP8_D8)
        depth = s.measure(PP8_D8, Plan(warmup=0, iterations=2))
        cache = s.native.cache
        assert cache is not None and all(c.offset == 8 + 8 for c in cache)
        pptg = s.measure(PP8_TG4, ONE)
        chat = s.measure(CHAT6, ONE)
    assert facts["versions"]["mlx"] == version("mlx")
    assert facts["version"] == version("mlx-lm")
    assert facts["backend"] == "mlx" and facts["bits"] == 4 and facts["group_size"] == 64
    assert facts["device"]["kind"] == "cpu" and facts["device"]["metal"] is False
    assert placement["backend"] == "mlx" and placement["device_kind"] == "cpu"
    assert placement["buffers"][0]["kind"] == "model" and placement["buffers"][0]["mib"] > 1
    for it in [*pp, *tg, *depth]:
        assert it.clock == "client" and it.seconds > 0 and it.extra["peak_memory_bytes"] > 0
    assert [it.tokens for it in pp] == [16, 16] and tg[0].tokens == 4
    assert [it.tokens for it in depth] == [8, 8]
    (it,) = pptg
    assert it.tokens == 12 and it.extra["n_generated"] == 4 and it.extra["n_prompt"] == 8
    assert it.extra["mlx_prompt_tps"] > 0 and it.extra["mlx_generation_tps"] > 0
    assert 0 < it.extra["ttft_s"] < it.seconds
    (c,) = chat
    assert c.extra["n_generated"] == 6 and c.tokens == 5       # every token asked for
    assert len(c.token_latencies_s) == 5 and 0 < c.ttft_s < c.extra["total_s"]
    assert c.extra["mlx_peak_memory_gb"] > 0 and c.extra["mlx_generation_tps"] > 0


def test_kv_bits_quantize_the_cache_and_bits_must_match_the_folder(smol: Path) -> None:
    from mlx_lm.models.cache import QuantizedKVCache

    with mlx_engine(kv_bits=8).open(model_file(smol)) as s:
        (it,) = s.measure(TG4, ONE)
        assert it.tokens == 4
        assert all(isinstance(c, QuantizedKVCache) for c in s.native.cache)
    with pytest.raises(BenchkitError) as err:
        mlx_engine(bits=8).open(model_file(smol))
    assert "quantized to 4 bits; bits 8" in str(err.value) and str(smol) in str(err.value)


def test_max_tokens_refuses_a_longer_request(smol: Path) -> None:
    with mlx_engine(max_tokens=3).open(model_file(smol)) as s:
        with pytest.raises(BenchkitError, match="tg4 generates 4 tokens; max_tokens is 3"):
            s.prepare(TG4)


def test_moe_standin_with_a_byte_level_tokenizer_runs() -> None:
    folder = mlx_standin("qwen3-30b-a3b", QWEN3_MOE_REDUCED)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "qwen3_moe" and cfg["num_experts"] == 8
    assert cfg["benchkit"]["tokenizer"] == "byte-level"
    with mlx_engine().open(model_file(folder)) as s:
        (it,) = s.measure(CHAT6, ONE)
    assert it.extra["n_generated"] == 6


def _bad(tmp_path: Path, smol: Path, what: str) -> Path:
    bad = tmp_path / what
    shutil.copytree(smol, bad)
    cfg = json.loads((bad / "config.json").read_text())
    if what == "no-weights":
        for f in bad.glob("*.safetensors"):
            f.unlink()
    elif what == "unknown-arch":
        cfg["model_type"] = "nonesuch"
    elif what == "bits-7":
        cfg["quantization"]["bits"] = 7
    elif what == "no-config":
        (bad / "config.json").unlink()
        return bad
    (bad / "config.json").write_text(json.dumps(cfg))
    return bad


@pytest.mark.parametrize("what,expected", [
    ("no-config", "not an MLX model folder: no config.json"),
    ("no-weights", "no weights: the folder has no *.safetensors file"),
    ("unknown-arch", "mlx-lm could not load the model (ValueError: Model type nonesuch not "
                     "supported"),
    ("bits-7", "quantization bits 7: MLX loads (2, 3, 4, 5, 6, 8)"),
])
def test_bad_folders_fail_with_one_line(tmp_path: Path, smol: Path, what: str,
                                        expected: str) -> None:
    bad = _bad(tmp_path, smol, what)
    with pytest.raises(BenchkitError) as err:
        mlx_engine().open(model_file(bad))
    msg = str(err.value)
    assert expected in msg and str(bad) in msg and "\n" not in msg


def test_without_mlx_the_engine_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                     smol: Path) -> None:
    for name in ("mlx", "mlx.core", "mlx_lm"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BenchkitError) as err:
        mlx_engine().open(model_file(smol))
    assert "pip install 'benchkit[mlx]'" in str(err.value)
    assert MLX.availability() == ("mlx and mlx_lm not installed: pip install 'benchkit[mlx]' "
                                  "(mlx, mlx-cpu on Linux, mlx-lm)")


SUITE = """\
name: mlx-side-by-side-test
models:
  - path: {gguf}
  - path: {mlx}
  - path: {bad}
engine:
  n_threads: 1
engines:
  - llama-cpp-python
  - mlx
workloads:
  - pp: 16
  - tg: 4
warmup: 0
iterations: 2
"""


def test_benchkit_run_puts_mlx_beside_llama_cpp(tmp_path: Path, smol: Path,
                                               smollm2_model: Path) -> None:
    """One run, two formats: each engine runs its own, the other pair is unsupported, a
    folder mlx-lm cannot load fails its cases and the run goes on; the table, the frame
    and the report say which backend made each figure."""
    bad = _bad(tmp_path, smol, "unknown-arch")
    full = mlx_standin("smollm2-135m", None)     # the GGUF's shape: one comparison table
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(gguf=smollm2_model, mlx=full, bad=bad))
    out = tmp_path / "out"
    proc = run_benchkit("run", str(suite), "-o", str(out))
    assert proc.returncode == 1, proc.stderr[-2000:]        # failed cases: exit 1
    (path,) = out.glob("*.json")
    doc = json.loads(path.read_text())
    by = {(c["model"]["file"], c["engine"]["kind"], c["test"]): c for c in doc["cases"]}
    assert len(by) == 12 and doc["status"] == "complete"
    for test in ("pp16", "tg4"):
        assert by[(smollm2_model.name, "llama-cpp-python", test)]["status"] == "ok"
        assert by[(full.name, "mlx", test)]["status"] == "ok"
        assert by[(smollm2_model.name, "mlx", test)]["error"] == \
            "mlx runs mlx models; this one is gguf"
        assert by[(full.name, "llama-cpp-python", test)]["status"] == "unsupported"
        failed = by[(bad.name, "mlx", test)]
        assert failed["status"] == "failed" and "Model type nonesuch" in failed["error"]
    mlx_case = by[(full.name, "mlx", "pp16")]
    assert mlx_case["model"]["format"] == "mlx" and mlx_case["model"]["synthetic"] is True
    assert mlx_case["model"]["quantization"] == "MLX 4-bit g64"
    assert mlx_case["engine_info"]["backend"] == "mlx"
    assert "| mlx " in proc.stdout and "MLX (CPU)" in proc.stdout

    import benchkit
    df = benchkit.load_results([path])
    ok = df[df.status == "ok"].set_index(["engine", "test"])
    assert ok.loc[("mlx", "pp16"), "backend"] == "mlx"
    assert ok.loc[("llama-cpp-python", "pp16"), "backend"] == "cpu"

    rep = run_benchkit("report", str(path), "-o", str(tmp_path / "rep"))
    assert rep.returncode == 0, rep.stderr[-2000:]
    md = (tmp_path / "rep.md").read_text()
    table = md.split("## Competitive comparison", 1)[1].split("\n## ", 1)[0]
    assert "SmolLM2-135M-Instruct.Q4_1.gguf and its MLX folder " in table
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| llama-cpp-python", "| mlx"]          # after the header row
    mlx_row = next(line for line in table.splitlines() if line.startswith("| mlx |"))
    assert "benchkit's clock" in mlx_row and "n=2" in mlx_row


def test_a_suite_refuses_bits_mlx_cannot_load(tmp_path: Path, smol: Path) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text(f"name: b\nmodels:\n  - path: {smol}\nengines:\n  - {{kind: mlx, bits: 7}}\n"
                     "workloads:\n  - tg: 4\n")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"))
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert "bits" in line and "must be null or one of [2, 3, 4, 5, 6, 8]" in line


# --- mlx_lm.server through the openai engine -----------------------------------------------


def test_mlx_lm_server_through_the_openai_engine(smol: Path, tmp_path: Path) -> None:
    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "mlx_lm", "server", "--model", str(smol),
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]

    # mlx_lm.server lists the hub cache's MLX models in GET /v1/models (and answers an
    # empty body when there is no cache folder): an empty cache of its own, offline
    hub = tmp_path / "hub"
    hub.mkdir()
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}
    server = ManagedServer("mlx_lm.server", argv, health_path="/v1/models", env=env)
    server.start(ready_timeout_s=120)
    try:
        engine = OpenAICompatible(OpenAIOptions(url=server.base_url + "/v1"))
        with engine.open(None) as s:
            facts = s.facts()
            (tg,) = s.measure(TG4, ONE)
            (chat,) = s.measure(CHAT6, ONE)
    finally:
        server.stop()
    assert server.proc is not None and server.proc.poll() is not None
    assert facts["served_models"] == [str(smol.resolve())] and facts["model"] == str(smol.resolve())
    assert tg.clock == "client" and tg.extra["n_generated"] == 5 and tg.tokens == 4
    assert chat.extra["n_generated"] == 6 and chat.ttft_s is not None and chat.ttft_s > 0

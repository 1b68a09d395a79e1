"""Synthetic stand-ins (benchkit.models.synth): shape-exact against the real SmolLM2 file, loadable
by llama.cpp, cached, and refused cleanly on bad input without leaving a partial file.

Every stand-in here is made by the real pipeline (gguf-py writer, llama.cpp quantizer)
from the small smollm2-135m preset: a few seconds each on two cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from benchkit.models import presets, routing, standins, synth, vocab
from benchkit.core.errors import BenchkitError
from benchkit.models.gguf import read_gguf_info
from conftest import benchkit_cmd
from conftest import one_error_line as _one_error_line

PRESET = "smollm2-135m"

# Parameter counts the model publishers state (Hugging Face model pages, safetensors
# metadata): the presets' figures must rebuild them exactly.
PUBLISHED_PARAMS = {
    "tinyllama-1.1b": 1_100_048_384,
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-3-8b": 8_030_261_248,
    "llama-3-70b": 70_553_706_496,
    "mistral-7b": 7_241_732_096,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-7b": 7_615_616_512,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "smollm2-135m": 134_515_008,
    # the newer families: the safetensors totals on the Hugging Face model pages, which
    # llama.cpp's GGUFs of them also state (general.parameter_count / n_params); Gemma 3:
    # its text model (the vision encoder is not part of the stand-in)
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.3-70b": 70_553_706_496,
    "mistral-small-24b": 23_572_403_200,
    "qwen3-8b": 8_190_735_360,
    "qwen3-30b-a3b": 30_532_122_624,
    "qwen3-235b-a22b": 235_093_634_560,
    "gpt-oss-20b": 20_914_757_184,
    "gpt-oss-120b": 116_829_156_672,
    "gemma-3-4b": 3_880_263_168,
    "gemma-3-12b": 11_766_034_176,
    "gemma-3-27b": 27_009_346_304,
}

# Active (per token) parameters as the model cards state them: (figure in billions,
# decimals given). Qwen3 model cards (https://huggingface.co/Qwen/Qwen3-30B-A3B,
# https://huggingface.co/Qwen/Qwen3-235B-A22B): "30.5B in total and 3.3B activated",
# "235B in total and 22B activated"; the gpt-oss model card
# (https://arxiv.org/abs/2508.10925, table 1): 3.61B and 5.13B active. The cards differ
# on the input embedding table (a token reads one row of it): gpt-oss leaves it out
# (its figures are ours without it, to the digit); Qwen's lie between ours without and
# with it (3.04B-3.35B, 21.6B-22.2B).
PUBLISHED_ACTIVE = {
    "qwen3-30b-a3b": (3.3, 1),
    "qwen3-235b-a22b": (22, 0),
    "gpt-oss-20b": (3.61, 2),
    "gpt-oss-120b": (5.13, 2),
}

# Reduced stand-ins (synth's `reduce`): each architecture at a size this machine loads in
# a second, quantized by llama.cpp, to prove llama.cpp accepts the layout and metadata.
# The same tensor names and kinds as the full preset; only the figures are smaller.
SMALL = {"n_layers": 2, "n_embd": 256, "n_head": 4, "n_head_kv": 2, "head_dim": 64,
         "n_vocab": 2048}
REDUCED = {
    "qwen3-30b-a3b": {**SMALL, "n_expert": 16, "n_expert_used": 4, "n_ff_expert": 256},
    "gpt-oss-20b": {**SMALL, "n_expert": 8, "n_expert_used": 2, "n_ff_expert": 256},
    "qwen3-8b": {**SMALL, "n_ff": 512},
    "gemma-3-4b": {**SMALL, "n_layers": 7, "n_ff": 512},   # 6 sliding layers, then a global one
    "mistral-small-24b": {**SMALL, "n_ff": 512},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private stand-in cache for this module."""
    return tmp_path_factory.mktemp("synth-cache")


@pytest.fixture(scope="module")
def q4_1(cache: Path) -> Path:
    """The smollm2-135m stand-in in the real file's types (Q4_1; llama.cpp picks Q8_0 for
    token_embd by itself, because 576 columns do not divide into its 256-value blocks)."""
    return synth.synthesize(PRESET, "Q4_1", output=cache / "smollm2-q4_1.gguf",
                            progress=False).path


@pytest.fixture(scope="module")
def q4_1_info(q4_1: Path):  # noqa: ANN201
    """The stand-in as benchkit.models.gguf (gguf-py's reader) sees it; read once, it is slow."""
    return read_gguf_info(q4_1)


@pytest.fixture(scope="module")
def real_info(smollm2_model: Path):  # noqa: ANN201
    return read_gguf_info(smollm2_model)


def _env(cache: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, synth.CACHE_ENV: str(cache), **extra}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- presets

@pytest.mark.parametrize("preset", list(PUBLISHED_PARAMS))
def test_preset_rebuilds_published_parameter_count(preset: str) -> None:
    assert presets.n_params(presets.get_preset(preset)) == PUBLISHED_PARAMS[preset]


@pytest.mark.parametrize("preset", list(PUBLISHED_ACTIVE))
def test_moe_preset_rebuilds_published_active_count(preset: str) -> None:
    figure, digits = PUBLISHED_ACTIVE[preset]
    p = presets.get_preset(preset)
    active = presets.n_params_active(p)
    without_input = active - p.n_vocab * p.n_embd
    half_unit = 0.5 * 10.0 ** -digits
    assert without_input / 1e9 - half_unit <= figure <= active / 1e9 + half_unit
    if preset.startswith("gpt-oss"):
        assert round(without_input / 1e9, digits) == figure
    assert active < presets.n_params(p) / 4


def test_dense_preset_is_all_active() -> None:
    p = presets.get_preset("qwen3-8b")
    assert not p.is_moe and presets.n_params_active(p) == presets.n_params(p)


def test_head_dim_is_the_configs_where_given() -> None:
    assert presets.get_preset("qwen3-30b-a3b").head_dim == 128      # 2048 / 32 would be 64
    assert presets.get_preset("mistral-small-24b").head_dim == 128  # 5120 / 32 would be 160
    assert presets.get_preset("llama-3-8b").head_dim == 128         # n_embd / n_head


@pytest.mark.parametrize("drop", ["n_expert", "n_expert_used", "n_ff_expert", "head_dim",
                                  "n_layers"])
def test_moe_preset_missing_a_figure_names_it(drop: str) -> None:
    raw = dict(presets._data()["presets"]["qwen3-30b-a3b"])
    del raw[drop]
    with pytest.raises(BenchkitError) as err:
        presets._make_preset("broken", raw)
    assert err.value.field == f"presets.broken.{drop}"
    assert drop in str(err.value)


@pytest.mark.parametrize("change, field", [
    ({"n_expert_used": 200}, "presets.broken.n_expert_used"),
    ({"n_experts": 8}, "presets.broken.n_experts"),
])
def test_bad_preset_figure_names_the_field(change: dict, field: str) -> None:
    raw = {**presets._data()["presets"]["qwen3-30b-a3b"], **change}
    with pytest.raises(BenchkitError) as err:
        presets._make_preset("broken", raw)
    assert err.value.field == field


@pytest.mark.parametrize("reduce, field", [
    ({"rope_theta": 2}, "reduce.rope_theta"),
    ({"n_layers": 0}, "reduce.n_layers"),
    ({"n_expert_used": 200}, "presets.qwen3-30b-a3b.n_expert_used"),
])
def test_bad_reduction_names_the_field(reduce: dict, field: str) -> None:
    with pytest.raises(BenchkitError) as err:
        presets.reduce_preset(presets.get_preset("qwen3-30b-a3b"), reduce)
    assert err.value.field == field


def test_parse_reduce() -> None:
    assert presets.parse_reduce("n_layers=2, n_expert=8") == {"n_layers": 2, "n_expert": 8}
    with pytest.raises(BenchkitError) as err:
        presets.parse_reduce("n_layers=two")
    assert err.value.field == "reduce"


def test_every_preset_is_listed_and_has_a_source() -> None:
    assert set(presets.preset_names()) == set(PUBLISHED_PARAMS)
    for row in standins.preset_table():
        assert row["source"].startswith("https://huggingface.co/")
        assert row["n_embd"] % row["n_head"] == 0


def test_unknown_preset_names_the_closest() -> None:
    with pytest.raises(BenchkitError) as err:
        presets.get_preset("tinyllama")
    assert "tinyllama-1.1b" in str(err.value)


def test_synthetic_vocab_is_unique_and_full_size() -> None:
    tokens, scores, types = vocab.synthetic_vocab(32000)
    assert len(tokens) == len(set(tokens)) == len(scores) == len(types) == 32000
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert tokens[3] == "<0x00>" and tokens[258] == "<0xFF>"


# --------------------------------------------------------------------------- the file

def test_smollm2_standin_matches_real_file_tensor_for_tensor(q4_1: Path, smollm2_model: Path,
                                                             q4_1_info, real_info) -> None:
    real = {name: (shape, ttype) for name, shape, ttype in real_info.tensors}
    fake = {name: (shape, ttype) for name, shape, ttype in q4_1_info.tensors}
    assert len(real) == 272
    assert fake == real
    assert fake["token_embd.weight"] == ((576, 49152), "Q8_0")
    assert standins.tensor_signature(q4_1_info.tensors) == standins.tensor_signature(real_info.tensors)
    assert standins.model_buffer_mib(q4_1) == pytest.approx(standins.model_buffer_mib(smollm2_model))


def test_standin_is_marked_synthetic(q4_1_info, real_info) -> None:
    assert q4_1_info.synthetic is True
    assert q4_1_info.preset == PRESET
    assert q4_1_info.metadata["benchkit.quant"] == "Q4_1"
    assert q4_1_info.file_type == "Q4_1"
    assert real_info.synthetic is False


def test_header_reader_agrees_with_gguf_py(q4_1: Path, smollm2_model: Path, q4_1_info,
                                           real_info) -> None:
    for path, info in ((q4_1, q4_1_info), (smollm2_model, real_info)):
        header = synth.read_header(path)
        assert header.tensors == list(info.tensors)
        assert header.tensor_span == info.tensor_bytes + sum(
            -n % 32 for n in _tensor_sizes(info)[:-1])
        assert header.complete


def _tensor_sizes(info) -> list[int]:  # noqa: ANN001
    """Each tensor's bytes, in file order, as gguf-py computes them."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    sizes = []
    for _, shape, ttype in info.tensors:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[ttype]]
        n = 1
        for d in shape:
            n *= d
        sizes.append(n // block * size)
    return sizes


def test_llama_cpp_loads_it_with_the_computed_buffer_and_decodes(q4_1: Path) -> None:
    """The real engine loads the stand-in, reports the model buffer the file predicts,
    and generates (random but finite logits: the sampler picks real tokens)."""
    from benchkit.engines.llama_cpp.native import LlamaModel as Engine
    from benchkit.engines.llama_cpp.options import LlamaCppOptions as EngineSettings

    with Engine(q4_1, EngineSettings(n_gpu_layers=0, n_threads=1)) as eng:
        mapped = [b["mib"] for b in eng.placement.buffers
                  if b["kind"] == "model" and b["device"].startswith("CPU")]
        assert mapped, eng.placement.buffers
        # llama.cpp may move some tensors to a repacked CPU buffer; the mapped one then
        # covers less, never more, than the file's tensor data.
        assert max(mapped) <= round(standins.model_buffer_mib(q4_1), 2) + 0.01
        tokens = eng.tokenize("Explain quantum computing in simple terms.")
        assert 6 <= len(tokens) <= 30  # a few characters per token, as a real vocabulary
        timing = eng.chat("Explain quantum computing in simple terms.", 4)
        assert timing.n_generated == 4
        assert eng.time_tg(4) > 0


LOAD_WITHOUT_REPACK = """
import sys, llama_cpp
llama_cpp.llama_backend_init()
params = llama_cpp.llama_model_default_params()
params.n_gpu_layers = 0
params.use_extra_bufts = False   # no CPU repacking: one mapped buffer, as on Metal
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), params)
sys.exit(0 if model else 1)
"""


def test_model_buffer_is_what_llama_cpp_reports(q4_1: Path, smollm2_model: Path) -> None:
    """llama.cpp's own log line "CPU_Mapped model buffer size = X MiB" (whole model in one
    buffer) equals the figure benchkit computes from the file, for the real model and the
    stand-in alike: the figure a suite's `model_buffer_mib` is checked against."""
    figures = []
    for path in (smollm2_model, q4_1):
        proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_REPACK, str(path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        logged = re.findall(r"CPU_Mapped model buffer size =\s*([\d.]+) MiB", proc.stderr)
        assert len(logged) == 1, proc.stderr[-2000:]
        assert float(logged[0]) == round(standins.model_buffer_mib(path), 2)
        figures.append(logged[0])
    assert figures[0] == figures[1] == "92.10"


def test_second_call_comes_from_the_cache(q4_1: Path) -> None:
    before = q4_1.stat().st_mtime_ns
    again = synth.synthesize(PRESET, "Q4_1", output=q4_1, progress=False)
    assert again.cached is True
    assert again.path == q4_1
    assert q4_1.stat().st_mtime_ns == before


def test_same_recipe_same_bytes(q4_1: Path, cache: Path) -> None:
    """Seeded values and llama.cpp's deterministic quantizer: a stand-in is reproducible,
    so its sha256 identifies it across machines with the same llama.cpp."""
    again = synth.synthesize(PRESET, "Q4_1", output=cache / "again.gguf", progress=False).path
    assert _sha(again) == _sha(q4_1)


def test_other_values_same_layout(q4_1: Path, cache: Path) -> None:
    """Another seed, or the zero fill: other bytes, the same tensors, shapes and types."""
    seed7 = synth.synthesize(PRESET, "Q4_1", seed=7, output=cache / "seed7.gguf",
                             progress=False).path
    zeros = synth.synthesize(PRESET, "Q4_1", fill="zeros", output=cache / "zeros.gguf",
                             progress=False).path
    assert synth.read_header(zeros).metadata["benchkit.fill"] == "zeros"
    assert len({_sha(q4_1), _sha(seed7), _sha(zeros)}) == 3
    signature = standins.tensor_signature(synth.read_header(q4_1).tensors)
    for path in (seed7, zeros):
        assert standins.tensor_signature(synth.read_header(path).tensors) == signature


def test_token_embedding_override_reaches_the_quantizer(cache: Path) -> None:
    path = synth.synthesize(PRESET, "Q4_0", token_embedding_type="F16",
                            output=cache / "embd.gguf", progress=False).path
    types = {name: ttype for name, _, ttype in synth.read_header(path).tensors}
    assert types["token_embd.weight"] == "F16"
    assert types["blk.0.attn_q.weight"] == "Q4_0"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- standin_path

def test_standin_path_checks_what_the_suite_names(q4_1: Path, cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(synth.CACHE_ENV, str(cache))
    header = synth.read_header(q4_1)
    good = {"preset": PRESET, "quant": "Q4_1",
            "signature": standins.tensor_signature(header.tensors),
            "model_buffer_mib": round(header.tensor_span / 2**20, 2),
            "tensor_types": {"Q4_1": 210, "F32": 61, "Q8_0": 1}}
    path = standins.standin_path(good, suite_file="s.yaml", field="models.0.standin")
    assert synth.read_header(path).metadata["benchkit.preset"] == PRESET

    for key, bad in (("signature", "0123456789abcdef"), ("model_buffer_mib", 636.18),
                     ("tensor_types", {"Q4_1": 211})):
        with pytest.raises(BenchkitError) as err:
            standins.standin_path({**good, key: bad}, suite_file="s.yaml",
                               field="models.0.standin")
        assert err.value.file == "s.yaml"
        assert err.value.field == f"models.0.standin.{key}"


@pytest.mark.parametrize("standin, field", [
    ({"preset": "smollm2"}, "models.0.standin.quant"),
    ({"preset": "smollm", "quant": "Q4_1"}, "models.0.standin.preset"),
    ({"preset": PRESET, "quant": "Q4_9"}, "models.0.standin.quant"),
    ({"preset": PRESET, "quant": "Q4_1", "colour": 1}, "models.0.standin.colour"),
])
def test_standin_path_bad_input_names_the_field(standin: dict, field: str) -> None:
    with pytest.raises(BenchkitError) as err:
        standins.standin_path(standin, suite_file="s.yaml", field="models.0.standin")
    assert (err.value.file, err.value.field) == ("s.yaml", field)


SUITE = """\
name: standin-test
models:
  - hf: HuggingFaceTB/not-downloaded-here/SmolLM2-135M-Instruct.Q4_1.gguf
    standin: {{preset: {preset}, quant: Q4_1}}
engine:
  n_gpu_layers: 0
workloads:
  - tg: 4
warmup: 0
iterations: 2
"""


def test_run_synthetic_offline_measures_the_standin(tmp_path: Path, q4_1: Path) -> None:
    """`benchkit run SUITE --synthetic` offline: the hub model is replaced by its stand-in
    and the result says so; without --synthetic it fails at once and offers both ways."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{PRESET}.Q4_1.synthetic.gguf").write_bytes(q4_1.read_bytes())
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(preset=PRESET), encoding="utf-8")
    env = _env(cache, HF_HUB_OFFLINE="1")

    proc = subprocess.run([*benchkit_cmd(), "run", str(suite), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    line = _one_error_line(proc)
    assert "--synthetic" in line and "pull" in line

    proc = subprocess.run([*benchkit_cmd(), "run", str(suite), "--synthetic", "-o",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text(encoding="utf-8"))
    case = doc["cases"][0]
    assert case["status"] == "ok"
    assert case["model"]["synthetic"] is True
    assert case["summary"]["n"] == 2


# --------------------------------------------------------------------------- bad input

def test_cli_unknown_preset(tmp_path: Path) -> None:
    proc = subprocess.run([*benchkit_cmd(), "models", "synth", "llama-3-7b", "--quant", "Q4_0"],
                          capture_output=True, text=True, env=_env(tmp_path))
    line = _one_error_line(proc)
    assert "unknown preset 'llama-3-7b'" in line and "llama-3-8b" in line
    assert _leftovers(tmp_path) == []


def test_cli_unsupported_quant(tmp_path: Path) -> None:
    proc = subprocess.run([*benchkit_cmd(), "models", "synth", PRESET, "--quant", "IQ2_XXS"],
                          capture_output=True, text=True, env=_env(tmp_path))
    line = _one_error_line(proc)
    assert "unsupported quantization type 'IQ2_XXS'" in line and "Q4_K_M" in line
    assert _leftovers(tmp_path) == []


def test_cli_no_room_is_refused_with_figures(tmp_path: Path) -> None:
    """BENCHKIT_FREE_BYTES stands for a nearly full disk: refused before any data."""
    proc = subprocess.run([*benchkit_cmd(), "models", "synth", PRESET, "--quant", "Q4_1"],
                          capture_output=True, text=True,
                          env=_env(tmp_path, BENCHKIT_FREE_BYTES="150000000"))
    line = _one_error_line(proc)
    assert str(tmp_path) in line
    assert "not enough free space" in line and "MiB free" in line and "--fill zeros" in line
    assert _leftovers(tmp_path) == []


def test_disk_full_on_a_tiny_filesystem_leaves_nothing(tmp_path: Path) -> None:
    """A real 40 MiB tmpfs, with the free-space check told there is room: the write hits
    ENOSPC for real and must still end in one error line and an empty folder."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40M", "tmpfs", str(mnt)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = subprocess.run([*benchkit_cmd(), "models", "synth", PRESET, "--quant", "Q4_1"],
                              capture_output=True, text=True, timeout=300,
                              env=_env(mnt, BENCHKIT_FREE_BYTES=str(10**12)))
        line = _one_error_line(proc)
        assert "no space left" in line
        assert _leftovers(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("stage, sig", [("source-f16.gguf", signal.SIGINT),
                                        ("out.gguf", signal.SIGINT),
                                        ("out.gguf", signal.SIGTERM)])
def test_interrupt_leaves_no_partial_file(tmp_path: Path, stage: str, sig: int) -> None:
    """Ctrl-C (or SIGTERM) while the source is written, or while llama.cpp's quantizer
    runs in its child process: the child is stopped and the temp folder removed.

    The signal is sent to a state, not after a time: benchkit and its quantizer are
    stopped (SIGSTOP) once the stage's file exists, and signalled only if, stopped, they
    are still at that stage (the file there, no output yet, the quantizer alive for its
    stage); then they continue, and the pending signal is the first thing benchkit
    sees. A run that got past the stage before it could be stopped is run again."""
    for _ in range(5):
        proc = subprocess.Popen([*benchkit_cmd(), "models", "synth", PRESET, "--quant",
                                 "IQ4_NL"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env(tmp_path), start_new_session=True,
                                preexec_fn=_default_sigint)
        caught = _stopped_at(proc, tmp_path, stage)
        if caught:
            proc.send_signal(sig)          # pending: delivered when the group continues
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=300)
        if caught:
            break
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
    else:
        pytest.fail(f"five runs got past {stage} before they could be stopped there")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _leftovers(tmp_path) == []
    children = subprocess.run(["pgrep", "-f", f"benchkit.models.synth quantize {tmp_path}"],
                              capture_output=True, text=True).stdout.split()
    assert children == []


def _default_sigint() -> None:
    """SIGINT as a terminal delivers it: a test run started in the background inherits it
    ignored, and Python then keeps ignoring it (as a background job should)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stopped_at(proc: subprocess.Popen[str], folder: Path, stage: str) -> bool:
    """Wait for the stage's file, then stop benchkit's process group: True when, stopped,
    it is still at that stage."""
    import psutil

    while not list(folder.glob(f".*.partial/{stage}")):
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGSTOP)
    at_stage = bool(list(folder.glob(f".*.partial/{stage}")))
    no_output = [p for p in folder.iterdir() if not p.name.endswith(".partial")] == []
    quantizing = stage != "out.gguf" or bool(psutil.Process(proc.pid).children())
    return proc.poll() is None and at_stage and no_output and quantizing


def test_stale_partial_of_a_dead_writer_is_removed(tmp_path: Path, q4_1: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    target = tmp_path / "m.gguf"
    stale = tmp_path / f".m.gguf.{dead}.abc.partial"
    stale.mkdir()
    (stale / "source-f16.gguf").write_bytes(b"GGUF")
    synth.synthesize(PRESET, "Q4_0", output=target, progress=False)
    assert _leftovers(tmp_path) == ["m.gguf"]


def test_existing_foreign_output_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "mine.gguf"
    target.write_bytes(b"not a stand-in")
    with pytest.raises(BenchkitError) as err:
        synth.synthesize(PRESET, "Q4_0", output=target, progress=False)
    assert "--force" in str(err.value)
    assert target.read_bytes() == b"not a stand-in"


def test_llama_3_70b_needs_are_stated_before_writing(tmp_path: Path) -> None:
    """70B: llama.cpp's dry run sizes the output from the header alone, so a laptop
    without 170 GiB free is told the figures at once, and what `--fill zeros` needs."""
    with pytest.raises(BenchkitError) as err:
        synth.synthesize("llama-3-70b", "Q4_K_M", output=tmp_path / "70b.gguf",
                         free_bytes=100 * 2**30, progress=False)
    msg = str(err.value)
    assert "131.42 GiB for the F16 source" in msg and "--fill zeros" in msg
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- reduced stand-ins

REDUCED_CASES = [("qwen3-30b-a3b", "Q8_0"), ("qwen3-30b-a3b", "Q4_K_M"),
                 ("gpt-oss-20b", "MXFP4"), ("gpt-oss-20b", "Q8_0"), ("qwen3-8b", "Q4_K_M"),
                 ("gemma-3-4b", "Q4_K_M"), ("mistral-small-24b", "Q4_K_M")]


@pytest.fixture(scope="module")
def reduced(cache: Path) -> Callable[[str, str], Path]:
    """The reduced stand-in of a preset in a quantization type, made once per module."""
    made: dict[tuple[str, str], Path] = {}

    def make(preset: str, quant: str) -> Path:
        if (preset, quant) not in made:
            made[preset, quant] = synth.synthesize(preset, quant, reduce=REDUCED[preset],
                                                   threads=1, progress=False).path
        return made[preset, quant]

    old = os.environ.get(synth.CACHE_ENV)
    os.environ[synth.CACHE_ENV] = str(cache)
    yield make
    if old is None:
        os.environ.pop(synth.CACHE_ENV)
    else:
        os.environ[synth.CACHE_ENV] = old


@pytest.mark.parametrize("preset, quant", REDUCED_CASES)
def test_reduced_standin_loads_and_decodes_in_llama_cpp(reduced, preset: str,
                                                        quant: str) -> None:
    """llama.cpp refuses a file with a missing tensor, a wrong shape or a missing
    required key at load; this one loads, decodes a prompt and generates."""
    from benchkit.engines.llama_cpp.native import LlamaModel as Engine
    from benchkit.engines.llama_cpp.options import LlamaCppOptions as EngineSettings

    path = reduced(preset, quant)
    p = presets.reduce_preset(presets.get_preset(preset), REDUCED[preset])
    assert path.name.startswith(f"{preset}.{quant}.reduced-")
    info = read_gguf_info(path)
    assert "reduced" in (info.name or "") and info.metadata["benchkit.reduced"]
    assert info.n_params == presets.n_params(p)
    assert info.n_params_active == presets.n_params_active(p)
    with Engine(path, EngineSettings(n_gpu_layers=0, n_threads=1)) as eng:
        assert eng.time_pp(64) > 0
        assert eng.time_tg(4) > 0


def test_reduced_moe_standin_has_the_published_types(reduced) -> None:
    """MXFP4 (llama.cpp's MOSTLY_MXFP4_MOE, as gpt-oss ships): the experts MXFP4, the
    other matrices Q8_0, the router and every bias F32."""
    info = read_gguf_info(reduced("gpt-oss-20b", "MXFP4"))
    types = {name: ttype for name, _, ttype in info.tensors}
    assert info.file_type == "MXFP4_MOE"
    assert {types[f"blk.0.ffn_{w}_exps.weight"] for w in ("gate", "up", "down")} == {"MXFP4"}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["output.weight"] == "Q8_0"
    assert types["blk.0.ffn_gate_inp.weight"] == "F32"
    assert {t for n, t in types.items() if n.endswith(".bias")} == {"F32"}
    assert info.n_expert == 8 and info.n_expert_used == 2
    experts = sum(b for n, b in _tensor_bytes(info).items() if "_exps." in n)
    assert info.bytes_total - info.bytes_active == experts * 6 // 8


def _tensor_bytes(info) -> dict[str, int]:  # noqa: ANN001
    return {name: size for (name, _, _), size in zip(info.tensors, _tensor_sizes(info))}


def test_reduced_standin_is_named_and_cached_apart(reduced, cache: Path) -> None:
    full = synth.Recipe("qwen3-30b-a3b", "Q8_0")
    path = reduced("qwen3-30b-a3b", "Q8_0")
    assert path.name != full.file_name()
    again = synth.synthesize("qwen3-30b-a3b", "Q8_0", reduce=REDUCED["qwen3-30b-a3b"],
                             progress=False)
    assert again.cached and again.path == path


# Model sizes llama-bench prints for the real files (its `size` column, GiB of tensor data),
# as published in llama-bench tables of llama.cpp users: "qwen3moe 30B.A3B Q4_K - Medium |
# 17.28 GiB | 30.53 B", "gpt-oss 20B MXFP4 MoE | 11.27 GiB | 20.91 B", "qwen3 8B Q4_K -
# Medium | 4.68 GiB | 8.19 B", "llama 8B Q4_K - Medium | 4.58 GiB | 8.03 B", "llama 13B
# Q4_K - Medium | 13.34 GiB | 23.57 B" (Mistral Small 24B: llama.cpp names its type by
# layer count), "llama 70B Q4_K - Medium | 39.59 GiB | 70.55 B", "gemma3 12B Q4_K - Medium |
# 6.79 GiB | 11.77 B".
PUBLISHED_SIZES_GIB = {("qwen3-30b-a3b", "Q4_K_M"): 17.28, ("gpt-oss-20b", "MXFP4"): 11.27,
                       ("qwen3-8b", "Q4_K_M"): 4.68, ("llama-3.1-8b", "Q4_K_M"): 4.58,
                       ("mistral-small-24b", "Q4_K_M"): 13.34,
                       ("llama-3.3-70b", "Q4_K_M"): 39.59, ("gemma-3-12b", "Q4_K_M"): 6.79}


@pytest.mark.parametrize("preset, quant", list(PUBLISHED_SIZES_GIB))
def test_full_standin_is_the_size_of_the_real_file(tmp_path: Path, preset: str,
                                                       quant: str) -> None:
    """llama.cpp's quantizer, run dry on the full-shape source header (no data), gives
    the stand-in's tensor data: the size llama-bench reports for the real model file, so
    the quantizer picked the real file's type for every tensor."""
    p = presets.get_preset(preset)
    recipe = synth.Recipe(preset, quant)
    plan = presets.plan_tensors(p)
    source = tmp_path / "source.gguf"
    synth._write_source_header(source, p, recipe, plan)
    size = synth._dry_run(source, tmp_path / "out.gguf", recipe, presets.check_quant(quant),
                          2, len(plan)) - (1 << 20)      # less _dry_run's 1 MiB margin
    assert round(size / 2**30, 2) == PUBLISHED_SIZES_GIB[preset, quant]


# --------------------------------------------------------------------------- routing spread

def test_routing_spread_counts_every_tokens_choices(reduced) -> None:
    """The eval callback sees each layer's ffn_moe_topk: every token picks k experts in
    every layer, the last layer included."""
    path = reduced("qwen3-30b-a3b", "Q8_0")
    spread = routing.routing_spread(path, 96, threads=2)
    assert (spread.n_expert, spread.n_expert_used) == (16, 4)
    assert [r.layer for r in spread.layers] == [0, 1]
    for r in spread.layers:
        assert r.n_tokens == 96 and sum(r.counts) == 96 * 4 and len(r.counts) == 16
        assert r.uniform_share == 0.25
        assert 0.25 <= r.busiest_share <= 1.0 and r.cv >= 0 and r.chance_cv > 0
    assert routing.routing_spread(path, 96, threads=2) == spread      # same seed, same batch


def test_routing_spread_is_the_same_for_gpt_oss(reduced) -> None:
    spread = routing.routing_spread(reduced("gpt-oss-20b", "MXFP4"), 64, threads=2)
    assert [sum(r.counts) for r in spread.layers] == [64 * 2, 64 * 2]


@pytest.mark.parametrize("preset, quant", [("qwen3-30b-a3b", "Q8_0"), ("gpt-oss-20b", "MXFP4")])
def test_moe_standin_routes_about_as_evenly_as_chance(reduced, preset: str, quant: str) -> None:
    """The MoE layouts zero-fill attn_output so that a batch's tokens do not all share one
    hidden-state direction (and so the same experts): every layer's expert load is then
    within twice the spread of independent uniform picks, and no expert sits idle. With
    every matrix random, the later layers route nearly the whole batch to a few experts."""
    spread = routing.routing_spread(reduced(preset, quant), 256, threads=2)
    for r in spread.layers:
        assert r.cv < 2 * r.chance_cv, r
        assert r.idle == 0 and r.busiest_share < 2 * r.uniform_share, r


def test_routing_spread_refuses_a_dense_model(q4_1: Path) -> None:
    with pytest.raises(BenchkitError, match="not a mixture of experts"):
        routing.routing_spread(q4_1, 16)


def test_layer_routing_figures() -> None:
    even = routing.LayerRouting(0, 8, (4, 4, 4, 4), 2)
    assert even.cv == 0 and even.busiest_share == 0.5 == even.uniform_share * 1
    skewed = routing.LayerRouting(0, 8, (8, 8, 0, 0), 2)
    assert skewed.busiest_share == 1.0 and skewed.cv == 1.0 and skewed.idle == 2
    assert even.chance_cv == pytest.approx(math.sqrt(0.5 / (8 * 0.5)))


def test_source_folder_of_its_own_is_used_and_emptied(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """BENCHKIT_SYNTH_WORK puts the F16 source elsewhere (e.g. /dev/shm, when the
    output's disk cannot hold both); nothing stays behind in either folder."""
    seen: list[Path] = []
    real = synth._write_source_header

    def spy(path: Path, *args: Any, **kwargs: Any) -> list[int]:
        seen.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(synth, "_write_source_header", spy)
    monkeypatch.setenv(synth.WORK_ENV, str(tmp_path / "src"))
    out = tmp_path / "out" / "standin.gguf"
    result = synth.synthesize("qwen3-30b-a3b", "Q8_0", output=out, threads=1, progress=False,
                              reduce=REDUCED["qwen3-30b-a3b"])
    assert result.path == out and out.is_file()
    assert seen and seen[0].parent.parent == tmp_path / "src"
    assert _leftovers(tmp_path / "src") == [] and _leftovers(tmp_path / "out") == [out.name]

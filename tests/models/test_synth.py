"""Synthetic stand-ins (benchkit.models.synth): shape-exact against the real SmolLM2 file, loadable
by llama.cpp, cached, and refused cleanly on bad input without leaving a partial file.

Every stand-in here is made by the real pipeline (gguf-py writer, llama.cpp quantizer)
from the small smollm2-135m preset: a few seconds each on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchkit.models import synth
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
    assert synth.n_params(synth.get_preset(preset)) == PUBLISHED_PARAMS[preset]


def test_every_preset_is_listed_and_has_a_source() -> None:
    assert set(synth.preset_names()) == set(PUBLISHED_PARAMS)
    for row in synth.preset_table():
        assert row["source"].startswith("https://huggingface.co/")
        assert row["n_embd"] % row["n_head"] == 0


def test_unknown_preset_names_the_closest() -> None:
    with pytest.raises(BenchkitError) as err:
        synth.get_preset("tinyllama")
    assert "tinyllama-1.1b" in str(err.value)


def test_synthetic_vocab_is_unique_and_full_size() -> None:
    tokens, scores, types = synth.synthetic_vocab(32000)
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
    assert synth.tensor_signature(q4_1_info.tensors) == synth.tensor_signature(real_info.tensors)
    assert synth.model_buffer_mib(q4_1) == pytest.approx(synth.model_buffer_mib(smollm2_model))


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

    with Engine(q4_1, EngineSettings(n_gpu_layers=0, n_threads=2)) as eng:
        mapped = [b["mib"] for b in eng.placement.buffers
                  if b["kind"] == "model" and b["device"].startswith("CPU")]
        assert mapped, eng.placement.buffers
        # llama.cpp may move some tensors to a repacked CPU buffer; the mapped one then
        # covers less, never more, than the file's tensor data.
        assert max(mapped) <= round(synth.model_buffer_mib(q4_1), 2) + 0.01
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
        assert float(logged[0]) == round(synth.model_buffer_mib(path), 2)
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
    signature = synth.tensor_signature(synth.read_header(q4_1).tensors)
    for path in (seed7, zeros):
        assert synth.tensor_signature(synth.read_header(path).tensors) == signature


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
            "signature": synth.tensor_signature(header.tensors),
            "model_buffer_mib": round(header.tensor_span / 2**20, 2),
            "tensor_types": {"Q4_1": 210, "F32": 61, "Q8_0": 1}}
    path = synth.standin_path(good, suite_file="s.yaml", field="models.0.standin")
    assert synth.read_header(path).metadata["benchkit.preset"] == PRESET

    for key, bad in (("signature", "0123456789abcdef"), ("model_buffer_mib", 636.18),
                     ("tensor_types", {"Q4_1": 211})):
        with pytest.raises(BenchkitError) as err:
            synth.standin_path({**good, key: bad}, suite_file="s.yaml",
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
        synth.standin_path(standin, suite_file="s.yaml", field="models.0.standin")
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
    runs in its child process (IQ4_NL: slow enough to be caught at work): the child is
    stopped and the temp folder removed."""
    proc = subprocess.Popen([*benchkit_cmd(), "models", "synth", PRESET, "--quant", "IQ4_NL"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".*.partial/{stage}")):
        assert proc.poll() is None and time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _leftovers(tmp_path) == []
    children = subprocess.run(["pgrep", "-f", f"benchkit.models.synth quantize {tmp_path}"],
                              capture_output=True, text=True).stdout.split()
    assert children == []


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

"""Projection v3: mixture-of-experts shapes, placement (-ngl, --n-cpu-moe) with the host,
flash attention, llama-bench runs as measurements, and `--measured` / no-anchor projections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchkit.models import synth
from benchkit.projection.api import project
from benchkit.projection.bench_runs import folder_measurements, row_config
from benchkit.projection.chips import get_chip
from benchkit.projection.measurements import Measurement
from benchkit.projection.physics import decode_terms, host_decode_seconds
from benchkit.projection.placement import Host, RunConfig, split
from benchkit.projection.priors import load_priors
from benchkit.projection.shapes import GB, shape_from_gguf, shape_from_preset
from paths import REPO

V3 = REPO / "reports" / "nvidia" / "v3"
HOST = Host(cpu_bw_gbs=96, link_gbs=31.5)
GIB = 2 ** 30


def _inspect(name: str) -> tuple[int, float]:
    """(file size in bytes, GiB read per token) from a committed `models inspect` file."""
    text = (V3 / f"inspect-{name}.txt").read_text(encoding="utf-8")
    size = int(re.search(r"size\s+([\d,]+) bytes", text)[1].replace(",", ""))
    active = float(re.search(r"([\d.]+) GiB of [\d.]+ GiB tensor data per token", text)[1])
    return size, active


@pytest.mark.parametrize("preset,quant,name,tolerance", [
    ("gpt-oss-20b", "MXFP4", "gpt-oss-20b", 0.01),     # experts MXFP4, the rest Q8_0
    ("qwen3-30b-a3b", "Q4_K_M", "qwen3-30b-a3b", 0.05),
])
def test_preset_bytes_per_token_match_the_standins_tensor_tables(preset, quant, name, tolerance):
    size, active_gib = _inspect(name)
    shape = shape_from_preset(preset, quant, size)
    assert shape.is_moe
    assert shape.active_bytes / GIB == pytest.approx(active_gib, rel=tolerance)


@pytest.fixture(scope="module")
def small_moe(tmp_path_factory) -> Path:
    """A reduced gpt-oss stand-in (2 layers, 8 experts, 2 per token), quantized by llama.cpp."""
    out = tmp_path_factory.mktemp("moe") / "gpt-oss-small.MXFP4.gguf"
    reduce = {"n_layers": 2, "n_embd": 256, "n_head": 4, "n_head_kv": 2, "head_dim": 64,
              "n_vocab": 2048, "n_expert": 8, "n_expert_used": 2, "n_ff_expert": 256}
    return synth.synthesize("gpt-oss-20b", "MXFP4", output=out, progress=False,
                            reduce=reduce).path


def test_gguf_shape_reads_experts_from_the_tensor_table(small_moe):
    from benchkit.models.gguf import read_gguf_info

    info = read_gguf_info(small_moe)
    shape = shape_from_gguf(str(small_moe))
    assert (shape.n_expert, shape.n_expert_used) == (8, 2)
    header = info.size_bytes - info.tensor_bytes      # counted with the dense part
    assert shape.active_bytes - header == pytest.approx(info.bytes_active, rel=1e-6)
    assert shape.active_params == pytest.approx(info.n_params_active, rel=1e-6)
    assert shape.layer_tensors == sum(1 for t in info.tensors if t[0].startswith("blk.0."))


def test_split_puts_the_bytes_where_llama_cpp_does():
    shape = shape_from_preset("qwen3-30b-a3b", "Q4_K_M")
    full = split(shape, RunConfig())
    assert full.all_on_gpu and full.cpu_decode_bytes == 0
    experts = split(shape, RunConfig(n_cpu_moe=shape.n_layers))
    # every routed expert in RAM: a token reads k/n of them from there, the rest on the GPU
    assert experts.cpu_weight_bytes == pytest.approx(shape.expert_bytes, rel=1e-9)
    assert experts.cpu_decode_bytes == pytest.approx(shape.expert_bytes * 8 / 128, rel=1e-9)
    cpu = split(shape, RunConfig(n_gpu_layers=0))
    assert cpu.gpu_layers == 0 and not cpu.output_on_gpu and cpu.gpu_decode_bytes < 0.01 * GB
    halves = [split(shape, RunConfig(n_cpu_moe=k)).cpu_weight_bytes for k in (12, 24, 36)]
    assert halves == sorted(halves) and halves[1] == pytest.approx(2 * halves[0])


def test_experts_in_ram_cost_host_time_and_flash_attention_saves_gpu_time():
    priors = load_priors()
    chip = get_chip("rtx4090")
    shape = shape_from_preset("qwen3-30b-a3b", "Q4_K_M")
    times = [host_decode_seconds(shape, RunConfig(n_cpu_moe=k), HOST, priors)
             for k in (0, 8, 24, 48)]
    assert times[0] == 0 and times == sorted(times)
    on = sum(decode_terms(chip, shape, None, priors, config=RunConfig(flash_attn=True)))
    off = sum(decode_terms(chip, shape, None, priors, config=RunConfig(flash_attn=False)))
    assert off > on


def test_moe_projected_from_a_dense_anchor_reads_its_active_bytes_not_its_file():
    """gpt-oss-20b from a LLaMA-2 7B figure on the same chip: as a dense 12 GB file it would
    be about three times slower than the 7B; with 3.2 GB read per token it is not."""
    seven = shape_from_preset("llama-2-7b", "Q4_0")
    anchor = Measurement(chip_id="rtx4090", tg_tps=186.0, model_bytes=seven.model_bytes,
                         n_layers=seven.n_layers, n_params=seven.n_params, quant="Q4_0",
                         shape=seven)
    oss = shape_from_preset("gpt-oss-20b", "MXFP4")
    moe = project([anchor], chips=["rtx4090"], shape=oss)[0]["tg_tps"]
    dense = project([anchor], method="bandwidth", chips=["rtx4090"],
                    model_bytes=oss.model_bytes)[0]["tg_tps"]
    assert moe > 2 * dense
    assert 0.5 * 186 < moe < 1.5 * 186


def test_h100_runs_read_with_their_settings_and_host():
    ms = folder_measurements(V3)
    assert {m.chip_id for m in ms} == {"h100"}
    ncmoe = sorted(m.config.n_cpu_moe for m in ms if m.model_key.startswith("qwen3-30b")
                   and m.config.n_cpu_moe)
    assert ncmoe == [8, 16, 24, 48]
    partial = [m for m in ms if m.config.partial]
    assert partial and all(m.host is not None for m in partial)
    assert {m.config.flash_attn for m in ms if not m.config.partial} == {True, False}
    assert row_config({"n_gpu_layers": 99, "flash_attn": -1}) == RunConfig()
    assert row_config({"n_gpu_layers": 16, "flash_attn": 0, "n_cpu_moe": 0}) == \
        RunConfig(flash_attn=False, n_gpu_layers=16)


def test_partial_offload_projection_between_measured_bounds():
    """Qwen3-30B-A3B with the experts of 24 layers in RAM, projected from the same H100
    run's fully offloaded figure: slower than all on the GPU, faster than all experts in RAM
    (both measured), with the run's host."""
    ms = folder_measurements(V3)
    full = next(m for m in ms if m.model_key.startswith("qwen3-30b") and not m.config.partial
                and m.config.flash_attn)
    got = project([full], chips=["h100"], config=RunConfig(flash_attn=True, n_cpu_moe=24),
                  host=full.host or next(m.host for m in ms if m.host))[0]
    low = next(m.tg_tps for m in ms if m.model_key.startswith("qwen3-30b")
               and m.config.n_cpu_moe == 48)
    assert low < got["tg_tps"] < full.tg_tps
    assert got["tg_low"] < got["tg_tps"] < got["tg_high"]

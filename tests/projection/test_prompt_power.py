"""Projection v2 (issue 12), prompt processing on NVIDIA: the board-power field of the chip
database, the power-limited clock it sets, the dequantize + F16 GEMM path of older llama.cpp
builds, the committed results the fit reads, and the context-depth checks.

Inputs are real: the chip database, the published rows of benchkit/data/published.yaml, the
committed result files; held-out checks refit the parameters through
benchkit.projection.fit without the chip they project, as the docs' figures are made.
"""

from __future__ import annotations

from paths import REPO

import copy
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from benchkit import load_results
from benchkit.projection.chips import get_chip, load_chip_spec, load_chips
from benchkit.core.errors import BenchkitError
from benchkit.projection.api import project
from benchkit.projection.fit import depth_attention_sigma, depth_pairs, fit_all, mape
from benchkit.projection.measurements import Measurement, measurements_from_frame
from benchkit.projection.physics import attention_share, prompt_seconds, sustained_clock_share
from benchkit.projection.priors import PROMPT_UNITS, load_priors, parse_priors, with_backend
from benchkit.projection.published import (all_measurements, committed_measurements,
                                           series_measurements, skipped)
from benchkit.projection.shapes import shape_from_preset
from benchkit.projection.validation import validate

V2 = REPO / "results/nvidia-h200-v2"
SPEC = ("id: my-ada\nname: My Ada card\nbackend: cuda\nmemory_type: GDDR6\ngpu_cores: 142\n"
        "gpu_clock_mhz: 2505\nbandwidth_gbs: 960\nmemory_gb: 48\nfp32_tflops: 91.06\n"
        "matrix_tflops: 364.2\nint8_matrix_tops: 728.5\n")


def cuda_share(chip) -> float:
    priors = load_priors()
    return sustained_clock_share(chip, priors.backend(chip.backend), priors)


# ----------------------------------------------------------------------------- the chip field

@pytest.mark.parametrize("chip_id,watts,source", [
    ("rtx4090", 450, "Total Graphics Power"), ("rtx3090", 350, "Total Graphics Power"),
    ("rtx6000ada", 300, "max power consumption"), ("rtxa6000", 300, "max power consumption"),
    ("l40s", 350, "thermal design power"), ("h100-pcie", 350, "300-350 W"),
    ("a100", 400, "thermal design power"), ("rx7900xtx", 355, "Typical Board Power"),
    ("arc-b580", 190, "Total Board Power")])
def test_board_power_figures_and_their_sources(chip_id, watts, source):
    chip = get_chip(chip_id)
    assert chip.board_power_w == watts and source in chip.source("board_power_w")


def test_every_nvidia_gpu_but_gb10_has_a_board_power_figure():
    """GB10's datasheet gives the system's power, not the chip's: no figure is entered."""
    chips = load_chips()
    missing = sorted(c.id for c in chips.values() if c.vendor == "nvidia" and not c.board_power_w)
    assert missing == ["gb10"]
    assert all(c.board_power_w is None for c in chips.values() if c.vendor in ("apple", "cpu"))


def test_chip_spec_with_and_without_board_power(tmp_path):
    """A spec copying the RTX 6000 Ada projects its prompt rate like the listed chip only
    when it gives the board power; without it the boost clock is assumed to hold."""
    bare, powered = tmp_path / "bare.yaml", tmp_path / "powered.yaml"
    bare.write_text(SPEC, encoding="utf-8")
    powered.write_text(SPEC.replace("id: my-ada", "id: my-ada-300w") + "board_power_w: 300\n",
                       encoding="utf-8")
    without, with_power = load_chip_spec(bare), load_chip_spec(powered)
    assert without.board_power_w is None and with_power.board_power_w == 300.0
    assert cuda_share(without) == 1.0 and cuda_share(with_power) == pytest.approx(
        cuda_share(get_chip("rtx6000ada")))
    size = 4.58 * 2 ** 30
    anchor = Measurement(
        "rtx4090", 127.74, 6898.71, size, 32, 8030261248, model_key="8b", quant="Q4_K_M",
        shape=shape_from_preset("llama-3-8b", "Q4_K_M", size))
    listed, bare_row, powered_row = project([anchor], chips=[get_chip("rtx6000ada"), without,
                                                             with_power])
    assert powered_row["pp_tps"] == pytest.approx(listed["pp_tps"])
    assert bare_row["pp_tps"] > 1.2 * listed["pp_tps"]
    assert bare_row["tg_tps"] == pytest.approx(listed["tg_tps"])   # decode is not limited


@pytest.mark.parametrize("value", ["-5", "0", "lots", "true"])
def test_a_bad_board_power_names_the_file_and_the_field(tmp_path, value):
    spec = tmp_path / "gpu.yaml"
    spec.write_text(SPEC + f"board_power_w: {value}\n", encoding="utf-8")
    with pytest.raises(BenchkitError) as exc:
        load_chip_spec(spec)
    assert exc.value.file == str(spec) and exc.value.field == "board_power_w"
    database = tmp_path / "chips.yaml"
    database.write_text("chips:\n  - {id: x1, name: X, vendor: nvidia, family: x, backend: cuda,\n"
                        "     gpu_cores: 8, bandwidth_gbs: 300, memory_gb: [8], multi_die: false,\n"
                        f"     board_power_w: {value}, sources: {{all: somewhere}}}}\n",
                        encoding="utf-8")
    with pytest.raises(BenchkitError) as exc:
        load_chips(database)
    assert exc.value.file == str(database) and exc.value.field == "chips[0] (x1).board_power_w"


# ----------------------------------------------------------------------------- the power law

def test_the_power_limited_clock_follows_the_power_law():
    priors = load_priors()
    b = priors.backend("cuda")
    chip = get_chip("rtx6000ada")
    need = b.prompt_power * chip.gpu_cores * (chip.gpu_clock_mhz / 1000) ** b.prompt_power_exponent
    assert need > chip.board_power_w
    assert cuda_share(chip) == pytest.approx(
        (chip.board_power_w / need) ** (1 / b.prompt_power_exponent))
    # More power, a higher clock, up to boost; no figure or no constant: boost.
    assert cuda_share(chip) < cuda_share(replace(chip, board_power_w=400)) < 1.0
    assert cuda_share(replace(chip, board_power_w=1000)) == 1.0
    assert cuda_share(replace(chip, board_power_w=None)) == 1.0
    assert cuda_share(get_chip("rx7900xtx")) == 1.0   # hip: no measurement, no constant


def test_low_power_cards_for_their_cores_and_clock_lose_clock_the_others_keep_it():
    """Workstation and data-center Ada cards run 2.5 GHz silicon at 130-350 W; GeForce cards
    and the slower-clocked Ampere and Hopper parts have room."""
    for chip_id in ("rtx4080", "rtx3090", "rtxa6000", "a40", "a100", "a100-pcie", "h100",
                    "h100-pcie", "h200"):
        assert cuda_share(get_chip(chip_id)) == 1.0, chip_id
    limited = {c: cuda_share(get_chip(c)) for c in ("rtx6000ada", "l40s", "rtx5000ada", "l4")}
    assert all(share < 0.85 for share in limited.values()), limited
    assert cuda_share(get_chip("rtx6000ada")) < cuda_share(get_chip("rtx4090"))


def test_held_out_the_power_law_brings_the_rtx_6000_ada_prompt_rate_closer():
    """The RTX 6000 Ada (300 W, 142 SMs at 2.5 GHz) held out of the fit and projected from
    every other NVIDIA GPU's LLaMA 3 figures: refitted with the power law, the prompt error
    is less than half of the refit without it (prompt_power 0)."""
    base = load_priors()
    off = with_backend(base, "cuda", replace(base.backend("cuda"), prompt_power=0.0))
    every = all_measurements()
    train = [m for m in every if m.chip_id != "rtx6000ada"]
    errors = []
    for start in (base, off):
        priors, _ = fit_all(train, start)
        pairs = []
        for key in ("llama3-8b-gpus:Q4_K_M", "llama3-8b-gpus:F16", "llama3-70b-gpus:Q4_K_M"):
            series = [m for m in every if m.model_key == key]
            pairs += validate(series, priors=priors, targets={"rtx6000ada"}, anchors=[
                m.chip_id for m in series if m.chip_id != "rtx6000ada"
                and get_chip(m.chip_id).vendor == "nvidia"])["pairs"]
        scored = [abs(p["roofline"]["pp_error"]) for p in pairs
                  if p["roofline"]["pp_error"] is not None]   # screened anchors have none
        errors.append(sum(scored) / len(scored))
    with_law, without = errors
    assert len(scored) >= 28 and with_law < 0.5 * without, errors


# ----------------------------------------------------------------------------- build era

def test_published_prompt_units_are_known_units_with_a_reason():
    doc = yaml.safe_load((REPO / "benchkit/data/published.yaml").read_text(encoding="utf-8"))
    named = [s for s in doc["series"] if s.get("prompt_units")]
    assert {s["id"] for s in named} == {"llama3-8b-gpus", "llama3-70b-gpus"}
    for series in named:
        for backend, entry in series["prompt_units"].items():
            assert backend in ("cuda", "hip", "metal", "sycl", "vulkan", "cpu")
            assert len(entry["reason"]) > 80
            assert all(v in PROMPT_UNITS for k, v in entry.items() if k != "reason")
    ms = {m.chip_id: m for m in series_measurements(named[0]) if m.quant == "Q4_K_M"}
    assert ms["rtx4090"].units_on("cuda") == {"quant": "dequant-f16"}
    assert ms["m3max"].units_on("metal") is None


def test_the_dequantize_path_runs_the_f16_gemm_and_moves_an_f16_copy():
    """On the dequant-f16 path a quantized model's GEMM is the F16 one (same units, same
    efficiency) and each ubatch writes and reads an F16 copy of the weights: halving the
    bandwidth costs it 4 bytes a weight more than the INT8 (MMQ) path."""
    priors = load_priors()
    chip = get_chip("rtx4090")
    shape = shape_from_preset("llama-3-8b", "Q4_K_M")
    slow = replace(chip, bandwidth_gbs=chip.bandwidth_gbs / 2)
    units = {"quant": "dequant-f16"}
    extra = {}
    for name, u in (("mmq", None), ("dequant", units)):
        extra[name] = prompt_seconds(slow, shape, priors, units=u) - prompt_seconds(
            chip, shape, priors, units=u)
    eta = priors.backend("cuda").efficiency["gddr"]
    copy_s = 4 * shape.matmul_params / 512 / (eta * chip.bandwidth_gbs * 1e9)
    assert extra["dequant"] - extra["mmq"] == pytest.approx(copy_s, rel=1e-6)
    f16 = replace(shape, quant="F16")
    gemm = prompt_seconds(chip, shape, priors, units=units) - prompt_seconds(chip, f16, priors)
    assert 0 < gemm   # the same GEMM, plus the unpacking and the copy


def test_priors_reject_bad_units_and_power_constants():
    doc = yaml.safe_load((REPO / "benchkit/data/projection.yaml").read_text(encoding="utf-8"))
    for key, value, field in (("prompt_units", {"f16": "matrix", "quant": "fp8"},
                               "backends.cuda.prompt_units.quant"),
                              ("prompt_power", -1, "backends.cuda.prompt_power"),
                              ("prompt_power_exponent", 0, "backends.cuda.prompt_power_exponent"),
                              ("prompt_attention", "fast", "backends.cuda.prompt_attention")):
        bad = copy.deepcopy(doc)
        bad["backends"]["cuda"][key] = value
        with pytest.raises(BenchkitError) as exc:
            parse_priors(bad, "projection.yaml")
        assert exc.value.field == field and exc.value.file == "projection.yaml"
    good = copy.deepcopy(doc)
    good["backends"]["cuda"]["prompt_units"]["quant"] = "dequant-f16"
    assert parse_priors(good).backend("cuda").prompt_units["quant"] == "dequant-f16"


# ----------------------------------------------------------------------------- committed results

def test_only_kernel_throughput_runs_of_the_h200_v2_folder_count():
    why = {p.name.split("-", 1)[1].rsplit("-", 1)[0]: skipped(p) for p in V2.glob("*.json")}
    assert why["depth-gpu"] is None and why["engines-tinyllama-gpu"] is None
    for name in ("serve-tinyllama-gpu", "quality-gpu", "telemetry-gpu", "warmup-auto-gpu",
                 "import-llama-bench-h200-tinyllama-q4km"):
        assert why[name], name
    ms = committed_measurements()
    deep = {(m.model_name, m.model_key.partition(":")[2] or "llama-cpp-python", m.depth)
            for m in ms if m.chip_id == "h200" and "depth-gpu" in m.source}
    assert deep == {(model, engine, depth)
                    for model in ("tinyllama-1.1b.Q4_K_M.synthetic.gguf",
                                  "llama-2-7b.Q4_0.synthetic.gguf")
                    for engine in ("llama-cpp-python", "llama-bench")
                    for depth in (0, 1024, 4096, 16384)}
    assert not any(skipped(Path(m.source)) for m in ms)


def test_server_figures_do_not_calibrate_a_projection():
    """The engines run timed TinyLlama on four engines of one H200: only the in-process and
    llama-bench figures are measurements of the kernels, each its own (never a mix)."""
    path = next(V2.glob("*-engines-tinyllama-gpu-*.json"))
    ms = measurements_from_frame(load_results([path]))
    figures = sorted((round(m.tg_tps, 1), round(m.pp_tps)) for m in ms)
    assert figures == [(832.8, 36757), (854.2, 38920)]
    # A run of a server alone still gives a measurement (of the server).
    serve_run = next(V2.glob("*-serve-tinyllama-gpu-*.json"))
    serve = measurements_from_frame(load_results([serve_run]))
    assert [round(m.tg_tps, 1) for m in serve] == [715.3]


def test_depth_cases_projected_from_depth_0_held_out():
    """Each H200 depth case projected from depth 0 with that model's deeper cases out of the
    fit: decode within 10% on average and closer than the depth-0 figure; prompt closer too."""
    pairs = depth_pairs(all_measurements(), load_priors())
    same = [p for p in pairs if p["anchor"] == p["chip"] == "h200"]
    across = [p for p in pairs if p["anchor"] == "h100"]
    assert len(same) == 12 and len(across) == 6
    for kind in ("tg", "pp"):
        roofline, flat = (mape(same, m, kind) for m in ("roofline", "bandwidth"))
        assert roofline < flat, (kind, roofline, flat)
    assert mape(same, "roofline", "tg") < 10 and mape(across, "roofline", "tg") < 10


def test_depth_prompt_ranges_widen_with_the_attention_share():
    """At a depth the anchors did not run, the prompt range widens by the share of the time
    that attention adds (the term the depth checks find least certain); at the anchors'
    depth it is as before. The sigma is what the validation script computes from the
    held-out depth pairs, and with it the ranges hold at least 9 in 10 of them (in-sample
    for the width, as the docs say)."""
    priors = load_priors()
    pairs = depth_pairs(all_measurements(), priors)
    sigma = priors.depth_attention_sigma["cuda"]
    assert sigma == pytest.approx(depth_attention_sigma(pairs, priors.interval), abs=0.001)
    inside = [p["roofline"]["pp_low"] <= p["measured_pp"] <= p["roofline"]["pp_high"]
              for p in pairs]
    assert len(inside) == 18 and sum(inside) >= 0.9 * len(inside)

    shape = shape_from_preset("llama-2-7b", "Q4_0")
    anchor = Measurement("h200", 352.0, 12326.0, shape.model_bytes, 32, shape.n_params,
                         model_key="llama-2-7b:Q4_0", quant="Q4_0", shape=shape)
    flat = replace(priors, depth_attention_sigma={"default": 0.0})
    half = {}
    for depth in (0, 16384):
        for name, pri in (("widened", priors), ("flat", flat)):
            row = project([anchor], chips=["h200"], depth=depth, priors=pri)[0]
            half[name, depth] = math.log(row["pp_high"] / row["pp_tps"])
    assert half["widened", 0] == pytest.approx(half["flat", 0])
    share = attention_share(get_chip("h200"), shape, priors, 16384)
    assert 0.3 < share < 0.8
    extra = (half["widened", 16384] / priors.z) ** 2 - (half["flat", 16384] / priors.z) ** 2
    assert extra == pytest.approx((share * sigma) ** 2, rel=1e-6)

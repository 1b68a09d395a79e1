"""Which prompt kernels a quantized model runs on a chip (benchkit/projection/physics.py
prompt_gemm; the chip field int8_unit): chips without matrix units run
llama.cpp's quantized matrix kernels on 4-way int8 dot products (dp4a, v_dot4) on their
vector lanes, a path of its own; checked on the shipped chip database and the HIP tables
of benchkit/data/published.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.projection.chips import load_chip_spec, load_chips
from benchkit.projection.fit import held_out
from benchkit.projection.physics import prompt_gemm, prompt_seconds, prompt_unit_tflops
from benchkit.projection.priors import load_priors
from benchkit.projection.published import all_measurements, published, series_measurements

SPEC = ("id: my-rdna2\nname: My RDNA 2 card\nbackend: hip\nmemory_type: GDDR6\ngpu_cores: 60\n"
        "gpu_clock_mhz: 2105\nbandwidth_gbs: 512\nmemory_gb: 16\nfp32_tflops: 16.17\n"
        "matrix_tflops: 32.34\n")


def test_dot_product_chips_are_marked_and_rated_at_four_times_fp32():
    chips = load_chips()
    dot4 = {c.id for c in chips.values() if c.int8_unit == "dot4"}
    assert {"rx6800", "rx6800xt", "v620", "mi50", "mi60", "p40", "gtx1080ti"} <= dot4
    for chip_id in dot4:
        chip = chips[chip_id]
        assert chip.int8_matrix_tops == pytest.approx(4 * chip.fp32_tflops, rel=0.01), chip_id
    # matrix units: WMMA, MFMA, tensor cores, XMX
    for chip_id in ("rx7900xtx", "r9700", "rx9060xt", "mi100", "mi300x", "rtx3090", "arc-a770"):
        assert chips[chip_id].int8_unit == "matrix", chip_id
    # RDNA 1 (Navi 10) has no 4-way dot product: no INT8 figure
    assert chips["rx5700xt"].int8_matrix_tops is None


def test_the_gemm_entry_follows_the_chip_and_the_backend():
    chips, priors = load_chips(), load_priors()
    hip, cuda = priors.backend("hip"), priors.backend("cuda")
    assert "dot4" in hip.prompt_efficiency
    assert prompt_gemm(chips["rx6800"], hip, "Q4_0") == "dot4"
    assert prompt_gemm(chips["mi50"], hip, "Q4_K_M") == "dot4"
    assert prompt_gemm(chips["rx9060xt"], hip, "Q4_0") == "quant"
    assert prompt_gemm(chips["rx6800"], hip, "F16") == "f16"
    # a backend without the entry keeps its one quantized share (CUDA's Pascal cards)
    assert "dot4" not in cuda.prompt_efficiency
    assert prompt_gemm(chips["p40"], cuda, "Q4_0") == "quant"
    # a build that dequantizes to F16 runs the F16 GEMM whatever the chip
    assert prompt_gemm(chips["rx6800"], hip, "Q4_0", {"quant": "dequant-f16"}) == "f16"


def test_vulkan_on_nvidia_tensor_cores_takes_the_coopmat2_share():
    """llama.cpp's Vulkan backend runs NVIDIA's own cooperative-matrix extension
    (NV_cooperative_matrix2) on cards with tensor cores, the KHR one elsewhere: a share each,
    fitted on 0cc4m's table (RTX 3090 against RX 9070 XT and Radeon 8060S)."""
    chips, vulkan = load_chips(), load_priors().backend("vulkan")
    assert vulkan.prompt_efficiency["coopmat2"] > vulkan.prompt_efficiency["quant"]
    for chip_id in ("rtx3090", "rtx4090", "rtx2080ti", "rtx5090"):
        assert prompt_gemm(chips[chip_id], vulkan, "Q4_0") == "coopmat2", chip_id
    for chip_id in ("rx9070xt", "ryzen-ai-max-395", "arc-b580", "rx5700xt"):
        assert prompt_gemm(chips[chip_id], vulkan, "Q4_0") == "quant", chip_id
    # no tensor cores (Pascal), F16 weights, and CUDA itself keep their own entries
    assert prompt_gemm(chips["p40"], vulkan, "Q4_0") == "quant"
    assert prompt_gemm(chips["rtx3090"], vulkan, "F16") == "f16"
    assert prompt_gemm(chips["rtx3090"], load_priors().backend("cuda"), "Q4_0") == "quant"


def test_vulkan_matrix_shaders_are_held_to_an_sm_rate_that_cuda_blas_is_not():
    """Vulkan's cooperative matrices reach no further per SM and clock than CUDA's MMQ does
    (half its int8 rate in FP16): an H100 SXM's 989 TFLOPS (warpgroup MMA) count as 268 on
    Vulkan, a GeForce or Radeon card keeps its figure, and CUDA's F16 path (cuBLAS) keeps the
    H100's own. Checked on the H100's Vulkan rows of published.yaml: projected from 0cc4m's
    RTX 3090 within 25% with the cap, more than twice too fast without it."""
    chips, priors = load_chips(), load_priors()
    vulkan, cuda = priors.backend("vulkan"), priors.backend("cuda")
    assert vulkan.matrix_ops_per_core_clock == cuda.mmq_ops_per_core_clock / 2
    h100 = chips["h100"]
    capped = prompt_unit_tflops(h100, vulkan, "Q4_0", None, priors)
    assert capped == pytest.approx(132 * 1.98 * 1024 / 1000, rel=0.01)
    assert capped < h100.matrix_tflops / 3
    assert prompt_unit_tflops(h100, cuda, "F16", None, priors) == h100.matrix_tflops
    for chip_id in ("rtx3090", "rtx4090", "rx9070xt", "ryzen-ai-max-395"):
        chip = chips[chip_id]
        assert prompt_unit_tflops(chip, vulkan, "Q4_0", None, priors) == pytest.approx(
            chip.matrix_tflops, rel=0.01), chip_id
    rows = next(s for s in published() if s["id"] == "llama8b-vulkan-0cc4m")["rows"]
    measured = rows["h100"]["Q4_0"][0] / rows["rtx3090"]["Q4_0"][0]
    by_unit = capped / chips["rtx3090"].matrix_tflops
    assert abs(by_unit / measured - 1) < 0.25
    assert h100.matrix_tflops / chips["rtx3090"].matrix_tflops > 2 * measured


def test_hip_matrix_kernels_are_not_capped_per_compute_unit():
    """HIP's MMQ issues the architecture's own WMMA / MFMA instructions: the unit figure is
    the datasheet's, and the per-CU limit shows in the vector term instead."""
    chips, priors = load_chips(), load_priors()
    hip = priors.backend("hip")
    assert not hip.mmq_ops_per_core_clock
    for chip_id in ("mi300x", "r9700", "rx7900xtx"):
        chip = chips[chip_id]
        assert prompt_unit_tflops(chip, hip, "Q4_0", None, priors) == chip.int8_matrix_tops
    assert hip.prompt_vector["quant"] > 0.01


def test_shipped_hip_values_order_the_cards_of_one_table():
    """Pull request #24127's Q3_K_S and Q5_K_S rows (one build, one file each): the RX 9060 XT
    (RDNA 4, 32 CUs) is over three times the RX 6800 (RDNA 2, 60 CUs, dot products); the
    shipped values give the ratio within a quarter, where one share of peak for both
    (the dot products counted as a matrix unit) would give under one."""
    series = next(s for s in published() if s["id"] == "llama8b-mmq-hip-pp512")
    rows = {(m.chip_id, m.quant): m for m in series_measurements(series)}
    chips, priors = load_chips(), load_priors()
    for quant in ("Q3_K_S", "Q5_K_S"):
        rdna2, rdna4 = rows["rx6800", quant], rows["rx9060xt", quant]
        measured = rdna4.pp_tps / rdna2.pp_tps
        assert measured > 3
        seconds = {m.chip_id: prompt_seconds(chips[m.chip_id], m.shape, priors, 0, m.pp_tokens)
                   for m in (rdna2, rdna4)}
        projected = seconds["rx6800"] / seconds["rx9060xt"]
        assert projected == pytest.approx(measured, rel=0.25), quant


def test_hip_check_spans_the_dot_product_and_matrix_paths():
    pairs = held_out(all_measurements(), load_priors(), None, "chip", "hip")
    got = {(p["anchor"], p["chip"]) for p in pairs}
    assert {("rx6800", "rx9060xt"), ("rx9060xt", "rx6800"), ("mi50", "rx9060xt")} <= got


def test_a_spec_may_name_its_int8_unit(tmp_path: Path):
    spec = tmp_path / "rdna2.yaml"
    spec.write_text(SPEC + "int8_matrix_tops: 64.68\nint8_unit: dot4\n", encoding="utf-8")
    chip = load_chip_spec(spec)
    assert chip.int8_unit == "dot4"
    assert prompt_gemm(chip, load_priors().backend("hip"), "Q4_0") == "dot4"


@pytest.mark.parametrize("extra,message", [
    ("int8_matrix_tops: 64.68\nint8_unit: tensor\n", "must be one of matrix, dot4"),
    ("int8_unit: dot4\n", "does not give"),
])
def test_a_bad_int8_unit_names_the_field(tmp_path: Path, extra: str, message: str):
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC + extra, encoding="utf-8")
    with pytest.raises(BenchkitError) as err:
        load_chip_spec(spec)
    assert "int8_unit" in str(err.value) and message in str(err.value)
    assert str(spec) in str(err.value) or spec.name in str(err.value)

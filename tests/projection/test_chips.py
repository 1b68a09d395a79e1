"""The chip database: integrity, the reference page's rows, lookup and identification."""

from __future__ import annotations

from reference_chips import REFERENCE_ROWS

from paths import REPO

import re
from pathlib import Path

import pytest

from benchkit.projection.chips import get_chip, identify, load_chips
from benchkit.core.errors import BenchkitError
from benchkit.models.quants import bits_per_weight, load_quants


# Where the page was written by hand it is checked against its own text when present.
REFERENCE_PAGE = REPO.parent / "shared/reference/inferno-metal-results-v0.10.md"


def test_every_chip_has_the_figures_a_projection_needs():
    chips = load_chips()
    assert len(chips) >= 140
    for chip in chips.values():
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", chip.id), chip.id
        assert chip.bandwidth_gbs > 0 and chip.gpu_cores > 0, chip.id
        assert chip.memory_gb and all(m > 0 for m in chip.memory_gb), chip.id
        assert chip.source("bandwidth_gbs") and chip.source("gpu_cores"), chip.id
        assert chip.vendor in ("apple", "nvidia", "amd", "intel", "cpu")
        assert chip.backend in ("metal", "cuda", "hip", "sycl", "vulkan", "cpu")
        assert chip.memory_class in ("hbm", "gddr", "lpddr", "ddr") and chip.memory_type, chip.id
        if chip.vendor == "apple" and chip.family != "m5":
            # Decode's fixed-cost term and prompt processing scale with compute.
            assert chip.fp32_tflops, chip.id
            # fp32_tflops is cores x 128 ALUs x 2 x clock, to within Apple's own rounding.
            derived = chip.gpu_cores * 256 * chip.gpu_clock_mhz / 1e6
            assert chip.fp32_tflops == pytest.approx(derived, rel=0.03), chip.id
        if chip.vendor not in ("apple", "cpu"):
            assert chip.matrix_tflops and chip.fp32_tflops, chip.id
        if chip.vendor == "cpu":
            # A CPU entry is a memory configuration: bandwidth = channels x 8 bytes x MT/s.
            assert chip.bandwidth_gbs == pytest.approx(chip.memory_channels * 8 * chip.memory_mts / 1000)


def test_variant_ids_carry_their_core_count_and_the_bare_id_is_the_top_part():
    chips = load_chips()
    for chip in chips.values():
        m = re.fullmatch(r"(.+)-(\d+)c", chip.id)
        if not m:
            continue
        top = chips[m.group(1)]
        assert int(m.group(2)) == chip.gpu_cores
        assert top.name == chip.name and top.gpu_cores > chip.gpu_cores, chip.id


def test_apple_generations_and_the_gpus_users_compare_against_are_all_there():
    chips = load_chips()
    for gen in ("m1", "m2", "m3", "m4"):
        for tier in ("", "pro", "max", "ultra"):
            if gen == "m4" and tier == "ultra":
                continue   # there is no M4 Ultra
            assert f"{gen}{tier}" in chips
    for chip_id in ("m5", "m5pro", "m5max", "m5max-32c", "m3max-30c", "m4max-32c", "h100",
                    "h100-pcie", "h200", "a100", "l40s", "rtx3090", "rtx4090", "rtx5090",
                    "mi300x", "rx7900xtx"):
        assert chip_id in chips


@pytest.mark.parametrize("chip_id,bandwidth", [
    ("m3max-30c", 300), ("m3max", 400), ("m3ultra", 819), ("m4max-32c", 410), ("m4max", 546),
    ("m5", 153), ("m5pro", 307), ("m5max-32c", 460), ("m5max", 614), ("h100", 3350),
    ("h200", 4800)])
def test_bandwidths_given_in_the_issue(chip_id, bandwidth):
    assert get_chip(chip_id).bandwidth_gbs == bandwidth


def test_m4max_is_the_40_core_part_and_m3max_30c_the_300_gbs_one():
    assert (get_chip("m4max").gpu_cores, get_chip("m4max").bandwidth_gbs) == (40, 546)
    assert (get_chip("m3max-30c").gpu_cores, get_chip("m3max-30c").bandwidth_gbs) == (30, 300)


@pytest.mark.parametrize("name,low,high,bandwidth,_est", REFERENCE_ROWS)
def test_reference_page_rows_are_in_the_database(name, low, high, bandwidth, _est):
    variants = [c for c in load_chips().values() if c.name == f"Apple {name}"]
    cores = {c.gpu_cores for c in variants}
    # The row's bandwidth belongs to a variant inside the row's core range ...
    match = [c for c in variants if abs(c.bandwidth_gbs - bandwidth) <= 1 and low <= c.gpu_cores <= high]
    assert match, f"{name} at {bandwidth} GB/s"
    # ... and the range's ends are real variants. One exception, a mistake of the page:
    # the M4 Pro's GPU has 16 or 20 cores; 14 is the core count of its CPU.
    assert high in cores
    assert low in cores or (name, low) == ("M4 Pro", 14)


@pytest.mark.skipif(not REFERENCE_PAGE.is_file(), reason="reference page not beside the checkout")
def test_reference_rows_transcribed_from_the_page():
    text = REFERENCE_PAGE.read_text(encoding="utf-8")
    for name, low, high, bandwidth, est in REFERENCE_ROWS:
        pattern = rf"\| {re.escape(name)} \| {low}–{high} \| {bandwidth} GB/s \| ~?{est} tok/s \|"
        assert re.search(pattern, text), name


@pytest.mark.parametrize("reported,cores,expected", [
    ("Apple M4 Max", 40, "m4max"), ("Apple M4 Max", 32, "m4max-32c"), ("Apple M4 Max", None, "m4max"),
    ("Apple M3 Max", 30, "m3max-30c"), ("Apple M1", 7, "m1-7c"), ("Apple M2 Ultra", 60, "m2ultra-60c"),
    ("Apple M4 Max", 36, None),
    ("NVIDIA H100 80GB HBM3", None, "h100"), ("NVIDIA H100 PCIe", None, "h100-pcie"),
    ("NVIDIA H100 NVL", None, "h100-nvl"), ("NVIDIA H200", None, "h200"),
    ("NVIDIA A100-SXM4-80GB", None, "a100"), ("NVIDIA A100-SXM4-40GB", None, "a100-40gb"),
    ("NVIDIA GeForce RTX 4090", None, "rtx4090"), ("NVIDIA GeForce RTX 3090", None, "rtx3090"),
    ("NVIDIA L40S", None, "l40s"), ("AMD Instinct MI300X", None, "mi300x"),
    ("AMD EPYC", None, None), ("Intel Xeon Platinum 8480+", None, None),
])
def test_identify_maps_what_machines_report(reported, cores, expected):
    assert identify(reported, cores) == expected


def test_get_chip_normalises_and_suggests_close_ids():
    assert get_chip("M4 Max").id == "m4max"
    with pytest.raises(BenchkitError) as exc:
        get_chip("m4maxx")
    assert "m4max" in str(exc.value) and exc.value.field == "chip"


def test_a_broken_database_fails_naming_file_and_field(tmp_path):
    bad = tmp_path / "chips.yaml"
    bad.write_text("chips:\n  - {id: x1, name: X, vendor: apple, family: x, backend: metal,\n"
                   "     gpu_cores: 8, bandwidth_gbs: -3, memory_gb: [8], multi_die: false,\n"
                   "     sources: {all: somewhere}}\n", encoding="utf-8")
    with pytest.raises(BenchkitError) as exc:
        load_chips(bad)
    assert exc.value.file == str(bad) and exc.value.field == "chips[0] (x1).bandwidth_gbs"
    bad.write_text("chips: [\n", encoding="utf-8")
    with pytest.raises(BenchkitError) as exc:
        load_chips(bad)
    assert exc.value.file == str(bad) and "YAML" in exc.value.message


def test_bits_per_weight_of_common_gguf_types():
    quants = load_quants()
    assert all(1 < bpw <= 32 for bpw in quants.values())
    assert bits_per_weight("q4_k_m") == quants["Q4_K_M"]
    assert bits_per_weight("F16") == 16
    # Ordered as the types' sizes are.
    assert quants["Q8_0"] > quants["Q6_K"] > quants["Q5_K_M"] > quants["Q4_K_M"] > quants["Q3_K_M"] > quants["Q2_K"]
    with pytest.raises(BenchkitError):
        bits_per_weight("Q9_X")


def test_the_issue_s_chip_list_is_covered():
    """Issue 12: the GPUs people own, from Turing on, AMD, Intel Arc, Apple and CPUs."""
    chips = load_chips()
    for chip_id in ("rtx2060", "rtx2080ti", "rtx3060", "rtx3070", "rtx3080", "rtx4060", "rtx4070",
                    "rtx4080", "rtx5070", "rtx5080", "rtxa4000", "rtxa6000", "rtx4000ada",
                    "rtx6000ada", "t4", "v100", "a10", "a30", "a40", "l4", "l40", "l40s", "b200",
                    "gb10", "jetson-agx-orin-64gb", "rx6800xt", "rx7600", "rx7800xt", "rx9070xt",
                    "w7900", "mi210", "mi250", "mi325x", "ryzen-ai-max-395", "arc-a770", "arc-b580",
                    "cpu-ddr5-6000-2ch", "cpu-ddr5-4800-12ch"):
        assert chip_id in chips, chip_id
    families = {c.family for c in chips.values() if c.vendor == "nvidia"}
    assert {"turing", "volta", "ampere", "ada", "hopper", "blackwell"} <= families
    assert {c.memory_class for c in chips.values()} == {"hbm", "gddr", "lpddr", "ddr"}


@pytest.mark.parametrize("chip_id,figures", [
    # datasheet totals the per-SM derivation must reproduce (dense matrix figures)
    ("rtx4090", {"fp32_tflops": 82.6, "matrix_tflops": 330.3, "int8_matrix_tops": 660.6}),
    ("rtx3090", {"fp32_tflops": 35.6, "matrix_tflops": 142.3}),
    ("h100", {"matrix_tflops": 989.4, "int8_matrix_tops": 1978.9, "bandwidth_gbs": 3350}),
    ("a100", {"matrix_tflops": 312, "int8_matrix_tops": 624, "bandwidth_gbs": 2039}),
    ("arc-a770", {"fp32_tflops": 17.2, "matrix_tflops": 137.6}),
    ("rx7900xtx", {"fp32_tflops": 61.4, "matrix_tflops": 122.8}),
    ("ryzen-ai-max-395", {"bandwidth_gbs": 256}),
    ("gb10", {"bandwidth_gbs": 273}),
])
def test_figures_match_vendor_totals(chip_id, figures):
    chip = get_chip(chip_id)
    for key, value in figures.items():
        assert getattr(chip, key) == pytest.approx(value, rel=0.01), (chip_id, key)


def test_geforce_bf16_is_half_its_fp16_rate_and_workstation_parts_full():
    assert get_chip("rtx4090").bf16_matrix_tflops == pytest.approx(get_chip("rtx4090").matrix_tflops / 2, rel=1e-3)
    assert get_chip("rtx6000ada").bf16_matrix_tflops == pytest.approx(get_chip("rtx6000ada").matrix_tflops)


def test_chip_spec_file(tmp_path):
    from benchkit.projection.chips import load_chip_spec

    spec = tmp_path / "gpu.yaml"
    spec.write_text("id: my-gpu\nname: My GPU\nbackend: cuda\nmemory_type: GDDR7\n"
                    "gpu_cores: 60\nbandwidth_gbs: 800\nmemory_gb: 16\nfp32_tflops: 38\n"
                    "matrix_tflops: 150\n", encoding="utf-8")
    chip = load_chip_spec(spec)
    assert (chip.vendor, chip.memory_class, chip.memory_gb) == ("nvidia", "gddr", (16.0,))
    assert str(spec) in chip.source("bandwidth_gbs")
    for text, field in (("bandwidth_gbs: fast", "bandwidth_gbs"),
                        ("memory_type: SRAM", "memory_type"),
                        ("bandwith_gbs: 800", "bandwith_gbs")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(spec.read_text().replace("bandwidth_gbs: 800", text)
                       if "memory_type" not in text else
                       spec.read_text().replace("memory_type: GDDR7", text), encoding="utf-8")
        with pytest.raises(BenchkitError) as exc:
            load_chip_spec(bad)
        assert exc.value.file == str(bad) and exc.value.field == field, (text, exc.value)
    clash = tmp_path / "clash.yaml"
    clash.write_text(spec.read_text().replace("my-gpu", "h100"), encoding="utf-8")
    with pytest.raises(BenchkitError, match="already"):
        load_chip_spec(clash)


# Projection v3, item 6: the GPUs people still run llama.cpp on, and CPUs by memory
# configuration. Each id loads with the figures a projection needs, and the name the
# machine reports (nvidia-smi, the HIP / ROCm marketing name, CUDA's device name on
# Jetson) finds it.
V3_CHIPS = {
    # id: the name nvidia-smi / ROCm / CUDA reports
    "rtxpro6000-maxq": "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
    "rtxpro6000": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
    "rtxpro5000": "NVIDIA RTX PRO 5000 Blackwell",
    "rtxpro4500": "NVIDIA RTX PRO 4500 Blackwell",
    "rtxpro4000": "NVIDIA RTX PRO 4000 Blackwell",
    "rtx4090d": "NVIDIA GeForce RTX 4090 D",
    "quadrortx4000": "Quadro RTX 4000",
    "quadrortx5000": "Quadro RTX 5000",
    "quadrortx6000": "Quadro RTX 6000",
    "quadrortx8000": "Quadro RTX 8000",
    "p40": "Tesla P40",
    "p100-pcie": "Tesla P100-PCIE-16GB",
    "m40": "Tesla M40 24GB",
    "k80": "Tesla K80",
    "gtx1060": "NVIDIA GeForce GTX 1060 6GB",
    "gtx1060-3gb": "NVIDIA GeForce GTX 1060 3GB",
    "gtx1070": "NVIDIA GeForce GTX 1070",
    "gtx1070ti": "NVIDIA GeForce GTX 1070 Ti",
    "gtx1080": "NVIDIA GeForce GTX 1080",
    "gtx1080ti": "NVIDIA GeForce GTX 1080 Ti",
    "titanxp": "NVIDIA TITAN Xp",
    "titanv": "NVIDIA TITAN V",
    "a100-pcie-40gb": "NVIDIA A100-PCIE-40GB",
    "b300": "NVIDIA B300 SXM6 AC",
    "gb200": "NVIDIA GB200",
    "gb300": "NVIDIA GB300",
    "jetson-agx-thor": "NVIDIA Thor",
    "jetson-agx-orin-64gb": "Orin",
    "mi50": "AMD Instinct MI50",
    "mi60": "AMD Instinct MI60",
    "mi100": "AMD Instinct MI100",
    "r9700": "AMD Radeon AI PRO R9700",
    "v620": "AMD Radeon PRO V620",
}
V3_CPUS = ("cpu-ddr5-5600-2ch", "cpu-ddr5-6400-2ch", "cpu-lpddr5x-8000-256b", "cpu-ddr5-5600-8ch",
           "cpu-ddr5-6400-8ch", "cpu-ddr5-6400-12ch")


@pytest.mark.parametrize("chip_id", [*V3_CHIPS, *V3_CPUS])
def test_v3_chips_load_with_sourced_figures(chip_id):
    chip = get_chip(chip_id)
    assert chip.id == chip_id and chip.bandwidth_gbs > 0 and chip.memory_type
    for field in ("bandwidth_gbs", "gpu_cores", "fp32_tflops", "matrix_tflops", "board_power_w"):
        assert chip.source(field), (chip_id, field)
    if chip.vendor != "cpu":
        assert chip.fp32_tflops and chip.matrix_tflops and chip.board_power_w, chip_id
        # A matrix unit is never slower than the vector units feeding it.
        assert chip.matrix_tflops >= chip.fp32_tflops * 0.999, chip_id
        if chip.gpu_clock_mhz:
            # FP32 = cores x lanes x 2 x clock: 128 lanes per SM / 64 per CU (x2 dual issue
            # on RDNA 4), 64 per SM on Volta, Turing, GP100 and GA100, 192 per Kepler SMX.
            lanes = {"volta": 64, "turing": 64, "kepler": 192, "rdna4": 128}.get(
                chip.family, 64 if chip.vendor == "amd" or chip.id in ("p100-pcie", "a100-pcie-40gb") else 128)
            derived = chip.gpu_cores * lanes * 2 * chip.gpu_clock_mhz / 1e6
            assert chip.fp32_tflops == pytest.approx(derived, rel=0.03), chip_id


@pytest.mark.parametrize("chip_id,name", sorted(V3_CHIPS.items()))
def test_v3_chips_are_identified_from_the_reported_name(chip_id, name):
    assert identify(name) == chip_id


@pytest.mark.parametrize("reported,cores,expected", [
    # Older drivers print no "NVIDIA " prefix; newer print it for Tesla and Quadro too.
    ("GeForce GTX 1080 Ti", None, "gtx1080ti"), ("TITAN V", None, "titanv"),
    ("NVIDIA Tesla P40", None, "p40"), ("NVIDIA Quadro RTX 8000", None, "quadrortx8000"),
    ("NVIDIA GeForce RTX 4090D", None, "rtx4090d"), ("NVIDIA B300", None, "b300"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", None, "rtxpro6000"),
    # gfx906 cards report one marketing name (amdgpu.ids 66A1): the CU count picks the part,
    # the larger one without it, as for Apple's core variants.
    ("AMD Instinct MI60 / MI50", 60, "mi50"), ("AMD Instinct MI60 / MI50", 64, "mi60"),
    ("AMD Instinct MI60 / MI50", None, "mi60"),
    ("Radeon AI PRO R9700", None, "r9700"), ("AMD Radeon Pro V620", None, "v620"),
    # The 40 GB PCIe card is its own entry now (250 W, not the SXM4 module's 400 W).
    ("NVIDIA A100-SXM4-40GB", None, "a100-40gb"), ("NVIDIA A100-PCIE-40GB", None, "a100-pcie-40gb"),
    # What the database still does not list stays unknown rather than guessed.
    ("NVIDIA GeForce GTX 980 Ti", None, None), ("Radeon PRO W9700", None, None),
])
def test_identify_v3_name_variants(reported, cores, expected):
    assert identify(reported, cores) == expected


@pytest.mark.parametrize("chip_id,figures", [
    # vendor-printed totals the entries must carry (dense matrix figures)
    ("p40", {"fp32_tflops": 11.76, "int8_matrix_tops": 47, "bandwidth_gbs": 346, "memory_gb": (24.0,)}),
    ("p100-pcie", {"fp32_tflops": 9.3, "matrix_tflops": 18.7, "bandwidth_gbs": 732}),
    ("m40", {"bandwidth_gbs": 288, "memory_gb": (24.0,), "board_power_w": 250}),
    ("k80", {"fp32_tflops": 8.73, "bandwidth_gbs": 480, "memory_gb": (24.0,), "board_power_w": 300}),
    ("titanv", {"fp32_tflops": 14.9, "matrix_tflops": 110, "bandwidth_gbs": 652.8}),
    ("quadrortx6000", {"fp32_tflops": 16.3, "matrix_tflops": 130.5, "memory_gb": (24.0,)}),
    ("quadrortx8000", {"fp32_tflops": 16.3, "matrix_tflops": 130.5, "memory_gb": (48.0,)}),
    ("quadrortx5000", {"fp32_tflops": 11.2, "matrix_tflops": 89.2}),
    ("quadrortx4000", {"fp32_tflops": 7.1, "matrix_tflops": 57}),
    ("rtx4090d", {"gpu_cores": 114, "bandwidth_gbs": 1008, "board_power_w": 425}),
    ("rtxpro6000-maxq", {"gpu_cores": 188, "fp32_tflops": 110.1, "bandwidth_gbs": 1792, "board_power_w": 300}),
    ("rtxpro5000", {"gpu_cores": 110, "bandwidth_gbs": 1344, "memory_gb": (48.0,), "board_power_w": 300}),
    ("rtxpro4500", {"gpu_cores": 82, "bandwidth_gbs": 896, "memory_gb": (32.0,), "board_power_w": 200}),
    ("rtxpro4000", {"gpu_cores": 70, "bandwidth_gbs": 672, "memory_gb": (24.0,), "board_power_w": 140}),
    ("gb200", {"matrix_tflops": 2500, "int8_matrix_tops": 5000, "memory_gb": (186.0,)}),
    ("b300", {"matrix_tflops": 2250, "int8_matrix_tops": 150, "memory_gb": (288.0,), "bandwidth_gbs": 8000}),
    ("gb300", {"matrix_tflops": 2500, "int8_matrix_tops": 165, "board_power_w": 1400}),
    ("jetson-agx-thor", {"gpu_cores": 20, "bandwidth_gbs": 273, "memory_gb": (128.0,), "matrix_tflops": 2070 / 8}),
    ("a100-pcie-40gb", {"bandwidth_gbs": 1555, "board_power_w": 250}),
    ("mi50", {"fp32_tflops": 13.3, "matrix_tflops": 26.5, "int8_matrix_tops": 53, "bandwidth_gbs": 1024}),
    ("mi60", {"fp32_tflops": 14.7, "matrix_tflops": 29.5, "int8_matrix_tops": 59, "memory_gb": (32.0,)}),
    ("mi100", {"fp32_tflops": 23.1, "matrix_tflops": 184.6, "bf16_matrix_tflops": 92.3,
               "int8_matrix_tops": 184.6, "bandwidth_gbs": 1228.8}),
    ("r9700", {"gpu_cores": 64, "fp32_tflops": 47.8, "bandwidth_gbs": 640, "memory_gb": (32.0,), "board_power_w": 300}),
    ("v620", {"fp32_tflops": 20.28, "bandwidth_gbs": 512, "memory_gb": (32.0,)}),
    ("cpu-lpddr5x-8000-256b", {"bandwidth_gbs": 256}),
])
def test_v3_figures_match_vendor_totals(chip_id, figures):
    chip = get_chip(chip_id)
    for key, value in figures.items():
        got = getattr(chip, key)
        assert got == (value if isinstance(value, tuple) else pytest.approx(value, rel=0.01)), (chip_id, key)


def test_cards_without_tensor_cores_follow_the_file_s_conventions():
    chips = load_chips()
    for chip in chips.values():
        if chip.family in ("pascal", "maxwell", "kepler") and chip.id != "p100-pcie":
            # FP16 at 1/64 (Pascal sm_61) or none: llama.cpp's F16 path runs on the FP32 ALUs.
            assert chip.matrix_tflops == chip.fp32_tflops, chip.id
        if chip.family in ("pascal", "maxwell", "kepler", "volta", "turing", "gcn5", "rdna2"):
            assert chip.bf16_matrix_tflops is None, chip.id   # no BF16 units
    # dp4a (sm_61) is 4x the FP32 rate; GP100, Maxwell and Kepler have none.
    for chip_id in ("p40", "gtx1080ti", "gtx1060", "titanxp"):
        chip = chips[chip_id]
        assert chip.int8_matrix_tops == pytest.approx(4 * chip.fp32_tflops, rel=0.01), chip_id
    for chip_id in ("p100-pcie", "m40", "k80", "titanv", "jetson-agx-thor"):
        assert chips[chip_id].int8_matrix_tops is None, chip_id
    # Two GPUs on one card, as for MI250X; the whole card's figures.
    assert chips["k80"].multi_die and chips["b300"].multi_die and chips["gb200"].multi_die


def test_v3_coverage_and_families():
    chips = load_chips()
    families = {c.family for c in chips.values()}
    assert {"pascal", "maxwell", "kepler", "gcn5", "cdna1", "rdna4"} <= families
    # Every NVIDIA generation a llama.cpp user may still own, Kepler to Blackwell.
    nvidia = {c.family for c in chips.values() if c.vendor == "nvidia"}
    assert {"kepler", "maxwell", "pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell"} <= nvidia
    assert len(chips) >= 188

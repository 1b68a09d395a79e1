"""The held-out checks per backend and the restricted write-back of fitted values
(benchkit/projection/fit.py, fit_yaml.py), on the shipped published tables."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pytest
import yaml

from benchkit.projection.fit import fit_backend, held_out
from benchkit.projection.fit_yaml import write_fit
from benchkit.projection.priors import load_priors, parse_priors, with_backend
from benchkit.projection.published import all_measurements, published, series_measurements


@pytest.fixture(scope="module")
def measurements():
    return all_measurements()


def test_a_backend_check_holds_out_every_maker_measured_on_it(measurements):
    """Vulkan's check spans NVIDIA, AMD and Intel cards measured on Vulkan, and projects each
    only from chips of its own series."""
    pairs = held_out(measurements, load_priors(), None, "chip", "vulkan")
    targets = {p["chip"] for p in pairs}
    assert {"rtx3090", "rx9070xt", "ryzen-ai-max-395", "arc-a770", "rx5700xt"} <= targets
    vulkan_series = {s["id"] for s in published() if s.get("backend") == "vulkan"}
    assert {p["source"] for p in pairs} <= vulkan_series
    # a pair's anchor and target measured the same series' model
    assert all(p["anchor"] != p["chip"] for p in pairs)


def test_a_vendor_check_keeps_to_its_own_backend(measurements):
    """The NVIDIA check is CUDA's: the Vulkan rows of NVIDIA cards are not in it."""
    pairs = held_out(measurements, load_priors(), "nvidia", "chip", "cuda")
    assert pairs
    vulkan_series = {s["id"] for s in published() if s.get("backend") == "vulkan"}
    assert not {p["source"] for p in pairs} & vulkan_series


def test_hip_series_of_two_chips_give_pairs_both_ways(measurements):
    pairs = held_out(measurements, load_priors(), None, "chip", "hip")
    got = {(p["anchor"], p["chip"]) for p in pairs}
    assert {("r9700", "rx7900xtx"), ("rx7900xtx", "r9700"),
            ("mi50", "rx9060xt"), ("rx9060xt", "mi50")} <= got
    # decode only where the tables have decode rows (#26284's tg64, #26705's single-token
    # passes, which put an HBM part, the MI100, in the decode check)
    with_tg = {p["chip"] for p in pairs if p["measured_tg"]}
    assert with_tg == {"r9700", "rx7900xtx", "mi100"}


def test_series_tests_set_the_token_counts():
    """pp2048 / tg64 and pp1024 are read as such, not as llama-bench's pp512 / tg128; a
    pp128 at microbatch 1 is a decode figure of 128 tokens."""
    by_id = {s["id"]: s for s in published()}
    rdna = series_measurements(by_id["llama8b-q4km-rdna-hip"])
    assert {(m.pp_tokens, m.tg_tokens) for m in rdna} == {(2048, 64)}
    gcn = series_measurements(by_id["llama8b-q4_0-hip-pp1024"])
    assert {m.pp_tokens for m in gcn} == {1024}
    assert all(m.tg_tps is None for m in gcn)
    single = series_measurements(by_id["llama8b-ub1-hip-pp128"])
    assert {m.tg_tokens for m in single} == {128}
    assert all(m.pp_tps is None and m.tg_tps for m in single)


def test_write_only_named_backends_leaves_the_rest(tmp_path, measurements):
    """--fit --write --only: the named backend's numbers change; every other line, the host
    terms and the sigmas included, stays byte for byte."""
    text = resources.files("benchkit").joinpath("data/projection.yaml").read_text("utf-8")
    path = tmp_path / "projection.yaml"
    path.write_text(text, encoding="utf-8")
    base = load_priors()
    shifted = replace(base.backend("hip"), efficiency={**base.backend("hip").efficiency,
                                                       "gddr": 0.5},
                      layer_latency_ms=0.07)
    changed = write_fit(path, with_backend(base, "hip", shifted), ["hip"], None, host=False)
    assert changed and all(c.startswith("hip.") for c in changed)
    new = path.read_text(encoding="utf-8")
    parsed = parse_priors(yaml.safe_load(new))
    assert parsed.backend("hip").efficiency["gddr"] == 0.5
    assert parsed.backend("hip").layer_latency_ms == 0.07
    assert parsed.backend("cuda") == base.backend("cuda")
    assert parsed.host == base.host
    assert parsed.decode_sigma == base.decode_sigma
    old_lines, new_lines = text.split("\n"), new.split("\n")
    assert len(old_lines) == len(new_lines)
    differ = [o for o, n in zip(old_lines, new_lines) if o != n]
    assert {line.split(":")[0].strip() for line in differ} == {"efficiency", "layer_latency_ms"}


def test_a_backend_fit_moves_only_what_its_rows_pin(measurements):
    """HIP's rows (fully offloaded, flash attention on; decode on GDDR and HBM parts, the
    LPDDR part's prompt alone) leave its LPDDR share and flash-attention-off terms at their
    assumed values; the MI100's decode rows move the HBM share."""
    base = load_priors()
    fitted, rms = fit_backend(measurements, "hip", base)
    assert set(rms) == {"decode", "prompt"}
    assert fitted.efficiency["lpddr"] == base.backend("hip").efficiency["lpddr"]
    assert fitted.efficiency["hbm"] != base.backend("hip").efficiency["hbm"]
    assert fitted.fa_off_layer_us == base.backend("hip").fa_off_layer_us
    assert fitted.mmq_ops_per_core_clock == base.backend("hip").mmq_ops_per_core_clock


def test_a_check_only_series_stays_out_of_every_fit(measurements):
    """published.yaml's `fit: false` series (#24127's NVIDIA table) is in no fit and no
    no-anchor calibration, and its check projects each chip from the others of its file."""
    from benchkit.projection.fit import file_pairs
    from benchkit.projection.published import calibration_measurements, check_only_measurements

    held = check_only_measurements()
    assert {m.source for m in held} == {"llama8b-mmq-cuda-pp512"}
    assert {m.chip_id for m in held} == {"p40", "v100-pcie", "rtx3090", "rtx4090", "rtx5090"}
    assert not {m.source for m in measurements} & {m.source for m in held}
    assert not {m.source for m in calibration_measurements("no-such-folder")} & {
        m.source for m in held}
    pairs = file_pairs(held, load_priors())
    got = {(p["anchor"], p["chip"]) for p in pairs}
    assert ("rtx4090", "rtx5090") in got and ("v100-pcie", "rtx5090") in got
    assert ("p40", "rtx4090") in got        # IQ1_S
    assert ("p40", "rtx5090") not in got    # no file in common
    assert all(p["roofline"]["pp"] and p["measured_tg"] is None for p in pairs)

"""Projection v2 (issue 12), the validation data's consistency screen: a published table whose
quantized prompt figure beats the same chip's F16 figure, on a build whose quantized prompt
kernels do the F16 GEMM's work and more, holds a wrong figure; that chip's prompt figures of
the table are left out of the fit and of every held-out check (benchkit.projection.published).

Inputs are real: the shipped published.yaml, chip database and priors; the made-up tables
below are run through the same function with real chip ids.
"""

from __future__ import annotations

from paths import REPO

import json
import math
from pathlib import Path

import pytest

from benchkit.projection.fit import quant_pairs
from benchkit.projection.published import (all_measurements, inconsistent, paths_measurements,
                                           screened)


L40S = [("l40s", "llama3-8b-gpus:F16"), ("l40s", "llama3-8b-gpus:Q4_K_M")]
SPRING_2024 = {"cuda": {"quant": "dequant-f16", "reason": "older build"}}


def table(rows: dict, units: dict | None = None) -> dict:
    """A published series with just what the screen reads."""
    series = {"id": "made-up", "rows": rows}
    if units:
        series["prompt_units"] = units
    return series


def test_the_shipped_data_loses_one_chips_prompt_pair_and_nothing_else():
    got = screened()
    assert [(series, chip) for series, chip, _ in got] == [("llama3-8b-gpus", "l40s")]
    assert "2.37x the F16 figure 2491.65" in got[0][2] and "dequant-f16" in got[0][2]
    on = {(m.chip_id, m.model_key): m for m in all_measurements()}
    off = {(m.chip_id, m.model_key): m for m in all_measurements(screen=False)}
    assert on.keys() == off.keys()
    assert sorted(k for k in off if on[k].pp_tps != off[k].pp_tps) == L40S
    for key in L40S:   # the decode figures stay
        assert on[key].pp_tps is None and off[key].pp_tps and on[key].tg_tps == off[key].tg_tps


@pytest.mark.parametrize("ratio,screened", [(0.80, False), (1.05, False), (1.20, True)])
def test_a_quantized_prompt_faster_than_f16_on_the_dequantize_path(ratio, screened):
    rows = {"rtx4090": {"F16": [9000.0, 54.0], "Q4_K_M": [9000.0 * ratio, 127.0]},
            "rtx3090": {"F16": [4200.0, 46.0], "Q4_K_M": [3900.0, 111.0]}}
    got = inconsistent(table(rows, SPRING_2024))
    assert set(got) == ({"rtx4090"} if screened else set())


def test_mmq_builds_may_run_quantized_prompts_faster_than_f16():
    """Without the older build's units CUDA's quantized prompts go to MMQ on INT8 tensor
    cores, twice the FP16 rate: faster than F16 is possible there and not screened."""
    rows = {"h100": {"F16": [10000.0, 70.0], "Q4_K_M": [15000.0, 140.0]}}
    assert inconsistent(table(rows)) == {}
    assert set(inconsistent(table(rows, SPRING_2024))) == {"h100"}


def test_metal_runs_both_on_the_same_units_and_is_screened_too():
    rows = {"m4max": {"F16": [900.0, 31.0], "Q8_0": [890.0, 54.0], "Q4_0": [1200.0, 83.0]},
            "m3max": {"Q4_0": [800.0, 60.0]}}          # no F16 figure: nothing to compare
    got = inconsistent(table(rows))
    assert list(got) == ["m4max"] and "Q4_0 prompt 1200" in got["m4max"]


# ----------------------------------------------------------------------------- across quantization

def test_a_prompt_projected_to_the_other_weight_group_says_so_and_widens():
    """From a Q4_K_M figure alone, an F16 model's prompt rate crosses weight groups: the row
    says so and its range grows by cross_quant_sigma; with an F16 figure among the anchors
    the F16 model is calibrated on that one and stays in range."""
    from benchkit.projection.api import project
    from benchkit.projection.priors import load_priors
    from benchkit.projection.shapes import shape_from_preset
    from projection_support import llama3_8b

    priors = load_priors()
    f16 = shape_from_preset("llama-3-8b", "F16")
    q4 = llama3_8b("rtx4090", 127.74, 6898.71)
    crossed = project([q4], chips=["rtx3090"], shape=f16)[0]
    same = project([q4, llama3_8b("rtx4090", 54.34, 9056.26, "F16")], chips=["rtx3090"],
                   shape=f16)[0]
    assert crossed["in_range"] is False and "F16 model from figures of the other kind" \
        in crossed["range_note"]
    assert same["in_range"] is True and same["range_note"] is None
    assert crossed["range_figures"] == ["pp"] and same["range_figures"] == []
    from benchkit.projection.output import format_projection

    line = next(x for x in format_projection([crossed]).splitlines() if "RTX 3090" in x)
    decode, prompt = line.split("|")[4:6]            # the ⚠ marks the prompt figure only
    assert "⚠" not in decode and prompt.strip().endswith("⚠")
    half = {name: row["pp_high"] / row["pp_tps"] for name, row in (("crossed", crossed),
                                                                   ("same", same))}
    z, cuda = priors.z, "cuda"
    assert half["same"] < math.exp(z * 1.15 * priors.prompt_sigma[cuda])   # + calibration
    assert half["crossed"] > math.exp(z * math.hypot(priors.prompt_sigma[cuda],
                                                     priors.cross_quant_sigma[cuda]) * 0.95)
    # decode does not depend on the prompt kernels: the same figure either way
    assert crossed["tg_tps"] == pytest.approx(same["tg_tps"], rel=0.2)


def test_the_h200_prompt_path_runs_are_read_per_build_and_file():
    """Every file of both committed runs, per build: median prompt rates of the samples,
    the FORCE_CUBLAS build on the dequant-f16 path, and none of it in the fit."""
    import statistics

    ms = paths_measurements()
    assert {m.source for m in ms} == {f"prompt-paths-{run}-samples.json ({build})"
                                      for run in ("llama3-8b", "tinyllama")
                                      for build in ("mmq", "cublas")}
    assert len(ms) == 2 * 4 + 2 * 4 and all(m.chip_id == "h200" and m.depth == 0 for m in ms)
    cublas = [m for m in ms if m.source.endswith("(cublas)")]
    assert all(m.units_on("cuda") == {"quant": "dequant-f16"} for m in cublas)
    assert all(m.units_on("cuda") is None for m in ms if m not in cublas)
    doc = json.loads((REPO / "reports/nvidia/v2/prompt-paths-llama3-8b-samples.json").read_text())
    f16 = next(m for m in ms if m.model_name == "llama-3-8b.F16.synthetic.gguf"
               and m.source.endswith("(mmq)"))
    assert f16.pp_tps == statistics.median(
        x for rd in doc["rounds"] for x in rd["mmq"]["llama-3-8b.F16.synthetic.gguf"])
    # the premise of the screen: on either path, no quantized file beats its F16 file
    for build in ("mmq", "cublas"):
        mine = {m.model_name: m.pp_tps for m in ms if m.source.endswith(f"({build})")}
        for name, rate in mine.items():
            f16_name = name.rsplit(".", 3)[0] + ".F16.synthetic.gguf"
            assert rate <= mine[f16_name], (build, name)
    fitted = {m.source for m in all_measurements()}
    assert not fitted & {m.source for m in ms}


def test_pairs_across_quantization_cover_both_vendors_and_stay_on_one_chip_and_run():
    from benchkit.projection.physics import weight_group
    from benchkit.projection.priors import load_priors

    pairs = quant_pairs(all_measurements() + paths_measurements(), load_priors())
    assert {p["backend"] for p in pairs} == {"cuda", "metal"}
    for p in pairs:
        assert p["roofline"]["pp_error"] is not None, p
    published = [p for p in pairs if p["run"] == "llama3-8b-gpus" and p["backend"] == "cuda"]
    assert "l40s" not in {p["chip"] for p in published}      # screened: no prompt figure
    assert len(published) == 2 * 11
    by_run = {(p["chip"], p["run"]) for p in pairs}
    assert ("h200", "prompt-paths-tinyllama-samples.json (cublas)") in by_run
    assert all(weight_group(p["target_quant"]) in ("f16", "quant") for p in pairs)

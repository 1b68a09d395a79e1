"""benchkit.projection (api, validation, measurements): the bandwidth and roofline methods,
validation, reading results.

The roofline method is judged on published measurements (benchkit/data/published.yaml:
llama.cpp's Apple Silicon table, LLaMA-2 7B) and on the reference page's own anchor;
result reading on the real short SmolLM2 run (see gpu_results.py for the GPU copies).
"""

from __future__ import annotations

from paths import REPO

import math
from pathlib import Path
from importlib import resources

import pytest
import yaml

from benchkit import load_results
from benchkit.core.errors import BenchkitError
from benchkit.projection.api import project, size_table
from benchkit.projection.measurements import Measurement, measurements_from_frame
from benchkit.projection.priors import load_priors
from benchkit.projection.validation import validate
from gpu_results import gpu_copy
from reference_chips import REFERENCE_ROWS

GIB = 2 ** 30
TINYLLAMA_Q4_K_M = 668_788_096      # bytes of TinyLlama-1.1B-Chat-v1.0.Q4_K_M.gguf
PAGE_ANCHOR = Measurement("m4max", 198.0, None, TINYLLAMA_Q4_K_M, 22, None)


def published_7b() -> dict[str, list[Measurement]]:
    """The Apple table of llama.cpp discussion #4167, per quantization."""
    doc = yaml.safe_load(resources.files("benchkit").joinpath("data/published.yaml").read_text())
    series = next(s for s in doc["series"] if s["id"] == "llama2-7b-apple")
    out: dict[str, list[Measurement]] = {}
    for chip, per_quant in series["rows"].items():
        for quant, (pp, tg) in per_quant.items():
            out.setdefault(quant, []).append(Measurement(
                chip, tg, pp, series["quants"][quant]["size_gib"] * GIB, 32,
                series["model"]["n_params"], source="published", model_key=quant))
    return out


def by_chip(rows):
    return {r["chip"]: r for r in rows}


# ----------------------------------------------------------------------------- bandwidth

def _page_chip(name, low, high, bandwidth):
    """The database variant a reference row stands for: its name, bandwidth and core range."""
    from benchkit.projection.chips import load_chips
    return next(c.id for c in load_chips().values() if c.name == f"Apple {name}"
                and abs(c.bandwidth_gbs - bandwidth) <= 1 and low <= c.gpu_cores <= high)


def test_bandwidth_method_is_tok_s_times_bandwidth_ratio():
    rows = by_chip(project([Measurement("m4max", 198.0)], method="bandwidth"))
    for row in rows.values():
        assert row["tg_tps"] == pytest.approx(198.0 * row["bandwidth_gbs"] / 546)
        assert row["tg_low"] == row["tg_high"] == row["tg_tps"] and row["pp_tps"] is None
    assert rows["m4max"]["status"] == "measured" and rows["m4max"]["measured_tg"] == 198.0


@pytest.mark.parametrize("name,low,high,bandwidth,est", REFERENCE_ROWS)
def test_bandwidth_method_reproduces_the_reference_table(name, low, high, bandwidth, est):
    """Every row within the page's own rounding: at most 2 tok/s and 1.2% from its figure.

    Eight of 13 rows round exactly; the page's 150, 400 and 800 GB/s rows (~55, ~146, ~292) sit
    0.6-1.1% above 198 x BW / 546 (54.4, 145.1, 290.1): they are the rounded 200 GB/s
    figure (73) times 3/4, 2 and 4, not the anchor scaled (docs/projection.md).
    """
    chip_id = _page_chip(name, low, high, bandwidth)
    tg = by_chip(project([Measurement("m4max", 198.0)], method="bandwidth"))[chip_id]["tg_tps"]
    assert abs(tg - est) <= 2 and abs(tg / est - 1) < 0.012
    if bandwidth not in (150, 400, 800):
        assert round(tg) == est


def test_the_reference_table_is_one_bandwidth_factor_of_0_3644_tok_s_per_gbs():
    """The whole printed table (M4 Max row aside) is bandwidth x one factor in
    [0.36438, 0.36447) tok/s per GB/s, rounded, where 198 / 546 = 0.3626: what the
    page did is linear bandwidth scaling, with a factor 0.5% above its own anchor's."""
    rows = by_chip(project([Measurement("m4max", 0.3644 * 546)], method="bandwidth"))
    for name, low, high, bandwidth, est in REFERENCE_ROWS[:-1]:
        assert round(rows[_page_chip(name, low, high, bandwidth)]["tg_tps"]) == est, name
    assert 0.3644 * 546 / 198 - 1 == pytest.approx(0.0049, abs=0.0005)


# ----------------------------------------------------------------------------- roofline

def test_roofline_reproduces_the_anchor_and_brackets_every_figure():
    rows = by_chip(project([PAGE_ANCHOR]))
    assert rows["m4max"]["tg_tps"] == pytest.approx(198, rel=0.02)
    for row in rows.values():
        assert row["tg_low"] < row["tg_tps"] < row["tg_high"], row["chip"]
        assert row["pp_tps"] is None        # no prompt figure was given


def test_small_model_decode_is_far_below_bandwidth_scaling_on_fast_chips():
    """TinyLlama on an Ultra: bandwidth scaling says +47%; the fixed per-token cost and the
    multi-die share leave a much smaller gain (and a slow chip is hit less than the ratio)."""
    rows = by_chip(project([PAGE_ANCHOR]))
    assert rows["m2ultra"]["tg_tps"] < 198 * 1.15
    assert rows["m1"]["tg_tps"] > 198 * 68.25 / 546 * 1.5
    assert rows["m3max"]["tg_tps"] > rows["m3max-30c"]["tg_tps"]      # 400 vs 300 GB/s


def test_large_models_approach_bandwidth_scaling():
    """A 70B model is almost all bytes: the M1 Max / M4 Max ratio nears 400 / 546."""
    m1max, m4max = (size_table(c, [PAGE_ANCHOR], sizes_b=[70])[0] for c in ("m1max", "m4max"))
    assert m1max["tg_tps"] / m4max["tg_tps"] == pytest.approx(400 / 546, rel=0.08)


def test_tinyllama_on_m4max_from_a_7b_measurement_on_another_chip():
    """Out of sample twice over: priors fitted on 7B rows, anchors on other chips, target
    the reference page's own TinyLlama figure (198 tok/s on an M4 Max, another program)."""
    published = {m.chip_id: m for m in published_7b()["Q4_0"]}
    for anchor in ("m1max", "m2ultra", "m3pro", "m4pro"):
        row = project([published[anchor]], model_bytes=TINYLLAMA_Q4_K_M, n_layers=22,
                      n_params=1.1e9, chips=["m4max"])[0]
        assert row["tg_tps"] == pytest.approx(198, rel=0.10), anchor
        assert row["tg_low"] < 198 < row["tg_high"]
        bandwidth = project([published[anchor]], method="bandwidth",
                            model_bytes=TINYLLAMA_Q4_K_M, chips=["m4max"])[0]
        assert abs(bandwidth["tg_tps"] / 198 - 1) > 0.5      # what scaling would claim


def test_accuracy_on_published_apple_measurements_from_m4max():
    """The issue's target from a single anchor: decode < 10%, prompt < 15%, and clearly
    better than bandwidth scaling (the Metal priors were fitted on this table: see
    scripts/projection_accuracy.py for the held-out, leave-one-family-out figures)."""
    errors = {("bandwidth", "tg"): [], ("bandwidth", "pp"): [], ("roofline", "tg"): [],
              ("roofline", "pp"): []}
    for ms in published_7b().values():
        result = validate(ms, anchors=["m4max"])
        assert result["pairs"] and all(p["anchor"] == "m4max" for p in result["pairs"])
        for p in result["pairs"]:
            for key in errors:
                errors[key].append(abs(p[key[0]][f"{key[1]}_error"]))
    mape = {k: sum(v) / len(v) for k, v in errors.items()}
    assert mape["roofline", "tg"] < 0.10 and mape["roofline", "pp"] < 0.15
    assert mape["roofline", "tg"] < mape["bandwidth", "tg"] / 2
    assert mape["roofline", "pp"] < mape["bandwidth", "pp"] / 2


def test_calibrating_on_more_chips_narrows_the_ranges():
    q4 = {m.chip_id: m for m in published_7b()["Q4_0"]}
    one = by_chip(project([q4["m4max"]], chips=["m1pro"]))["m1pro"]
    three = by_chip(project([q4["m4max"], q4["m1max"], q4["m2"]], chips=["m1pro"]))["m1pro"]
    assert three["tg_high"] / three["tg_low"] < one["tg_high"] / one["tg_low"]
    assert three["status"] == "not tested" and one["pp_tps"] is not None


def test_gpu_pair_from_the_issue():
    """H100 -> H200, TinyLlama shape Q4_K_M: measured -2%; bandwidth says +43%."""
    h100 = Measurement("h100", 842.0, None, 0.62 * GIB, 22, 1.1e9)
    rows = by_chip(project([h100], chips=["h100", "h200"]))
    assert rows["h200"]["tg_tps"] / 842 - 1 < 0.15
    assert rows["h200"]["tg_low"] < 827 < rows["h200"]["tg_high"]
    bw = by_chip(project([h100], chips=["h200"], method="bandwidth"))["h200"]
    assert bw["tg_tps"] / 842 == pytest.approx(4800 / 3350)


def test_projection_across_backends_is_wider():
    same = by_chip(project([PAGE_ANCHOR], chips=["m4pro"]))["m4pro"]
    cross = by_chip(project([PAGE_ANCHOR], chips=["rtx4090"]))["rtx4090"]
    assert cross["tg_high"] / cross["tg_low"] > 1.5 * same["tg_high"] / same["tg_low"]


def test_models_too_large_for_a_chip_say_so():
    rows = by_chip(project([Measurement("m4max", 10.0, None, 60e9, 80, None)]))
    assert rows["m1"]["status"] == "does not fit" and rows["m1"]["tg_tps"] is None
    assert rows["m1"]["fits"] is False
    assert rows["m2ultra"]["fits"] and rows["m2ultra"]["tg_tps"]
    sizes = size_table("m1", [PAGE_ANCHOR], sizes_b=[1, 7, 13, 70], quant="Q4_K_M")
    assert [s["fits"] for s in sizes] == [True, True, True, False]
    assert sizes[2]["fits_memory_gb"] == [16.0]          # 13B needs the 16 GB M1
    tgs = [s["tg_tps"] for s in sizes[:3]]
    assert tgs == sorted(tgs, reverse=True)


@pytest.mark.parametrize("kwargs,measurement,field", [
    ({"method": "guess"}, PAGE_ANCHOR, "method"),
    ({}, Measurement("m4max", 0.0, None, TINYLLAMA_Q4_K_M, 22, None), "tg_tps"),
    ({}, Measurement("m4max", -5.0), "tg_tps"),
    ({}, Measurement("m4max", 198.0), "--model-gb"),                  # roofline needs a size
    ({"model_bytes": 2e12}, PAGE_ANCHOR, "--model-gb"),               # fits nowhere
    ({}, Measurement("m9", 198.0, None, TINYLLAMA_Q4_K_M, 22, None), "chip"),
])
def test_bad_input_raises_one_clear_error(kwargs, measurement, field):
    with pytest.raises(BenchkitError) as exc:
        project([measurement], **kwargs)
    assert exc.value.field == field


def test_no_measurement_says_what_to_give():
    with pytest.raises(BenchkitError, match="--tg"):
        project([])


def test_priors_are_data_with_sources():
    priors = load_priors()
    assert set(priors.backends) == {"metal", "cuda", "hip", "sycl", "vulkan", "cpu", "mlx"}
    assert priors.backends["metal"].efficiency_multi_die < 1
    # HBM parts reach a smaller share of their peak in llama.cpp decode than GDDR cards.
    cuda = priors.backends["cuda"]
    assert cuda.efficiency["hbm"] < 0.75 * cuda.efficiency["gddr"]
    assert 0.5 < priors.interval < 1 and priors.z == pytest.approx(1.645, abs=0.01)
    text = resources.files("benchkit").joinpath("data/projection.yaml").read_text()
    assert text.count("fitted_on:") == len(priors.backends)
    assert set(priors.calibrated) == {"metal", "cuda", "hip", "vulkan"}
    # checked on a few published chips: their projections keep saying so
    assert {b for b, c in priors.calibrated.items() if c.get("few_chips")} == {"hip", "vulkan"}


# ----------------------------------------------------------------------------- results

def test_cpu_rows_are_not_gpu_measurements(smollm2_result):
    """The real run on this CPU-only machine: nothing in it calibrates a GPU projection."""
    df = load_results([smollm2_result])
    assert len(df) and set(df["device_kind"]) == {"cpu"}
    assert measurements_from_frame(df) == []


def test_measurements_from_gpu_results(smollm2_result, tmp_path):
    old = gpu_copy(smollm2_result, tmp_path / "old.json", chip_id="m4max", name="Apple M4 Max",
                   gpu_cores=40, backend="metal", started_at="2026-01-01T00:00:00Z", scale=0.5)
    new = gpu_copy(smollm2_result, tmp_path / "new.json", chip_id="m4max", name="Apple M4 Max",
                   gpu_cores=40, backend="metal", started_at="2026-02-01T00:00:00Z")
    gpu_copy(smollm2_result, tmp_path / "h100.json", chip_id="h100",
             name="NVIDIA H100 80GB HBM3", gpu_cores=None, backend="cuda",
             started_at="2026-01-15T00:00:00Z")
    df = load_results(sorted(tmp_path.glob("*.json")))
    ms = measurements_from_frame(df)
    assert [m.chip_id for m in ms] == ["m4max", "h100"]       # one per chip and model, newest first
    m = ms[0]
    rows = df[(df["file"] == str(new)) & (df["test"].str.startswith("tg"))]
    assert m.source == str(new) and m.tg_tps == pytest.approx(rows["tps_mean"].iloc[0])
    assert m.tg_test == rows["test"].iloc[0] and m.pp_test.startswith("pp")
    assert m.model_bytes == rows["model_size_bytes"].iloc[0] and m.n_layers == 30
    assert m.n_params == rows["model_params"].iloc[0] and m.model_key == rows["model_sha256"].iloc[0]
    assert m.tg_n == 3 and m.tg_cv is not None
    # The same model on two chips (and two backends): validation has two pairs, both ways.
    result = validate(ms)
    assert {(p["anchor"], p["chip"]) for p in result["pairs"]} == {("m4max", "h100"), ("h100", "m4max")}
    assert set(result["mape"]) == {"bandwidth", "roofline"}
    assert all(math.isfinite(result["mape"][m]["tg"]) for m in ("bandwidth", "roofline"))
    assert str(old) not in {m.source for m in ms}


def test_prompt_projection_uses_the_same_model_file_when_the_anchor_measured_it():
    """Two models measured on one chip: each model's prompt projection starts from its own
    figure (same compute on H100 and H200), not from a factor averaged over both models."""
    small = Measurement("h100", 900.0, 50000.0, 98_000_000, 30, 135_000_000, "test")
    large = Measurement("h100", 800.0, 33000.0, 668_000_000, 22, 1_100_000_000, "test")
    rows = {r["chip"]: r for r in project([small, large], chips=["h200"],
                                          model_bytes=large.model_bytes, n_layers=22)}
    h200 = rows["h200"]
    assert h200["pp_low"] <= 33000.0 * 1.05 and h200["pp_high"] >= 33000.0 * 0.95
    assert abs(h200["pp_tps"] / 33000.0 - 1) < 0.10


def test_committed_gpu_pairs_roofline_beats_bandwidth_scaling():
    """The H100 / H200 results measured with benchkit (results/nvidia-*, 7 model files from
    135M to 7B parameters): each GPU projected from the other. The roofline must stay clearly
    ahead of bandwidth scaling on real measurements, not only on the published Apple table."""
    repo = REPO
    files = sorted(repo.glob("results/nvidia-h*/*.json"))
    if not files:
        pytest.skip("no committed GPU results under results/")
    result = validate(measurements_from_frame(load_results(files)))
    assert {p["chip"] for p in result["pairs"]} == {"h100", "h200"} and len(result["pairs"]) >= 14
    mape = result["mape"]
    assert mape["roofline"]["tg"] < 0.6 * mape["bandwidth"]["tg"]
    assert mape["roofline"]["pp"] < 0.5 * mape["bandwidth"]["pp"]

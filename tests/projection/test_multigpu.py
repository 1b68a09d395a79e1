"""The multi-GPU projection: machines, llama.cpp's layer assignment, the split modes'
arithmetic on hand-computed cases, memory fit, links.yaml, the validation on the published
multi-GPU series (fit and check apart) and `benchkit project --machine`."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from benchkit.core.errors import BenchkitError
from benchkit.projection import multigpu as mg
from benchkit.projection.chips import get_chip

from conftest import run_benchkit
from projection_support import llama3_8b

OVER = mg.Overheads(layer_boundary_us=100.0, row_sync_us=10.0, tensor_sync_us=20.0)
MODEL = mg.ModelLoad(n_layers=32, n_embd=4096, weights_gb=4.0, kv_gb=0.5, compute_gb=0.25,
                     layer_dims=100_000, output_gb=0.5, name="test model")


def _linear(rate: float):
    """One GPU's time, proportional to its share (what a measured one-GPU figure gives)."""
    return lambda chip, share: share / rate


def test_machine_specs_and_their_errors(tmp_path: Path) -> None:
    m = mg.parse_machine("2xrtx3090")
    assert [d.chip.id for d in m.devices] == ["rtx3090", "rtx3090"]
    assert m.link.id == mg.load_links().default and m.label.startswith("2x rtx3090 over")
    mixed = mg.parse_machine("rtx3090+rtx4090@nvlink3-ga102")
    assert [d.chip.id for d in mixed.devices] == ["rtx3090", "rtx4090"]
    assert mixed.link.gbs == 56.25
    assert [d.chip.id for d in mg.parse_machine("2xrx7900xtx").devices] == ["rx7900xtx"] * 2
    with pytest.raises(BenchkitError, match="unknown chip 'rtx3099'.*did you mean rtx3090"):
        mg.parse_machine("2xrtx3099")
    with pytest.raises(BenchkitError, match=r"unknown link 'pcie9' \(known: pcie1-x16"):
        mg.parse_machine("2xrtx3090@pcie9")
    with pytest.raises(BenchkitError, match="1 to 16 GPUs"):
        mg.parse_machine("17xrtx3090")
    spec = tmp_path / "rig.yaml"
    spec.write_text(yaml.safe_dump({"devices": [{"chip": "p40", "count": 3}, "rtx3090"],
                                    "link": "pcie3-x8", "tensor_split": [1, 1, 1, 3],
                                    "main_gpu": 3}))
    rig = mg.parse_machine(str(spec))
    assert [d.chip.id for d in rig.devices] == ["p40"] * 3 + ["rtx3090"]
    assert rig.tensor_split == (1.0, 1.0, 1.0, 3.0) and rig.main_gpu == 3
    assert mg.split_of(rig) == [1 / 6, 1 / 6, 1 / 6, 3 / 6]
    spec.write_text(yaml.safe_dump({"devices": ["p40", "p40"], "tensor_split": [1]}))
    with pytest.raises(BenchkitError) as err:
        mg.parse_machine(str(spec))
    assert err.value.file == str(spec) and err.value.field == "tensor_split"
    spec.write_text(yaml.safe_dump({"devices": [{"chip": "p40", "memory_gb": -1}]}))
    with pytest.raises(BenchkitError) as err:
        mg.parse_machine(str(spec))
    assert err.value.field == "devices[0].memory_gb"


def test_layers_are_assigned_by_llama_cpps_rule() -> None:
    # layer il of n + 1 goes to the first device whose cumulative split exceeds il / (n + 1)
    assert mg.layer_counts(32, [1, 1]) == ([17, 15], 1)      # il <= 16 -> 16/33 < 0.5
    assert mg.layer_counts(80, [1, 1, 1, 1]) == ([21, 20, 20, 19], 3)
    assert mg.layer_counts(32, [3, 1]) == ([25, 7], 1)       # il / 33 < 0.75: il <= 24
    assert mg.layer_counts(32, [1]) == ([32], 0)
    counts, out = mg.layer_counts(61, [0.2, 0.5, 0.3])
    assert sum(counts) == 61 and out == 2


def test_layer_split_adds_the_devices_times_and_the_boundaries() -> None:
    m = mg.parse_machine("2xrtx3090@pcie4-x16")
    r = mg.project_multi(m, MODEL, "layer", _linear(100.0), _linear(4000.0), overheads=OVER)
    hidden = 4096 * 4 / 31.5e9                                    # one token's F32 state
    assert r["link_ms_per_token"] == pytest.approx((100e-6 + hidden) * 1e3)
    assert r["tg_tps"] == pytest.approx(1 / (1 / 100 + 100e-6 + hidden))
    assert r["one_gpu"]["tg_tps"] == pytest.approx(100.0)
    assert r["tg_speedup"] < 1                                    # layer split never speeds decode
    d0, d1 = r["devices"]
    assert (d0["layers"], d1["layers"], d1["output_layer"]) == (17, 15, True)
    assert d0["weights_gb"] == pytest.approx(3.5 * 17 / 32)
    assert d1["weights_gb"] == pytest.approx(3.5 * 15 / 32 + 0.5)
    assert d0["kv_gb"] + d1["kv_gb"] == pytest.approx(0.5)
    # pp512: one ubatch, no pipelining; the 512 tokens' state crosses once
    assert r["pipelined"] is False
    assert r["pp_tps"] == pytest.approx(512 / (512 / 4000 + 100e-6 + 512 * hidden))


def test_several_ubatches_pipeline_under_layer_split() -> None:
    m = mg.parse_machine("4xrtx4090")
    r = mg.project_multi(m, MODEL, "layer", _linear(100.0), _linear(4096.0), n_prompt=2048,
                         ubatch=512, overheads=OVER)
    stages = [c / 32 * 512 / 4096 for c in mg.layer_counts(32, [1, 1, 1, 1])[0]]
    boundary = 100e-6 + 512 * 4096 * 4 / 31.5e9
    expected = sum(stages) + 3 * boundary + 3 * (max(stages) + boundary)
    assert r["pipelined"] is True
    assert r["pp_tps"] == pytest.approx(2048 / expected)
    assert r["pp_speedup"] > 1                    # what several GPUs buy a long prompt


def test_row_and_tensor_split_work_in_parallel_and_pay_per_layer() -> None:
    m = mg.parse_machine("2xrtx3090")
    bw = 31.5e9
    row = mg.project_multi(m, MODEL, "row", _linear(100.0), overheads=OVER)
    per_layer = 14 * 10e-6 + 100_000 * 4 * 0.5 / bw
    assert row["tg_tps"] == pytest.approx(1 / (0.5 / 100 + 32 * per_layer))
    assert [d["kv_gb"] for d in row["devices"]] == [0.5, 0.0]      # KV on the main GPU
    tensor = mg.project_multi(m, MODEL, "tensor", _linear(100.0), overheads=OVER)
    ring = 2 * 4096 * 4 * 2 * 0.5
    assert tensor["tg_tps"] == pytest.approx(1 / (0.5 / 100 + 32 * (2 * 20e-6 + ring / bw)))
    assert [d["kv_gb"] for d in tensor["devices"]] == [0.25, 0.25]
    none = mg.project_multi(m, MODEL, "none", _linear(100.0), overheads=OVER)
    assert none["tg_tps"] == pytest.approx(100.0) and none["gpus_used"] == 1
    with pytest.raises(BenchkitError, match="unknown split mode 'rows'"):
        mg.project_multi(m, MODEL, "rows", _linear(100.0))


def test_mixed_gpus_take_their_own_times_and_memory_decides_the_fit() -> None:
    big = mg.ModelLoad(80, 8192, 42.0, 1.0, 0.6, 160_000, 1.0, "70B")
    m = mg.parse_machine("rtx3090+rtx4090")
    usable = mg.Machine(tuple(mg.Device(d.chip, d.memory_gb, 24.0) for d in m.devices), m.link)
    rates = {"rtx3090": 15.0, "rtx4090": 19.0}
    r = mg.project_multi(usable, big, "layer", lambda c, s: s / rates[c.id], overheads=OVER)
    counts = [d["layers"] for d in r["devices"]]
    assert r["tg_tps"] == pytest.approx(
        1 / (counts[0] / 80 / 15 + counts[1] / 80 / 19 + 100e-6 + 8192 * 4 / 31.5e9))
    assert r["fits"] and r["one_gpu"]["fits"] is False          # 44 GB on one 24 GB card
    tight = mg.Machine(tuple(mg.Device(d.chip, d.memory_gb, 20.0) for d in m.devices), m.link)
    assert mg.project_multi(tight, big, "layer", lambda c, s: s / 15, overheads=OVER)[
        "fits"] is False


def test_links_file_is_checked(tmp_path: Path) -> None:
    links = mg.load_links()
    assert links.links["pcie4-x16"].gbs == 31.5 and links.links["pcie3-x16"].gbs == 15.75
    assert all(link.source for link in links.links.values())
    doc = yaml.safe_load((Path(mg.__file__).parents[1] / "data" / "links.yaml").read_text())
    broken = copy.deepcopy(doc)
    broken["links"][2]["gbs"] = 0
    bad = tmp_path / "links.yaml"
    bad.write_text(yaml.safe_dump(broken))
    with pytest.raises(BenchkitError) as err:
        mg.load_links(str(bad))
    assert err.value.field == "links[2].gbs" and err.value.file == str(bad)
    broken = copy.deepcopy(doc)
    del broken["overheads"]["row_sync_us"]
    bad.write_text(yaml.safe_dump(broken))
    with pytest.raises(BenchkitError, match="positive number") as err:
        mg.load_links(str(bad))
    assert err.value.field == "overheads.row_sync_us.value"


def test_validation_fits_on_one_chip_and_checks_on_the_other() -> None:
    v = mg.validate_published()
    (series,) = v["series"]
    assert series["fit_on"] == "rtx3090" and series["check_on"] == "rtx4090"
    # the committed overhead is the one the fit gives (rounded as links.yaml keeps it)
    assert round(series["layer_boundary_us"]) == mg.load_links().overheads.layer_boundary_us
    # the fit sees only the fit chip's rows: changing a check row leaves it alone
    cases = mg.published_cases(mg.load_published()[0])
    fit_set = [c for c in cases if c["chip"] == "rtx3090"]
    changed = copy.deepcopy(cases)
    for c in changed:
        if c["chip"] == "rtx4090":
            c["measured"]["tg"] /= 2
    again = [c for c in changed if c["chip"] == "rtx3090"]
    assert mg.fit_boundary(again, mg.load_published()[0]) == mg.fit_boundary(
        fit_set, mg.load_published()[0])
    roles = {c["role"] for c in v["cases"]}
    assert roles == {"fit", "check"}
    for c in v["cases"]:
        assert set(c["errors"]) == {"tg", "pp", "pp_pipelined"}
        for test, err in c["errors"].items():
            assert math.isclose(err, c["projected"][test] / c["measured"][test] - 1)
    held_out = next(s for s in v["summary"] if s["role"] == "check"
                    and s["per_chip"] == "same model, one GPU" and s["test"] == "tg")
    assert held_out["n"] == 6


def test_a_share_keeps_the_token_embedding_whole() -> None:
    from benchkit.projection.shapes import shape_from_preset

    shape = shape_from_preset("llama-3-8b", "Q4_K_M", 4.58 * 2**30)
    half, other = mg.share_of(shape, 17 / 32, 17), mg.share_of(shape, 15 / 32, 15)
    # the parts stream what the whole streams, and do as many matrix products
    assert half.streamed_bytes + other.streamed_bytes == pytest.approx(shape.streamed_bytes)
    assert half.matmul_params + other.matmul_params == pytest.approx(shape.matmul_params)
    assert half.n_layers + other.n_layers == shape.n_layers


def test_machine_projection_from_a_measurement() -> None:
    ms = [llama3_8b("rtx3090", 111.74, 3865.39)]
    r = mg.machine_projection("2xrtx3090", "layer", ms)
    assert r["gpus_used"] == 2 and r["fits"]
    assert 0.9 < r["tg_speedup"] < 1.0           # the same model on two cards: a little slower
    one = mg.machine_projection("1xrtx3090", "layer", ms)
    assert one["tg_tps"] == pytest.approx(r["one_gpu"]["tg_tps"])
    text = mg.format_multi(r)
    assert "| 0 | rtx3090 | 17 |" in text and "| 1 | rtx3090 | 15 + output |" in text
    assert "decode tok/s (tg)" in text


def test_project_machine_on_the_command_line() -> None:
    args = ["project", "--anchor", "rtx3090", "--tg", "111.74", "--pp", "3865", "--preset",
            "llama-3-8b", "--quant", "Q4_K_M", "--anchor-only"]
    proc = run_benchkit(*args, "--machine", "2xrtx3090", "--split-mode", "row")
    assert proc.returncode == 0, proc.stderr
    assert "split mode row" in proc.stdout and "| 1 | rtx3090 | — | 50.0% |" in proc.stdout
    bad = run_benchkit(*args, "--machine", "2xrtx3099")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: [--machine]: unknown chip 'rtx3099'; did you mean rtx3090, rtx3090ti, "
        "rtx5090, rtx4090? (all ids: benchkit project --list-chips)"]
    csv = run_benchkit(*args, "--machine", "2xrtx3090", "--format", "csv")
    assert csv.returncode == 2 and "md or json" in csv.stderr


def test_get_chip_is_the_database_one() -> None:
    assert mg.parse_machine("h100").devices[0].chip == get_chip("h100")


def test_the_evidence_script_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    """scripts/multigpu_evidence.sh on this machine (no NVIDIA GPU): usage, a build without
    llama-bench, and no nvidia-smi are each one refusal with exit 2, nothing measured."""
    import shutil
    import subprocess

    from paths import REPO

    script = str(REPO / "scripts" / "multigpu_evidence.sh")
    usage = subprocess.run(["bash", script], capture_output=True, text=True)
    assert usage.returncode == 2 and "BUILD_DIR MODEL_DIR OUT" in usage.stderr
    empty = subprocess.run(["bash", script, str(tmp_path / "none"), str(tmp_path / "m"),
                            str(tmp_path / "o")], capture_output=True, text=True)
    assert empty.returncode == 2
    assert empty.stderr.strip() == f"error: no llama-bench in {tmp_path / 'none'}/bin or " \
                                   f"{tmp_path / 'none'}"
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    build = tmp_path / "build" / "bin"
    build.mkdir(parents=True)
    (build / "llama-bench").write_text("#!/bin/sh\nexit 0\n")
    (build / "llama-bench").chmod(0o755)
    proc = subprocess.run(["bash", script, str(build.parent), str(tmp_path / "m"),
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "nvidia-smi not found" in proc.stderr
    assert not (tmp_path / "o").exists()

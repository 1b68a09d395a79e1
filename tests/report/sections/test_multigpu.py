"""The report's multi-GPU section on a run of one GPU and two.

NO MULTI-GPU RUN IS RECORDED HERE. The input is the committed H200 telemetry run (real
one-GPU measurements, its placement read again from its recorded log) beside HAND-MADE
two-GPU copies of its cases: placement from a log written with llama.cpp's own formats
(tests/multigpu_support.py), NVML figures split over two GPUs, and tok/s
scaled by a factor chosen here. The tests check what the section reads, groups and
prints, never what two GPUs would measure.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from benchkit.engines.llama_cpp.placement import Placement, parse_placement

from conftest import run_benchkit
from multigpu_support import two_gpu_layer_log
from markdown_tables import headings, tables
from paths import REPO

H200_RUN = REPO / "results" / "nvidia-h200-v2" / "20261201T173609Z-telemetry-gpu-4c5be3.json"
SCALE = 0.9          # the two-GPU copies' tok/s, of the one-GPU figures (chosen, not measured)
ENERGY = 1.3         # and their GPUs' energy per token


def _one_gpu(case: dict) -> dict:
    case = copy.deepcopy(case)
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True,
                  asked={"split_mode": "none", "main_gpu": 0, "tensor_split": None,
                         "devices_requested": ["CUDA0"]})
    parse_placement(case["placement"]["log"], p)
    case["placement"] = p.to_dict()
    case["engine"].update(split_mode="none", main_gpu=0, tensor_split=None, devices=["CUDA0"])
    return case


def _two_gpus(case: dict, index: int) -> dict:
    case = copy.deepcopy(case)
    case["index"] = index
    case["engine"].update(split_mode="layer", main_gpu=0, tensor_split=None,
                          devices=["CUDA0", "CUDA1"])
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True,
                  asked={"split_mode": "layer", "main_gpu": 0, "tensor_split": None,
                         "devices_requested": ["CUDA0", "CUDA1"]})
    parse_placement(two_gpu_layer_log(), p)
    case["placement"] = p.to_dict()
    for it in case["iterations"]:
        it["tps"] *= SCALE
        it["seconds"] /= SCALE
    for key in ("tps_mean", "tps_median", "tps_min", "tps_max", "tps_stdev", "tps_ci95_low",
                "tps_ci95_high"):
        if case["summary"].get(key) is not None:
            case["summary"][key] *= SCALE
    nv = case["telemetry"]["nvidia"]
    one = nv["devices"][0]
    second = {**copy.deepcopy(one), "index": 1}
    nv["devices"] = [one, second]
    nv["joules_per_token"] *= ENERGY
    nv["total"] = {"gpus": 2, "power_w": {"mean": 500.0, "min": 450.0, "max": 550.0},
                   "energy_j": nv["energy_j"], "memory_used_bytes": None}
    one["energy_share"] = second["energy_share"] = 0.5
    return case


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = json.loads(H200_RUN.read_text(encoding="utf-8"))
    ones = [_one_gpu(c) for c in doc["cases"]]
    doc["cases"] = ones + [_two_gpus(c, len(ones) + i) for i, c in enumerate(ones)]
    path = tmp_path_factory.mktemp("multigpu") / "two-gpus.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_markdown_shows_the_spread_and_what_the_second_gpu_bought(run_file: Path,
                                                                  tmp_path: Path) -> None:
    proc = run_benchkit("report", str(run_file), "-o", str(tmp_path / "r"), "--format", "md")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert "Several GPUs" in headings(tokens)
    all_tables = tables(tokens)
    spread = [t for t in all_tables if t[0][:2] == ["Device", "Layers"]]
    doc = json.loads(run_file.read_text())
    assert len(spread) == len(doc["cases"]) // 2          # one per two-GPU case
    rows = {r[0]: r for r in spread[0][1:]}
    assert rows["CUDA0"][1:4] == ["17", "1,925.0 MiB", "34.0 MiB"]
    assert rows["CUDA1"][1] == "16 + output"
    power = [t for t in all_tables if t[0][:3] == ["GPU", "Name", "Mean power"]]
    assert [r[3] for r in power[0][1:]] == ["50%", "50%"]
    scaling = [t for t in all_tables if "× tok/s" in t[0]]
    assert len(scaling) == len(doc["cases"]) // 2          # one per test
    for t in scaling:
        gpus = [r[1] for r in t[1:]]
        assert gpus == ["1", "2"]
        assert t[1][4] == "1.00x" and t[2][4] == f"{SCALE:.2f}x"
        assert t[2][6] == f"{ENERGY:.2f}x"


@pytest.mark.browser
def test_html_section_opens_in_chromium(run_file: Path, tmp_path: Path) -> None:
    from browser import open_page

    proc = run_benchkit("report", str(run_file), "-o", str(tmp_path / "r"), "--format", "html")
    assert proc.returncode == 0, proc.stderr
    page = open_page(tmp_path / "r.html", full_page=True)
    assert page.console_errors == []
    assert "Several GPUs" in [text for tag, text in page.headings if tag == "h2"]
    assert "What each extra GPU bought" in [text for tag, text in page.headings if tag == "h3"]

"""The report's context-depth section, on the committed depth runs (real measurements:
SmolLM2 on a CPU and two stand-ins on an NVIDIA H200, tg128 / pp512 at several depths)."""

from __future__ import annotations

from paths import REPO

import json
import statistics
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from benchkit.core.units import fmt_tps
from conftest import run_benchkit
from markdown_tables import headings as _headings, tables as _tables

CPU_RUN = REPO / "results" / "20261201T193554Z-depth-smollm2-62e91f.json"
GPU_RUN = REPO / "results" / "nvidia-h200-v2" / "20261201T194803Z-depth-gpu-4c7c5e.json"


def _md(result: Path, out: Path) -> str:
    proc = run_benchkit("report", str(result), "-o", str(out), "--format", "md")
    assert proc.returncode == 0, proc.stderr
    return out.with_suffix(".md").read_text(encoding="utf-8")


def _depth_tables(text: str) -> list[list[list[str]]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert "Context depth" in _headings(tokens)
    return [t for t in _tables(tokens) if t[0][0] == "Test" and t[0][1] == "d0"]


@pytest.mark.parametrize("result", [CPU_RUN, GPU_RUN], ids=["cpu", "h200"])
def test_every_depth_case_is_in_the_table_with_its_share_of_d0(result: Path,
                                                               tmp_path: Path) -> None:
    doc = json.loads(result.read_text(encoding="utf-8"))
    text = _md(result, tmp_path / "depth")
    tables = _depth_tables(text)
    engines = {c["engine"]["kind"] for c in doc["cases"]}
    models = {c["model"]["file"] for c in doc["cases"]}
    assert len(tables) == len(engines) * len(models)
    cells = {c for t in tables for row in t[1:] for c in row[1:]}
    for case in doc["cases"]:
        median = statistics.median(it["tps"] for it in case["iterations"])
        depth = case["workload"].get("depth") or 0
        matching = [c for c in cells if c.startswith(f"{fmt_tps(median)} ±")]
        assert matching, (case["test"], fmt_tps(median))
        if depth:
            base = case["test"].split(" @ ")[0]
            d0 = next(c for c in doc["cases"] if c["test"] == base
                      and c["engine"]["kind"] == case["engine"]["kind"]
                      and c["model"]["file"] == case["model"]["file"])
            share = median / statistics.median(it["tps"] for it in d0["iterations"])
            assert any(f"{100 * share:.1f}% of d0" in c for c in matching)
    # headers are the depths measured, in order
    depths = sorted({c["workload"].get("depth") or 0 for c in doc["cases"]})
    assert tables[0][0][1:] == [f"d{d}" for d in depths]


def test_chart_has_a_panel_per_kind_and_a_line_per_configuration(tmp_path: Path) -> None:
    _md(GPU_RUN, tmp_path / "depth")
    svg = (tmp_path / "depth-depth-throughput.svg").read_text(encoding="utf-8")
    assert "decode (tg128)" in svg and "prompt processing (pp512)" in svg
    for name in ("tinyllama-1.1b.Q4_K_M.synthetic.gguf", "llama-2-7b.Q4_0.synthetic.gguf"):
        assert name in svg


def test_no_depth_section_without_depth_cases(smollm2_result: Path, tmp_path: Path) -> None:
    text = _md(smollm2_result, tmp_path / "plain")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert "Context depth" not in _headings(tokens)
    assert not (tmp_path / "plain-depth-throughput.svg").exists()

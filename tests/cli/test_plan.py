"""`benchkit plan` and the v3 options of `benchkit project`, run as a user runs them."""

from __future__ import annotations

import json

import pytest

from conftest import run_benchkit


def _ok(*args: str, cwd=None) -> str:
    proc = run_benchkit(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_plan_lists_what_fits_fastest_first_with_commands(tmp_path):
    doc = json.loads(_ok("plan", "--preset", "qwen3-30b-a3b", "--chip", "rtx3060", "--ram", "32",
                         "--cpu-bw", "51", "--ctx", "16384", "--format", "json", cwd=tmp_path))
    plans = doc["plans"]
    assert plans, doc
    # a 12 GB card cannot hold 30B parameters: every plan keeps experts in RAM
    assert all(p["placement"].startswith("--n-cpu-moe") for p in plans)
    assert all(f"--n-cpu-moe {p['placement'].split()[1]}" in p["command"] for p in plans)
    assert all(p["gpu_gb"] <= p["vram_usable_gb"] and p["ram_gb"] <= 32 for p in plans)
    decode = [p["tg_tps"] for p in plans]
    assert decode == sorted(decode, reverse=True)
    assert all(p["tg_low"] < p["tg_tps"] < p["tg_high"] for p in plans)


def test_plan_on_a_big_card_keeps_everything_on_the_gpu(tmp_path):
    text = _ok("plan", "--preset", "gpt-oss-20b", "--chip", "rtx4090", "--ram", "64",
               "--cpu-bw", "96", cwd=tmp_path)
    assert "| MXFP4 | all on GPU |" in text and "llama-server -m MODEL.MXFP4.gguf" in text


def test_plan_proposes_nothing_that_does_not_fit(tmp_path):
    text = _ok("plan", "--preset", "qwen3-235b-a22b", "--quant", "Q8_0", "--chip", "rtx3060",
               "--ram", "16", "--cpu-bw", "51", cwd=tmp_path)
    assert "Nothing fits" in text


def test_project_measured_and_no_anchor(tmp_path):
    text = _ok("project", "--anchor", "rtx4090", "--tg", "186", "--pp", "11990", "--measured",
               "llama-2-7b:Q4_0", "--preset", "gpt-oss-20b", "--quant", "MXFP4", "--chips",
               "rtx4090,h100", cwd=tmp_path)
    assert "preset llama-2-7b (Q4_0)" in text and "4 of 32 experts" in text
    alone = json.loads(_ok("project", "--preset", "gpt-oss-20b", "--quant", "MXFP4", "--chips",
                           "rtx4090,m4max", "--format", "json", cwd=tmp_path))
    rows = alone if isinstance(alone, list) else alone["rows"]
    assert {r["chip"] for r in rows} == {"rtx4090", "m4max"}
    assert all(r["tg_tps"] for r in rows)


def test_project_backend_and_flash_attention(tmp_path):
    def decode(*extra: str) -> float:
        doc = json.loads(_ok("project", "--anchor", "rtx4090", "--tg", "150", "--preset",
                             "llama-3.1-8b", "--chips", "rtx3090", "--format", "json", *extra,
                             cwd=tmp_path))
        rows = doc if isinstance(doc, list) else doc["rows"]
        return rows[0]

    vulkan = decode("--backend", "vulkan")
    assert vulkan["backend"] == "vulkan"
    off = decode("--measured-fa", "on", "--fa", "off")["tg_tps"]
    on = decode("--measured-fa", "on", "--fa", "on")["tg_tps"]
    assert off < on


@pytest.mark.parametrize("args,names", [
    (["project", "--preset", "nope"], ["--preset", "nope"]),
    (["project", "--anchor", "rtx4090", "--tg", "100", "--measured", "README.md",
      "--preset", "llama-2-7b"], ["--measured", "not a model"]),
    (["project", "--anchor", "rtx4090", "--tg", "100", "--measured", "llama-2-7b:Q9"],
     ["--measured", "Q9"]),
    (["project", "--anchor", "rtx4090", "--tg", "100", "--preset", "llama-2-7b",
      "--n-cpu-moe", "3", "--cpu-bw", "50"], ["--n-cpu-moe", "not a mixture of experts"]),
    (["project", "--anchor", "rtx3060", "--tg", "100", "--preset", "qwen3-235b-a22b",
      "--n-cpu-moe", "2", "--cpu-bw", "50", "--chips", "rtx3060"], ["--n-cpu-moe", "plan"]),
    (["project", "--anchor", "rtx4090", "--tg", "100", "--preset", "llama-2-7b",
      "--n-gpu-layers", "10"], ["--cpu-bw"]),
    (["project", "--anchor", "rtx4090", "--tg", "100", "--fa", "maybe"], ["--fa"]),
    (["plan", "--preset", "llama-2-7b", "--chip", "rtx4090", "--ram", "0", "--cpu-bw", "50"],
     ["--ram"]),
    (["plan", "--preset", "llama-2-7b", "--chip", "rtx4090", "--vram", "-1", "--ram", "8",
      "--cpu-bw", "50"], ["--vram"]),
    (["plan", "--preset", "llama-2-7b", "--ram", "8", "--cpu-bw", "50"], ["--chip"]),
])
def test_bad_input_is_one_error_line(tmp_path, args, names):
    (tmp_path / "README.md").write_text("# not a model\n", encoding="utf-8")
    proc = run_benchkit(*args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for name in names:
        assert name in lines[0]

"""Facts decided once (benchkit.results.facts, benchkit.workloads.testnames,
environment.backend_in), checked on every committed result and on real llama-bench files."""

from __future__ import annotations

import json

import pytest

from paths import DATA, REPO

from benchkit.formats.llama_bench_import import backend_of, backends_of
from benchkit.results import facts
from benchkit.results.frame import load_results
from benchkit.results.io import read_run
from benchkit.run.environment import backend_in
from benchkit.workloads import testnames

RESULTS = sorted((REPO / "results").rglob("*.json"))
CASES = [(p, c) for p in RESULTS for c in read_run(p).cases]


def test_every_committed_tokens_test_name_is_built_and_parsed_back() -> None:
    """A pp / tg / pp+tg case's name is `testnames.name` of its workload, and a pp or tg
    name parses back to the workload's kind, tokens and depth."""
    tokens = [(p, c) for p, c in CASES if c.workload_kind in ("pp", "tg", "pp+tg")]
    assert len(tokens) > 100 and any((c.workload or {}).get("depth") for _, c in tokens)
    for path, case in tokens:
        w = case.workload or {}
        depth = w.get("depth") or 0
        assert testnames.name(w["n_prompt"], w["n_gen"], depth) == case.test, path
        n = w["n_prompt"] if case.workload_kind == "pp" else w["n_gen"]
        assert testnames.parse(case.test) == (case.workload_kind, n, depth), path
        assert testnames.split_depth(case.test)[1] == (depth or None), path


def test_only_single_pp_or_tg_names_parse() -> None:
    others = {c.test for _, c in CASES if c.workload_kind not in ("pp", "tg")}
    assert {"chat", "serve-c1"} & others and all(testnames.parse(t) is None for t in others)
    assert testnames.parse("pp512+tg128 @ d4096") is None
    assert testnames.split_depth("pp512+tg128 @ d4096") == ("pp512+tg128", 4096)


def test_where_a_case_ran_is_the_frames_device_kind() -> None:
    """The DataFrame, the end-of-run table and the community checks read one answer."""
    df = load_results(RESULTS)
    kinds = [facts.device_kind(c) for _, c in CASES]
    assert kinds == list(df["device_kind"])
    assert {"gpu", "cpu", "unknown"} <= set(kinds)
    for (_, case), kind in zip(CASES, kinds):
        assert facts.ran_on_gpu(case) == (kind == "gpu")
        assert facts.ran_on_gpu(case.to_json()) == facts.ran_on_gpu(case)


def test_placement_kind_reads_device_kind_first_then_offloaded_layers() -> None:
    assert facts.placement_kind({"device_kind": "cpu", "layers_offloaded": 5}) == "cpu"
    assert facts.placement_kind({"layers_offloaded": 5}) == "gpu"
    assert facts.placement_kind({"layers_offloaded": 0}) == "cpu"
    assert facts.placement_kind(None) == "cpu"


def test_decode_and_prompt_figures_come_from_distinct_workloads() -> None:
    kinds = {c.workload_kind for _, c in CASES}
    assert {k for k in kinds if facts.gives_decode(k)} == {"tg", "chat"}
    assert {k for k in kinds if facts.gives_prompt(k)} == {"pp"}


@pytest.mark.parametrize("name", ["smollm2-cpu.json", "smollm2-cpu.jsonl"])
def test_backend_of_llama_bench_files_and_of_runs_is_one_reading(name: str) -> None:
    text = (DATA / "llama-bench" / name).read_text(encoding="utf-8")
    rows = json.loads(text) if name.endswith(".json") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    assert {backend_of(backends_of(r)) for r in rows} == {"cpu"}
    envs = [e for e in (read_run(p).env for p in RESULTS)
            if e.get("llama_cpp_system_info") and not e.get("imported")]
    assert {e["backend"] for e in envs} == {"cpu", "cuda"}
    for env in envs:          # what the run decided from its devices and system info
        devices = " ".join(f"{d.get('name')} {d.get('description')}"
                           for d in env.get("devices") or [] if d.get("type") != "cpu")
        assert backend_in(f"{devices} | {env['llama_cpp_system_info']}") == env["backend"]
    assert backend_in("CUDA0 NVIDIA H200 | CPU : AVX2 = 1") == "cuda"
    assert backend_in("MTL,BLAS") == "metal" and backend_in("CPU") == "cpu"


def test_the_gpus_of_every_committed_case() -> None:
    """`gpus_used` on every committed result: a GPU case names the one GPU it ran on (the
    committed runs are one-GPU runs), a CPU case none; and on one of them re-read as a
    two-GPU llama-bench run would record it, what was asked of llama.cpp wins over the
    GPUs NVML saw the process on (a process holds a context on every GPU it can see)."""
    seen = 0
    for path, case in CASES:
        gpus = facts.gpus_used(case)
        nv = (case.telemetry or {}).get("nvidia") or {}
        if facts.ran_on_gpu(case) and str(nv.get("selection")).startswith("devices where"):
            assert gpus is not None and len(gpus) == 1, (path, case.index)
            seen += 1
        elif not facts.ran_on_gpu(case):
            assert gpus is None, (path, case.index)
    assert seen > 10
    path, case = next((p, c) for p, c in CASES if (c.telemetry or {}).get("nvidia", {})
                      .get("devices") and c.engine.get("kind") == "llama-cpp-python")
    doc = json.loads(json.dumps(case.to_json()))
    doc["placement"].pop("per_device", None)
    doc["engine"].update(kind="llama-bench", devices=["CUDA0", "CUDA1"])
    assert facts.gpus_used(doc) == ["CUDA0", "CUDA1"]
    doc["engine"].update(split_mode="none", main_gpu=1)
    assert facts.gpus_used(doc) == ["GPU 1"]

"""benchkit's llama-bench export read by llama.cpp's own tool: `scripts/compare-llama-bench.py`
from the llama.cpp source the installed llama-cpp-python vendors, run unchanged on the
export of a real run of llama-bench, the in-process engine and llama-server on SmolLM2.

The script joins rows of a baseline and a compare build on every setting it keys on
(cpu_info, gpu_info, backends, model_filename, model_type, threads, batch sizes, cache
types, flash attention, the test...) and prints one table row per setting combination
and test. Given the one build of all three engines as both baseline and compare, it
prints exactly one row per test when, and only when, every engine's rows carry the
same build commit, the same `model_type` (llama.cpp's model description) and the same
settings: a row that did not line up would be a row of its own. Each row's figure is then
the mean of the engines' avg_ts, which the test computes from the export itself.

The script needs GitPython and tabulate (the `test` extra); without them it is skipped,
saying so.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_benchkit

ENGINES = ("llama-cpp-python", "llama-bench", "llama-server")
SUITE = """\
name: compare-llama-bench
models:
  - path: {model}
engines: [llama-cpp-python, llama-bench, llama-server]
engine:
  n_threads: 1
workloads:
  - pp: 16
  - tg: 8
warmup: 1
iterations: 2
"""


@pytest.fixture(scope="module")
def compare_script(llama_tools: dict[str, Path]) -> Path:
    """compare-llama-bench.py of the vendored llama.cpp the tools were built from."""
    from benchkit.engines.llama_cpp.build import source_dir, wheel_build

    missing = [m for m in ("git", "tabulate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"compare-llama-bench.py needs GitPython and tabulate (pip install "
                    f"'benchkit[test]'); missing: {', '.join(missing)}")
    script = source_dir(wheel_build().version) / "scripts" / "compare-llama-bench.py"
    if not script.is_file():
        pytest.skip(f"the vendored llama.cpp has no {script.name}")
    return script


def test_compare_llama_bench_lines_the_engines_up(compare_script: Path, smollm2_model: Path,
                                                  tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(model=smollm2_model), encoding="utf-8")
    run = run_benchkit("run", str(suite), "-o", str(tmp_path / "results"))
    assert run.returncode == 0, run.stderr[-3000:]
    [result] = sorted((tmp_path / "results").glob("*.json"))
    export = run_benchkit("report", str(result), "--format", "llama-bench-json",
                          "-o", str(tmp_path / "export"))
    assert export.returncode == 0, export.stderr
    rows = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    doc = json.loads(result.read_text(encoding="utf-8"))
    assert [c["engine"]["kind"] for c in doc["cases"]] == [e for e in ENGINES for _ in "pt"]
    commits = {r["build_commit"] for r in rows}
    types = {r["model_type"] for r in rows}
    assert len(rows) == 6 and len(commits) == 1 and len(types) == 1, (commits, types)
    [commit], [model_type] = commits, types
    assert commit != "unknown" and model_type == "llama 256M Q4_1"   # llama_model_desc's
    table = subprocess.run([sys.executable, str(compare_script), "-t", "llama-bench", "-i",
                            str(tmp_path / "export.json"), "-b", commit, "-c", commit],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert table.returncode == 0, table.stderr
    lines = [ln for ln in table.stdout.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert head[:2] == ["CPU", "Model"] and head[-3:] == [f"t/s {commit}"] * 2 + ["Speedup"]
    assert [r[head.index("Test")] for r in body] == ["pp16", "tg8"], table.stdout
    for r in body:
        test = r[head.index("Test")]
        mean = sum(x["avg_ts"] for x in rows if (x["n_prompt"], x["n_gen"]) ==
                   ((16, 0) if test == "pp16" else (0, 8))) / len(ENGINES)
        assert r[1] == model_type and r[-1] == "1.00"
        assert float(r[-3]) == pytest.approx(mean, abs=0.006), (test, r, mean)

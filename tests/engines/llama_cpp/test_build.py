"""`benchkit engines build` / `engines list` and how engines find llama.cpp's tools.

On the real build (scripts/test.sh runs `benchkit engines build` first; the `llama_tools`
fixture builds when it is missing): the cache layout and manifest, the commit read from
the vendored source, `--version` parsing, and the order in which a tool is looked for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchkit.engines.llama_cpp import build
from benchkit.core.errors import BenchkitError
from conftest import run_benchkit


def _manifest(tools: dict[str, Path]) -> dict:
    return json.loads((tools["llama-bench"].parent.parent / build.MANIFEST).read_text())


def test_build_is_cached_and_says_where(llama_tools: dict[str, Path]) -> None:
    proc = run_benchkit("engines", "build")
    assert proc.returncode == 0, proc.stderr
    bin_dir = Path(proc.stdout.strip())
    assert "already built" in proc.stderr
    assert {p.name for p in bin_dir.iterdir()} >= set(build.TOOLS)
    manifest = json.loads((bin_dir.parent / build.MANIFEST).read_text())
    wheel = build.wheel_build()
    assert manifest["backend"] == wheel.backend
    assert manifest["llama_cpp_python"] == wheel.version
    assert bin_dir.parent.name == f"{manifest['llama_cpp_commit'][:7]}-{wheel.backend}"
    assert "-DLLAMA_BUILD_SERVER=ON" in manifest["cmake_args"]
    assert bin_dir.parent.parent == build.tools_root()


def test_commit_read_from_the_vendored_source(llama_tools: dict[str, Path]) -> None:
    manifest = _manifest(llama_tools)
    root = Path(manifest["source"])
    commit = build.llama_cpp_commit(root)
    assert commit == manifest["llama_cpp_commit"]
    if shutil.which("git"):
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True)
        if head.returncode == 0:
            assert head.stdout.strip() == commit


def test_tool_version_parses_llama_cpp_build(llama_tools: dict[str, Path]) -> None:
    manifest = _manifest(llama_tools)
    for name, path in llama_tools.items():
        v = build.tool_version(path)
        assert v["build_commit"] == manifest["llama_cpp_commit"][:len(v["build_commit"])], name
        assert len(v["build_commit"]) >= 7
        assert isinstance(v["build_number"], int)
        assert v["compiler"] and v["target"], v


def test_tool_version_of_something_else_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(BenchkitError, match="printed no llama.cpp version"):
        build.tool_version(shutil.which("true") or "/bin/true")


def test_find_tool_order(llama_tools: dict[str, Path], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    real = llama_tools["llama-bench"]
    path_dir, env_dir = tmp_path / "path", tmp_path / "env"
    for d in (path_dir, env_dir):
        d.mkdir()
        (d / "llama-bench").symlink_to(real)
    monkeypatch.setenv("PATH", f"{path_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BENCHKIT_LLAMA_BENCH", str(env_dir / "llama-bench"))
    assert build.find_tool("llama-bench", str(real)) == real               # explicit
    assert build.find_tool("llama-bench") == env_dir / "llama-bench"        # then the env var
    monkeypatch.delenv("BENCHKIT_LLAMA_BENCH")
    assert build.find_tool("llama-bench") == path_dir / "llama-bench"       # then PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert build.find_tool("llama-bench") == real                           # then the cache


def test_missing_tool_names_engines_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("BENCHKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCHKIT_LLAMA_SERVER", raising=False)
    with pytest.raises(BenchkitError, match="benchkit engines build"):
        build.find_tool("llama-server")
    with pytest.raises(BenchkitError, match="binary not found"):
        build.find_tool("llama-server", str(tmp_path / "nope"))
    monkeypatch.setenv("BENCHKIT_LLAMA_SERVER", str(tmp_path / "nope"))
    with pytest.raises(BenchkitError, match=r"\[BENCHKIT_LLAMA_SERVER\].*binary not found"):
        build.find_tool("llama-server")


def test_wheel_backend_from_library_names() -> None:
    assert build._lib_stem("libggml-cuda.so.0.9.4") == "ggml-cuda"
    assert build._lib_stem("ggml-vulkan.dll") == "ggml-vulkan"
    assert build._lib_stem("libggml-metal.dylib") == "ggml-metal"
    wheel = build.wheel_build()
    stems = {build._lib_stem(n) for n in wheel.libraries}
    expected = [b for s, (b, _) in build.BACKENDS.items() if s in stems and b != "blas"]
    assert wheel.backend.split("-")[0] == (expected[0] if expected else "cpu")
    assert ("-DGGML_CUDA=ON" in wheel.cmake_args) == ("ggml-cuda" in stems)


def test_bad_source_is_one_error_line(tmp_path: Path) -> None:
    proc = run_benchkit("engines", "build", "--source", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path} [--source]: "
                                                           "not llama.cpp source")


def test_engines_list(llama_tools: dict[str, Path]) -> None:
    proc = run_benchkit("engines", "list")
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split("\nllama-bench: ", 1)[1].split("\n\n", 1)[0]
    assert block.startswith("C++ benchmark tool, same llama.cpp backend")
    assert "usable: yes" in block
    version = build.tool_version(llama_tools["llama-bench"])
    assert (f"llama-bench: {llama_tools['llama-bench']} (llama.cpp {version['version']}, build "
            f"{version['build_number']}, commit {version['build_commit']}, built with ") in block
    for setting in ("n_gpu_layers = -1", "binary = (default): llama-bench binary; default: "
                    "$BENCHKIT_LLAMA_BENCH, PATH", "args = (default)", "flash_attn = 'auto'"):
        assert setting in block
    for kind in ("llama-cpp-python", "llama-server", "openai", "ollama"):
        assert f"\n{kind}" in "\n" + proc.stdout


def test_engines_list_says_why_not(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{Path(sys.executable).parent}",
           "BENCHKIT_CACHE": str(tmp_path / "cache")}
    env.pop("BENCHKIT_LLAMA_BENCH", None)
    proc = run_benchkit("engines", "list", env=env)
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split("\nllama-bench: ", 1)[1].split("\n\n", 1)[0]
    assert "usable: no: llama-bench not found" in block
    assert "benchkit engines build" in block
    assert "llama-bench: missing" in block

"""The engine registry: every engine module under benchkit/engines/ is found, in order, and a
new engine is one new module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchkit import engines
from benchkit.core.errors import BenchkitError


def test_the_shipped_engines_in_their_order() -> None:
    assert engines.kinds() == ["llama-cpp-python", "llama-bench", "llama-server", "openai",
                               "ollama", "mlx"]
    assert engines.DEFAULT == engines.kinds()[0]


def test_finding_the_engines_loads_no_engine_library() -> None:
    import subprocess

    code = ("import sys; from benchkit import engines; engines.registry(); "
            "print([m for m in ('llama_cpp', 'mlx', 'httpx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_engine_lists_the_registered_ones() -> None:
    with pytest.raises(BenchkitError) as err:
        engines.engine_class("vllm-native")
    for kind in engines.kinds():
        assert kind in err.value.message


def test_a_new_engine_is_one_new_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "extra_engines"
    folder.mkdir()
    (folder / "echo_engine.py").write_text(
        "from benchkit.engines.base import Engine, Options\n"
        "class EchoOptions(Options):\n    pass\n"
        "class Echo(Engine):\n"
        "    kind = 'echo'\n    order = 5\n    layer = 'test engine'\n"
        "    Options = EchoOptions\n    workloads = frozenset({'pp'})\n")
    monkeypatch.setattr(engines, "__path__", [*engines.__path__, str(folder)])
    engines.registry.cache_clear()
    try:
        assert engines.kinds()[:2] == ["llama-cpp-python", "echo"]
        assert engines.engine_class("echo").layer == "test engine"
    finally:
        engines.registry.cache_clear()
        sys.modules.pop("benchkit.engines.echo_engine", None)

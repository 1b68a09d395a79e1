"""The limits of benchkit.core.safeio, preflight and textsafe, at their edges: what is just
inside is accepted unchanged, what is just outside is refused (so a limit cannot drift
into refusing real input, nor into letting the hostile one through)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from benchkit.run import preflight
from benchkit.core import safeio
from benchkit.core.errors import BenchkitError
from benchkit.run.suite import load_suite
from benchkit.core.textsafe import md_cell, md_text, terminal

SUITE = """\
name: edge
models:
  - path: model.gguf
engine:
{engine}
workloads:
{workloads}
warmup: 0
iterations: 1
"""


def _suite(tmp_path: Path, engine: str, workloads: str):
    path = tmp_path / "edge.yaml"
    path.write_text(SUITE.format(engine=engine, workloads=workloads), encoding="utf-8")
    return load_suite(path)


# --- bounded reads -----------------------------------------------------------------------


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x" * 1000)
    assert safeio.read_bounded(path, 1000, "file") == "x" * 1000
    with pytest.raises(BenchkitError, match="too large: 1,000 bytes"):
        safeio.read_bounded(path, 999, "file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_by_stat_and_by_open(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BenchkitError, match="a FIFO, not a regular file"):
        safeio.read_bounded(fifo, 10, "file")
    with pytest.raises(BenchkitError, match="a FIFO, not a regular file"):
        safeio.require_regular_file(fifo, "file")


# --- YAML --------------------------------------------------------------------------------


def test_aliases_within_the_budget_load_as_yaml_loads_them() -> None:
    text = ("base: &b {n_gpu_layers: 0, n_threads: 2}\n"
            "one: {<<: *b, n_ctx: 512}\n"
            "list: &l [1, 2, 3]\n"
            "again: *l\n")
    root, data = safeio.yaml_load_bounded(text, "x.yaml")
    assert data == yaml.safe_load(text)
    assert root.value[1][0].start_mark.line == 1          # the marks are kept


def test_the_node_budget_counts_aliases_expanded() -> None:
    nine = "a: &a [" + ", ".join(["1"] * 9) + "]\n"
    fits = nine + "b: [" + ", ".join(["*a"] * 10) + "]\n"          # about 110 nodes
    assert safeio.yaml_load_bounded(fits, "x.yaml", max_nodes=200)[1]["b"][9] == [1] * 9
    with pytest.raises(BenchkitError, match="more than 100 nodes"):
        safeio.yaml_load_bounded(fits, "x.yaml", max_nodes=100)


def test_nesting_at_the_limit_loads_and_one_deeper_does_not() -> None:
    deep = "[" * 64 + "]" * 64
    assert safeio.yaml_load_bounded(deep, "x.yaml")[1] is not None
    assert safeio.json_loads_bounded(deep, "x.json") is not None
    with pytest.raises(BenchkitError, match="nested deeper than 64"):
        safeio.yaml_load_bounded("[" + deep + "]", "x.yaml")
    with pytest.raises(BenchkitError, match="nested deeper than 64"):
        safeio.json_loads_bounded("[" + deep + "]", "x.json")


# --- preflight ---------------------------------------------------------------------------


def test_a_workload_that_exactly_fits_n_ctx_is_accepted(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "  n_ctx: 192", "  - {pp: 64, tg: 64, depth: 64}\n"
                   "  - chat: {prompt: hi, max_tokens: 191}")
    preflight.check(suite, [])
    over = _suite(tmp_path, "  n_ctx: 192", "  - {pp: 64, tg: 65, depth: 64}")
    with pytest.raises(BenchkitError, match="needs 193 tokens"):
        preflight.check(over, [])


def test_threads_up_to_four_per_core_are_accepted(tmp_path: Path) -> None:
    limit = min(512, 4 * (os.cpu_count() or 1))
    preflight.check(_suite(tmp_path, f"  n_threads: {limit}", "  - tg: 4"), [])
    with pytest.raises(BenchkitError) as exc:
        preflight.check(_suite(tmp_path, f"  n_threads: {limit + 1}", "  - tg: 4"), [])
    assert exc.value.field == "engine.n_threads" and exc.value.line == 5


def test_llama_bench_sizes_its_own_context(tmp_path: Path) -> None:
    path = tmp_path / "lb.yaml"
    path.write_text("name: lb\nmodels:\n  - path: m.gguf\nengines:\n"
                    "  - {kind: llama-bench, n_ctx: 16}\nworkloads:\n  - pp: 64\n",
                    encoding="utf-8")
    preflight.check(load_suite(path), [])      # llama-bench warns that n_ctx is not applied


# --- text --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["![x](http://a/b.png)", "[x](javascript:alert(1))",
                                  "<http://a>", "<img src=x>", "[x][r]\n[r]: http://a"])
def test_markdown_from_untrusted_text_forms_no_link(text: str) -> None:
    import re

    for out in (md_text(text), md_cell(text)):
        assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]", out), out
        assert "<" not in out


def test_plain_text_is_unchanged_by_the_markdown_and_terminal_filters() -> None:
    plain = "SmolLM2-135M-Instruct.Q4_1.gguf, 2 threads: 31.2 ± 0.8 tok/s"
    assert md_text(plain) == plain and md_cell(plain) == plain and terminal(plain) == plain


def test_the_terminal_filter_removes_every_kind_of_escape() -> None:
    hostile = "a\x1b[2Jb\x1b]0;title\x07c\x1bPdcs\x1b\\d\x9b31me\u202ef\rg\x00h"
    assert terminal(hostile) == "abcd31mefgh"
    assert terminal("one\ntwo\tthree", one_line=True) == "one two three"

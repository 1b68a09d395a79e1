"""The catalogue of hostile inputs: its data, what every test of it shares, and its list in
docs/reliability.md.

Each entry is an input a hostile (or unlucky) user gives benchkit: a suite that asks
llama.cpp for what would crash it, a result file with NaN in it, a FIFO where a file
should be, a community file that is a link to /dev/zero, a model name with a Markdown
image in it. Each test asserts what the user sees: exactly one `error:` line naming the
file (and the field where there is one), the right exit code, no traceback, and that
nothing already measured is lost (a refused suite writes no result; a crash fails its
own case only).

The inputs are data (the tables below); the tests live beside the subsystem they try
(tests/run/test_hostile_suites.py, test_hostile_crashes.py, tests/models/
test_hostile_models.py, tests/results/test_hostile_results.py, tests/community/
test_hostile_files.py, tests/core/test_hostile_output.py). docs/reliability.md lists the
inputs, generated from here: `python tests/catalogue_support.py --write-docs` rewrites
the list there, and `test_the_docs_list_every_case` (tests/catalogue) fails when it is out
of date.

Most cases load no model: they run the CLI in this process (capturing its output), so
a hundred of them take seconds. Inputs that would block or exhaust memory if a check
regressed (FIFOs, devices, links to /dev/zero) run in a subprocess with a timeout, and
so do the cases that run llama.cpp (the SmolLM2 fixture, tg 4, one iteration, no warmup).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from catalogue_io import (DISK, DISK_AREA, IMPORT_AREA, IMPORTS, PROJECT_FIFOS, SERVE,
                          SERVE_AREA, SERVE_READERS, SPEC_AREA, SPECS, TERMINAL, serve_case)
from community_support import REPO, standard_result
from conftest import one_error_line

DOCS = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"
HANG_TIMEOUT = 120          # a subprocess that would hang if a check regressed


# --- the catalogue, as data --------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One hostile input: where it goes, what it is, and what the user must see."""

    id: str
    area: str
    what: str
    expect: str               # a piece of the one error line (or of the outcome)
    code: int = 2
    data: Any = None          # what the test needs to build the input
    field: str | None = None  # the [field] the error line must name


SUITE_AREA = "suite file"
PREFLIGHT_AREA = "checked before measuring"
MODEL_AREA = "model file"
RESULT_AREA = "result file"
COMMUNITY_AREA = "community data set"
OUTPUT_AREA = "output hygiene"
CRASH_AREA = "crashes and signals"

GOOD_SUITE = """\
name: hostile
models:
  - path: @MODEL@
workloads:
  - tg: 4
warmup: 0
iterations: 1
"""


def suite_text(**edits: str) -> str:
    """GOOD_SUITE with whole lines replaced: `workloads="  - pp: 0"`, `extra="engine: ..."`."""
    text = GOOD_SUITE
    if "workloads" in edits:
        text = text.replace("  - tg: 4\n", edits["workloads"] + "\n")
    if "extra" in edits:
        text = text.replace("workloads:\n", edits["extra"] + "\nworkloads:\n")
    if "counts" in edits:
        text = text.replace("warmup: 0\niterations: 1\n", edits["counts"] + "\n")
    if "models" in edits:
        text = text.replace("  - path: @MODEL@\n", edits["models"] + "\n")
    return text


def _bomb() -> str:
    """The 'billion laughs': nine levels of nine aliases, 10^9 strings in ~350 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# (id, what, suite text, expected piece of the error line, field)
SUITE_TEXT = [
    ("empty", "an empty file", "", "must be a YAML mapping", None),
    ("syntax", "unclosed flow sequence", "name: x\nmodels: [\n", "not valid YAML", None),
    ("tab-indent", "a tab for indentation", "name: x\nmodels:\n\t- path: a\n",
     "not valid YAML", None),
    ("top-list", "a list, not a mapping", "- a\n- b\n", "must be a YAML mapping", None),
    ("top-scalar", "a bare scalar", "just text\n", "must be a YAML mapping", None),
    ("two-docs", "two YAML documents", GOOD_SUITE + "---\nname: y\n", "not valid YAML", None),
    ("alias-bomb", f"a {len(_bomb())}-byte billion-laughs alias bomb (198 s of CPU before)",
     _bomb(), "aliases expanded", None),
    ("alias-loop", "an alias inside its own anchor", "name: &a [*a]\n", "contains it", None),
    ("deep-flow", "flow sequences nested 100,000 deep", "name: " + "[" * 100_000,
     "nested deeper", None),
    ("deep-block", "block mappings nested 100 deep",
     "".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "v: 1\n",
     "nested deeper", None),
    ("many-nodes", "30,000 workload entries",
     suite_text(workloads="\n".join(f"  - tg: {i + 1}" for i in range(30_000))),
     "more than 20,000 nodes", None),
    ("duplicate-key", "a key given twice", suite_text(counts="warmup: 0\nwarmup: 1\niterations: 1"),
     "duplicate key", "warmup"),
    ("unknown-key", "a misspelt top-level key", suite_text(extra="iteratons: 3"), "unknown key",
     "iteratons"),
    ("no-name", "no name:", GOOD_SUITE.replace("name: hostile\n", ""), "'name'", None),
    ("no-models", "no models:", "name: x\nworkloads:\n  - tg: 4\n", "'models'", None),
    ("no-workloads", "no workloads:", "name: x\nmodels:\n  - path: a.gguf\n", "'workloads'",
     None),
    ("models-empty", "an empty models list", suite_text(models="  []").replace("models:\n  []",
                                                                           "models: []"),
     "non-empty list", "models"),
    ("workloads-empty", "an empty workloads list",
     GOOD_SUITE.replace("workloads:\n  - tg: 4\n", "workloads: []\n"), "non-empty list",
     "workloads"),
    ("model-two-kinds", "a model with both path: and hf:",
     suite_text(models="  - {path: a.gguf, hf: a/b/c.gguf}"), "exactly one of", "models.0"),
    ("model-scalar", "a model entry that is a string", suite_text(models="  - a.gguf"), "mapping",
     "models.0"),
    ("pp-zero", "pp: 0", suite_text(workloads="  - pp: 0"), "positive integer", "workloads.0.pp"),
    ("pp-negative", "pp: -5", suite_text(workloads="  - pp: -5"), "positive integer",
     "workloads.0.pp"),
    ("pp-text", "pp: many", suite_text(workloads="  - pp: many"), "positive integer",
     "workloads.0.pp"),
    ("pp-float", "pp: 1.5", suite_text(workloads="  - pp: 1.5"), "positive integer",
     "workloads.0.pp"),
    ("pp-int32", "pp: 2^31", suite_text(workloads="  - pp: 2147483648"), "positive integer",
     "workloads.0.pp"),
    ("pp-huge", "pp: 10^30", suite_text(workloads="  - pp: 1000000000000000000000000000000"),
     "positive integer", "workloads.0.pp"),
    ("pp-nan", "pp: .nan", suite_text(workloads="  - pp: .nan"), "positive integer",
     "workloads.0.pp"),
    ("tg-empty-list", "tg: []", suite_text(workloads="  - tg: []"), "non-empty list", "workloads.0.tg"),
    ("depth-negative", "depth: -1", suite_text(workloads="  - {tg: 4, depth: -1}"),
     "non-negative", "workloads.0.depth"),
    ("depth-alone", "depth: without pp or tg", suite_text(workloads="  - depth: 128"),
     "one workload per entry",
     "workloads.0"),
    ("chat-empty-prompt", "chat prompt: ''", suite_text(workloads="  - chat: {prompt: ''}"),
     "non-empty", "workloads.0.chat.prompt"),
    ("chat-max-tokens-1", "chat max_tokens: 1", suite_text(workloads="  - chat: {max_tokens: 1}"),
     ">= 2", "workloads.0.chat.max_tokens"),
    ("chat-top-p-0", "chat top_p: 0", suite_text(workloads="  - chat: {top_p: 0}"), "(0, 1]",
     "workloads.0.chat.top_p"),
    ("chat-temperature", "chat temperature: -1",
     suite_text(workloads="  - chat: {temperature: -1}"), ">= 0", "workloads.0.chat.temperature"),
    ("chat-seed", "chat seed: -1", suite_text(workloads="  - chat: {seed: -1}"), "non-negative",
     "workloads.0.chat.seed"),
    ("chat-unknown-key", "chat with an unknown key",
     suite_text(workloads="  - chat: {prompt: hi, tokens: 3}"), "unknown key",
     "workloads.0.chat.tokens"),
    ("workload-mixed", "pp and chat in one entry",
     suite_text(workloads="  - {pp: 8, chat: {prompt: hi}}"), "one workload per entry", "workloads.0"),
    ("workload-empty", "an empty workload entry", suite_text(workloads="  - {}"), "must be one of",
     "workloads.0"),
    ("iterations-zero", "iterations: 0", suite_text(counts="warmup: 0\niterations: 0"),
     "positive integer",
     "iterations"),
    ("iterations-text", "iterations: five", suite_text(counts="warmup: 0\niterations: five"),
     "positive integer",
     "iterations"),
    ("iterations-inf", "iterations: .inf", suite_text(counts="warmup: 0\niterations: .inf"),
     "positive integer",
     "iterations"),
    ("warmup-negative", "warmup: -1", suite_text(counts="warmup: -1\niterations: 1"), "non-negative",
     "warmup"),
    ("ngl-below", "n_gpu_layers: -2", suite_text(extra="engine:\n  n_gpu_layers: -2"),
     "integer >= -1", "engine.n_gpu_layers"),
    ("ngl-1e12", "n_gpu_layers: 10^12", suite_text(extra="engine:\n  n_gpu_layers: 1000000000000"),
     "at most 2147483647", "engine.n_gpu_layers"),
    ("n-ctx-2-32", "n_ctx: 4294967312 (2^32 + 16)", suite_text(extra="engine:\n  n_ctx: 4294967312"),
     "at most 2147483647", "engine.n_ctx"),
    ("n-ctx-zero", "n_ctx: 0", suite_text(extra="engine:\n  n_ctx: 0"), "positive integer",
     "engine.n_ctx"),
    ("n-batch-zero", "n_batch: 0", suite_text(extra="engine:\n  n_batch: 0"), "positive integer",
     "engine.n_batch"),
    ("n-ubatch-2-40", "n_ubatch: 2^40", suite_text(extra="engine:\n  n_ubatch: 1099511627776"),
     "at most 2147483647", "engine.n_ubatch"),
    ("threads-zero", "n_threads: 0", suite_text(extra="engine:\n  n_threads: 0"),
     "positive integer", "engine.n_threads"),
    ("flash-attn", "flash_attn: maybe", suite_text(extra="engine:\n  flash_attn: maybe"),
     "auto, on or off", "engine.flash_attn"),
    ("type-k", "type_k: q3", suite_text(extra="engine:\n  type_k: q3"), "must be one of",
     "engine.type_k"),
    ("use-mmap-text", "use_mmap: 'yes' (text)", suite_text(extra="engine:\n  use_mmap: 'yes'"),
     "true or false", "engine.use_mmap"),
    ("engine-unknown-setting", "a setting no engine has",
     suite_text(extra="engine:\n  n_gpu_layer: 1"), "unknown key", "engine.n_gpu_layer"),
    ("engine-not-mapping", "engine: a list", suite_text(extra="engine: [1, 2]"), "mapping",
     "engine"),
    ("sweep-empty", "n_gpu_layers: [] (an empty sweep)",
     suite_text(extra="engine:\n  n_gpu_layers: []"), "list of such values", "engine.n_gpu_layers"),
    ("engines-unknown-kind", "engines: [vllm]", suite_text(extra="engines: [vllm]"),
     "engine name", "engines.0"),
    ("engines-entry-unknown-key", "an engines entry with an unknown key",
     suite_text(extra="engines:\n  - {kind: llama-cpp-python, color: red}"), "unknown key",
     "engines.0.color"),
]

# (id, what, how to make the suite path, expected piece, needs a subprocess)
SUITE_FILES = [
    ("missing", "a suite path that does not exist", "missing", "does not exist", False),
    ("directory", "a folder as the suite", "directory", "directory", False),
    ("fifo", "a FIFO as the suite (would block forever)", "fifo", "FIFO", True),
    ("dev-zero", "/dev/zero as the suite (never ends)", "devzero", "character device", True),
    ("too-large", "a 2 MiB suite", "large", "too large", False),
    ("fifty-mb", "a 50 MB suite (5 GB of memory before)", "sparse", "too large", False),
    ("not-utf8", "a suite in Latin-1", "latin1", "not UTF-8", False),
]

# (id, what, CLI arguments after the suite, expected piece, field)
SUITE_OPTIONS = [
    ("iterations-option-zero", "--iterations 0", ["--iterations", "0"], "positive integer",
     "--iterations"),
    ("warmup-option-negative", "--warmup -1", ["--warmup", "-1"], "", "--warmup"),
    ("engine-option-unknown", "--engine vllm", ["--engine", "vllm"], "unknown engine",
     "--engine"),
]

# (id, what, suite text, expected piece, field): refused after the headers are read,
# before anything loads; without the checks, most of these crashed or ran something else
PREFLIGHT = [
    ("ctx-pp", "n_ctx 16 with pp 64 (a GGML_ASSERT abort before)",
     suite_text(extra="engine:\n  n_ctx: 16", workloads="  - pp: 64"), "cannot hold pp64",
     "engine.n_ctx"),
    ("ctx-sweep", "n_ctx [2048, 16] with tg 128 (one configuration cannot fit)",
     suite_text(extra="engine:\n  n_ctx: [2048, 16]", workloads="  - tg: 128"),
     "cannot hold tg128", "engine.n_ctx"),
    ("ctx-depth", "depth 4096 + tg 128 in n_ctx 2048",
     suite_text(extra="engine:\n  n_ctx: 2048", workloads="  - {tg: 128, depth: 4096}"),
     "depth 4,096", "engine.n_ctx"),
    ("ctx-chat", "a chat of max_tokens 64 in n_ctx 16",
     suite_text(extra="engine:\n  n_ctx: 16", workloads="  - chat: {prompt: hi, max_tokens: 64}"),
     "chat max_tokens 64", "engine.n_ctx"),
    ("ctx-own-entry", "n_ctx 8 in an engines entry with pp 64",
     suite_text(extra="engines:\n  - {kind: llama-cpp-python, n_ctx: 8}", workloads="  - pp: 64"),
     "cannot hold pp64", "engines.0.n_ctx"),
    ("ctx-beyond-int32", "pp 2^31-1 + tg 2^31-1 with n_ctx unset (a silent wrap before)",
     suite_text(workloads="  - {pp: 2147483647, tg: 2147483647}"), "32-bit n_ctx",
     "workloads.0"),
    ("threads-100000", "n_threads 100000 (a segfault before)",
     suite_text(extra="engine:\n  n_threads: 100000"), "GGML_MAX_N_THREADS", "engine.n_threads"),
    ("threads-sweep", "n_threads [1, 100000] in an engines entry",
     suite_text(extra="engines:\n  - {kind: llama-cpp-python, n_threads: [1, 100000]}"),
     "GGML_MAX_N_THREADS", "engines.0.n_threads"),
    ("threads-513", "n_threads 513", suite_text(extra="engine:\n  n_threads: 513"),
     "limit of 512", "engine.n_threads"),
    ("warmup-auto-llama-bench", "warmup: auto with the llama-bench engine (a TypeError "
     "traceback as each case's error before)",
     suite_text(extra="engines: [llama-bench]", counts="warmup: auto\niterations: 1"),
     "warmup: auto cannot apply to llama-bench", "warmup"),
    ("threads-per-core", "n_threads far beyond the machine's cores",
     suite_text(extra="engine:\n  n_threads: @MANY_THREADS@"), "logical cores", "engine.n_threads"),
]

# (id, what, how the model file is made, expected piece, field)
MODEL_FILES = [
    ("model-missing", "a model path that does not exist", "missing", "not found",
     "models.0.path"),
    ("model-directory", "a folder as the model", "directory", "not a file", "models.0.path"),
    ("model-fifo", "a FIFO as the model", "fifo", "not a file", "models.0.path"),
    ("model-text", "a text file as the model", "text", "not a GGUF file", "models.0.path"),
    ("model-empty", "an empty model file", "empty", "not a GGUF file", "models.0.path"),
    ("model-truncated", "the first MiB of a real GGUF", "truncated", "GGUF", "models.0.path"),
    ("model-sha256", "a sha256 the file does not have", "sha256", "sha256 mismatch",
     "models.0.sha256"),
    ("model-package", "a package that is not installed", "package", "", "models.0.package"),
    ("blocks-1e6", "a GGUF header with 10^6 blocks (a GGML_ASSERT abort before)", "blocks:1000000",
     "1,000,000 blocks", "models.0.path"),
    ("blocks-0", "a GGUF header with 0 blocks", "blocks:0", "0 blocks", "models.0.path"),
    ("blocks-513", "a GGUF header with 513 blocks", "blocks:513", "513 blocks",
     "models.0.path"),
]


# --- result files ------------------------------------------------------------------------


SENTINEL, SENTINEL_INT = 31415.926535, 271828182845   # replaced in the JSON text


def _it(doc: dict, key: str, value: Any, case: int = 0, it: int = 0) -> dict:
    doc["cases"][case]["iterations"][it][key] = value
    return doc


def _summary(doc: dict, key: str, value: Any) -> dict:
    doc["cases"][0]["summary"][key] = value
    return doc


def _deep_inside(doc: dict) -> dict:
    value: Any = 1
    for _ in range(70):
        value = [value]
    doc["cases"][0]["placement"]["extra"] = value
    return doc


# (id, what, change to the real result: doc -> doc, or a text/bytes maker; expected; field)
RESULT_DOCS: list[tuple[str, str, Callable[[dict], Any], str, str | None]] = [
    ("nan", "NaN as an iteration's tok/s", lambda d: _it(d, "tps", float("nan")), "NaN",
     "cases.0.iterations.0.tps"),
    ("infinity", "Infinity as a median", lambda d: _summary(d, "tps_median", float("inf")),
     "Infinity", "cases.0.summary.tps_median"),
    ("minus-infinity", "-Infinity as seconds", lambda d: _it(d, "seconds", float("-inf")),
     "Infinity", "cases.0.iterations.0.seconds"),
    ("negative-tps", "a negative tok/s", lambda d: _it(d, "tps", -5.0), "",
     "cases.0.iterations.0.tps"),
    ("absurd-tps", "10^30 tok/s", lambda d: _it(d, "tps", 1e30), "not a plausible",
     "cases.0.iterations.0.tps"),
    ("negative-seconds", "a negative iteration time", lambda d: _it(d, "seconds", -1.0), "",
     "cases.0.iterations.0.seconds"),
    ("absurd-seconds", "an iteration of 10^12 s", lambda d: _it(d, "seconds", 1e12),
     "not a plausible", "cases.0.iterations.0.seconds"),
    ("tps-text", "tok/s as text", lambda d: _it(d, "tps", "fast"), "",
     "cases.0.iterations.0.tps"),
    ("median-text", "a median as text", lambda d: _summary(d, "tps_median", "fast"),
     "must be a number", "cases.0.summary.tps_median"),
    ("median-negative", "a negative median", lambda d: _summary(d, "tps_median", -1.0),
     "negative", "cases.0.summary.tps_median"),
    ("tokens-2-40", "2^40 tokens in an iteration", lambda d: _it(d, "tokens", 2**40),
     "not a plausible", "cases.0.iterations.0.tokens"),
    ("size-negative", "a negative model size",
     lambda d: (d["cases"][0]["model"].__setitem__("size_bytes", -1), d)[1], "negative",
     "cases.0.model.size_bytes"),
    ("load-negative", "a negative load time",
     lambda d: (d["cases"][0].__setitem__("load", {"seconds": -3.0}), d)[1], "negative",
     "cases.0.load.seconds"),
    ("buffers-text", "placement buffers as text",
     lambda d: (d["cases"][0]["placement"].__setitem__("buffers", "x"), d)[1], "must be a list",
     "cases.0.placement.buffers"),
    ("summary-list", "a summary that is a list",
     lambda d: (d["cases"][0].__setitem__("summary", []), d)[1], "", "cases.0.summary"),
    ("case-text", "a case that is a string", lambda d: (d.__setitem__("cases", ["x"]), d)[1],
     "", "cases.0"),
    ("cases-text", "cases that are a string", lambda d: (d.__setitem__("cases", "x"), d)[1],
     "", "cases"),
    ("deep-field", "a field nested 70 deep", _deep_inside, "nested deeper", None),
    ("other-format", "another tool's JSON", lambda d: (d.__setitem__("format", "x"), d)[1],
     "not a benchkit result", "format"),
    ("version-99", "schema_version 99",
     lambda d: (d.__setitem__("schema_version", 99), d)[1], "schema_version 99",
     "schema_version"),
    ("top-list", "a JSON list", lambda d: b"[1, 2, 3]", "not a benchkit result", "format"),
    ("top-string", "a JSON string", lambda d: b'"benchkit-result"', "not a benchkit result",
     "format"),
    ("not-json", "text that is not JSON", lambda d: b"M4 Max: 198 tok/s\n", "not JSON", None),
    ("empty", "an empty file", lambda d: b"", "not JSON", None),
    ("exponent-400", "1e400 for seconds",
     lambda d: json.dumps(_it(d, "seconds", SENTINEL)).replace(str(SENTINEL), "1e400").encode(),
     "Infinity", "cases.0.iterations.0.seconds"),
    ("digits-5000", "an integer of 5,000 digits", lambda d: json.dumps(
        _it(d, "tokens", SENTINEL_INT)).replace(str(SENTINEL_INT), "9" * 5000).encode(),
     "digits", None),
    ("nested-200000", "JSON nested 200,000 deep (RecursionError before)",
     lambda d: b"[" * 200_000 + b"]" * 200_000, "nested deeper", None),
    ("not-utf8", "Latin-1 bytes", lambda d: json.dumps(d).replace(
        '"standard"', '"st\\u00e4ndard"').encode().replace(b"\\u00e4", b"\xe4"), "not UTF-8",
     None),
]

# (id, what, how the path is made, expected piece, needs a subprocess)
RESULT_PATHS = [
    ("missing", "a result path that does not exist", "missing", "no such", False),
    ("directory-empty", "an empty folder", "directory", "", False),
    ("sixty-five-mb", "a 65 MiB file", "sparse", "too large", False),
    ("fifo", "a FIFO as the result (would block forever)", "fifo", "FIFO", True),
    ("dev-zero", "/dev/zero as the result (never ends)", "devzero", "character device", True),
    ("link-dev-zero", "a link to /dev/zero", "link-devzero", "", True),
]

READERS = ("validate", "compare", "report", "project", "load_results")
# validate and project read a folder as the results in it: an empty one is no error there
RESULT_PATH_CASES = [(r, c) for r in READERS for c in RESULT_PATHS
                     if not (c[2] == "directory" and r in ("validate", "project"))]

COMMUNITY = [
    ("link-elsewhere", "a link under community/ to a result elsewhere", "symbolic link"),
    ("link-dev-zero", "a link under community/ to /dev/zero (exhausted memory before)",
     "symbolic link"),
    ("fifo", "a FIFO under community/", "FIFO"),
    ("linked-folder", "a result reached through a linked folder", "linked folder"),
    ("cpu-1e6", "10^6 tok/s decode on a CPU", "physically impossible"),
    ("unknown-gpu-1e6", "10^6 tok/s decode on a GPU the database does not know",
     "fastest chip in the database"),
    ("known-gpu-40000", "40,000 tok/s decode on an H100", "physically impossible"),
    ("near-duplicate", "a duplicate with one iteration changed by one part in 10^9",
     "near-duplicate"),
    ("exact-duplicate", "the same measurements under another run id", "duplicate"),
    ("reversed-duplicate", "the same measurements with every case's iterations reversed "
     "(accepted before)", "duplicate"),
    ("long-name", "a 300-character model name (a traceback in submit before)", "written"),
    ("site-nan", "a NaN result among good ones in the site build (stopped the site before)",
     "skipped"),
]

# (id, what, what must not be in the output (a regex), command, in words)
OUTPUT = [
    ("report-image", "a Markdown image in a model name", r"!\[[^\]]*(?<!\\)\]\(http", "report",
     "the Markdown report has no live image; the text is shown"),
    ("report-js-link", "a javascript: link in a failed case's error",
     r"(?<!\\)\]\(javascript:", "report", "the Markdown report has no live link"),
    ("report-autolink", "an autolink in the suite description", r"<http://", "report",
     "the Markdown report has no autolink"),
    ("compare-escapes", "terminal escape sequences in a model name", "\x1b", "compare",
     "compare prints no escape sequence"),
    ("validate-escapes", "terminal escape sequences in an error message", "\x1b", "validate",
     "validate prints no escape sequence"),
    ("error-newline", "a newline in a path quoted by an error", "\n", "run",
     "still exactly one error line"),
]

# (id, input, what the user sees)
CRASHES = [
    ("threads-crash", "n_threads [1, 100000] with the checks switched off (a segfault)",
     "exit 1, one error line; the 100000-thread case failed with the signal, the other "
     "measured, the run complete"),
    ("blocks-crash", "models [good, 10^6 blocks, good] with the checks switched off "
     "(a GGML_ASSERT abort)", "exit 1, one error line; the middle model's case failed, the "
     "third model measured"),
    ("ctx-crash", "n_ctx [16, 2048] with pp 64, the checks switched off",
     "exit 1, one error line; the engine fails the n_ctx 16 case (needs a context of 64 "
     "tokens), the other is measured"),
    ("chat-too-long", "a chat prompt longer than n_ctx 32, then tg 4",
     "exit 1, one error line; the chat case failed (needs a context of N tokens), tg 4 "
     "measured"),
    ("sigterm", "SIGTERM mid-run", "status interrupted, interrupted_by SIGTERM, finished_at "
     "set, finished cases kept"),
    ("sighup", "SIGHUP mid-run", "status interrupted, interrupted_by SIGHUP, finished cases "
     "kept"),
    ("sigint", "SIGINT mid-run", "status interrupted, the case in progress kept as partial"),
    ("resume", "--resume on a run interrupted by SIGTERM", "status complete in the same "
     "file, the finished cases unchanged, every test measured once"),
]

INSPECT = [
    ("inspect-fifo", "models inspect on a FIFO (hung before)", "fifo", "FIFO"),
    ("inspect-dev-zero", "models inspect on /dev/zero", "devzero", "character device"),
    ("inspect-empty", "models inspect on an empty file", "empty", "not a GGUF file"),
    ("inspect-missing", "models inspect on a missing file", "missing", "does not exist"),
    ("inspect-text", "models inspect on a text file", "text", "not a GGUF file"),
]


def catalogue() -> list[Entry]:
    """Every case of this file, in the order of docs/reliability.md."""
    out = [Entry(i, SUITE_AREA, w, e, field=f) for i, w, _, e, f in SUITE_TEXT]
    out += [Entry(i, SUITE_AREA, w, e) for i, w, _, e, _ in SUITE_FILES]
    out += [Entry(i, SUITE_AREA, w, e, field=f) for i, w, _, e, f in SUITE_OPTIONS]
    out += [Entry(i, PREFLIGHT_AREA, w, e, field=f) for i, w, _, e, f in PREFLIGHT]
    out += [Entry(i, MODEL_AREA, w, e, field=f) for i, w, _, e, f in MODEL_FILES]
    out += [Entry(i, MODEL_AREA, w, e) for i, w, _, e in INSPECT]
    for reader in READERS:
        out += [Entry(f"{reader}-{i}", RESULT_AREA, f"{reader}: {w}", e, field=f)
                for i, w, _, e, f in RESULT_DOCS]
    out += [Entry(f"{reader}-{i}", RESULT_AREA, f"{reader}: {w}", e)
            for reader, (i, w, _, e, _) in RESULT_PATH_CASES]
    out.append(Entry("report-prompt-only", RESULT_AREA, "report: a result of prompt tests "
                     "only (a traceback before)", "the report is written", code=0))
    out += [Entry(i, COMMUNITY_AREA, w, e, code=0 if e in ("written", "skipped") else 2)
            for i, w, e in COMMUNITY]
    out += [Entry(i, OUTPUT_AREA, w, said) for i, w, _, _, said in OUTPUT]
    out += [Entry(i, OUTPUT_AREA, f"`{cmd}`: {w}", "no escape sequence reaches the terminal")
            for i, w, cmd in TERMINAL]
    out += [Entry(i, CRASH_AREA, w, e) for i, w, e in CRASHES]
    out += [Entry(i, IMPORT_AREA, w, e, code=c, field=f) for i, w, _, _, e, f, c in IMPORTS]
    out += [Entry(i, SPEC_AREA, f"project --chip-spec: {w}", e) for i, w, _, e in SPECS]
    out += [Entry(i, SPEC_AREA, f"project: {w} (blocked for ever before)", e)
            for i, w, _, e in PROJECT_FIFOS]
    at = serve_case()
    for reader in SERVE_READERS:
        out += [Entry(f"{reader}-{i}", SERVE_AREA, f"{reader}: {w}", e,
                      field=f"cases.{at}.{f}") for i, w, _, _, e, f in SERVE]
    out += [Entry(i, DISK_AREA, w, e, code=1) for i, w, e in DISK]
    for name in PARTS:
        out += part(name).ENTRIES
    return out


# Parts of the catalogue kept beside it, one module per subsystem: tests/catalogue/NAME.py,
# each with its ENTRIES (and the data its tests take).
PARTS = ("run", "engines", "serve")


def part(name: str) -> ModuleType:
    """tests/catalogue/NAME.py, loaded by its path (`catalogue` is also a PyPI package's
    name, which an import by name could find first)."""
    key = f"catalogue_part_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, Path(__file__).resolve().parent / "catalogue" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


# --- running the CLI ---------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`benchkit ARGS` in this process, as the entry point runs it: exit code and output.

    Any exception but the SystemExit the entry point always ends with fails the test
    (that is the traceback a user would have seen)."""
    from benchkit.cli.main import main

    capsys.readouterr()
    saved = sys.argv
    sys.argv = ["benchkit", *args]
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1, out, err)


def refused(proc: subprocess.CompletedProcess[str], file: str | Path | None, expect: str,
            field: str | None = None) -> str:
    """Exactly one `error:` line (exit 2, no traceback), naming the file and the field."""
    line = one_error_line(proc)
    if file is not None:
        assert str(file) in line, line
    if field is not None:
        assert f"[{field}]" in line, line
    assert expect in line, line
    assert "\x1b" not in proc.stderr
    return line




# --- fixtures: the model, its hostile copies, the real result -------------------------------


@pytest.fixture(scope="module")
def real_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return standard_result(tmp_path_factory)


@pytest.fixture(scope="module")
def patched_models(smollm2_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Copies of SmolLM2 with one header value changed, made once for the module."""
    folder = tmp_path_factory.mktemp("models")
    data = smollm2_model.read_bytes()
    out: dict[str, Path] = {}
    for blocks in (0, 513, 1_000_000, 31):
        path = folder / f"blocks-{blocks}.gguf"
        path.write_bytes(patch_u32(data, "llama.block_count", blocks))
        out[f"blocks:{blocks}"] = path
    truncated = folder / "truncated.gguf"
    truncated.write_bytes(data[: 1 << 20])
    out["truncated"] = truncated
    return out


def patch_u32(data: bytes, key: str, value: int) -> bytes:
    """The GGUF bytes with the UINT32 metadata value of `key` replaced."""
    raw = key.encode()
    needle = struct.pack("<Q", len(raw)) + raw
    at = data.find(needle)
    assert at > 0, key
    at += len(needle)
    assert struct.unpack_from("<I", data, at)[0] == 4, "not a UINT32 value"   # GGUF type 4
    out = bytearray(data)
    struct.pack_into("<I", out, at + 4, value)
    return bytes(out)


def special_path(kind: str, folder: Path, payload: bytes = b"") -> Path:
    """A path of one hostile kind: missing, directory, FIFO, /dev/zero, a link to it, a
    sparse file of 50 to 65 MiB, or a regular file holding `payload`."""
    path = folder / f"{kind}.input"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        return Path("/dev/zero")
    elif kind == "link-devzero":
        path.symlink_to("/dev/zero")
    elif kind == "sparse":
        with open(path, "wb") as fh:
            fh.truncate(65 << 20)
    else:
        path.write_bytes(payload)
    return path


def needs_posix(kind: str) -> None:
    if kind in ("fifo", "devzero", "link-devzero") and not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs and /dev/zero are POSIX")


# --- suites ------------------------------------------------------------------------------


def write_suite(tmp_path: Path, text: str, model: Path) -> Path:
    many = str(4 * (os.cpu_count() or 1) + 1)
    path = tmp_path / "hostile.yaml"
    path.write_text(text.replace("@MODEL@", str(model)).replace("@MANY_THREADS@", many),
                    encoding="utf-8")
    return path


def no_result(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), "a refused suite writes nothing"



# --- the catalogue and its documentation ---------------------------------------------------


def markdown() -> str:
    """The catalogue as docs/reliability.md lists it."""
    entries = catalogue()
    lines = [f"{len(entries)} cases.", ""]
    for area in dict.fromkeys(e.area for e in entries):
        mine = [e for e in entries if e.area == area]
        lines += [f"### {area[0].upper()}{area[1:]} ({len(mine)})", "",
                  "| case | input | what the user sees |", "|---|---|---|"]
        for e in mine:
            seen = _seen(e)
            lines.append(f"| `{e.id}` | {_cell(e.what)} | {_cell(seen)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _seen(e: Entry) -> str:
    if isinstance(e.data, dict) and "seen" in e.data:      # an outcome told in full
        return e.data["seen"]
    if e.area == OUTPUT_AREA:
        return e.expect
    if e.area == CRASH_AREA:
        return e.expect
    if e.code == 0:
        return f"exit 0: {e.expect}"
    where = f" [{e.field}]" if e.field else ""
    said = f": …{e.expect}…" if e.expect else ""
    return f"exit {e.code}, one error line{where}{said}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")




def write_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOCS.write_text(f"{head}{BEGIN}\n{markdown()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-docs"]:
        write_docs()
    else:
        print(markdown(), end="")

"""The catalogue's inputs and outputs part (tests/catalogue_support.py lists it with the
rest): crafted llama-bench files for `benchkit import`, chip specs, serve summaries, a
full disk, and text that must not reach a terminal live.

Every crafted file starts from a real one: the llama-bench output of SmolLM2 committed
under tests/data/llama-bench/ (json, jsonl, csv and sql of one real run), the real serve
result committed under results/, the real result of the standard suite. Each maker takes
that real input and returns the bytes of the hostile variant.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from paths import DATA, REPO

LLAMA_BENCH = DATA / "llama-bench"
SERVE_RESULT = REPO / "results" / "20261201T184508Z-serve-smollm2-e495e8.json"

IMPORT_AREA = "imported llama-bench files"
SPEC_AREA = "files given to project"
SERVE_AREA = "serve results"
DISK_AREA = "a full disk"


def real(fmt: str) -> str:
    """The real llama-bench output of one format (json, jsonl, csv, sql)."""
    return (LLAMA_BENCH / f"smollm2-cpu.{fmt}").read_text(encoding="utf-8")


def _jsonl_row() -> dict[str, Any]:
    return json.loads(real("jsonl").splitlines()[0])


def _jsonl(**changes: Any) -> bytes:
    """The real jsonl's first row with some fields changed (the JSON text of each value
    given as a string is written as it is: NaN, Infinity, 1e400)."""
    row = _jsonl_row()
    raw: dict[str, str] = {}
    for key, value in changes.items():
        if isinstance(value, _Raw):
            raw[key] = value.text
            row[key] = f"@{key}@"
        else:
            row[key] = value
    text = json.dumps(row)
    for key, value in raw.items():
        text = text.replace(json.dumps(f"@{key}@"), value)
    return (text + "\n").encode()


class _Raw:
    """A value written into JSON as this text (what json.dumps would refuse to write)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _builds(n: int) -> bytes:
    """The real row n times, each with its own build commit: n machines or builds."""
    row = _jsonl_row()
    return "".join(json.dumps({**row, "build_commit": f"{i:07x}"}) + "\n"
                   for i in range(n)).encode()


def _minimal_csv() -> bytes:
    """16 MiB of the smallest rows a CSV can hold: two million tests (7.8 GB of memory
    before the cap)."""
    head = "model_type,n_prompt,n_gen,avg_ts\n"
    row = "x,0,1,1\n"
    return (head + row * ((16 * 2**20 - len(head)) // len(row))).encode()


def _self_join() -> bytes:
    """The real SQL, then one INSERT of a 30-way self-join of its two rows: 2^30 rows, in
    1.5 KB (sqlite ran it for ever before: it reads only llama_bench)."""
    tables = ", ".join(f"llama_bench t{i}" for i in range(30))
    return (real("sql") + f"INSERT INTO llama_bench SELECT t0.* FROM {tables};\n").encode()


def _sql_row(**changes: str) -> bytes:
    """The real SQL with values of its first INSERT replaced (SQL literals as given)."""
    text = real("sql")
    for key, literal in changes.items():
        cols = re.search(r"INSERT INTO llama_bench \(([^)]*)\)", text)[1].split(", ")
        start = text.index("VALUES (") + len("VALUES (")
        end = text.index(");", start)
        values = re.findall(r"'(?:[^']|'')*'|[^, ]+", text[start:end])
        values[cols.index(key)] = literal
        text = text[:start] + ", ".join(values) + text[end:]
    return text.encode()


def _deep_json() -> bytes:
    return b"[" * 100_000 + b"]" * 100_000


def _json_of(rows: int) -> bytes:
    """The real json's first test repeated: a file of `rows` tests."""
    first = json.loads(real("json"))[0]
    return json.dumps([first] * rows).encode()


def _many_samples() -> bytes:
    row = _jsonl_row()
    row["samples_ns"] = [1_000_000_000] * 200_001
    row.pop("samples_ts", None)
    return (json.dumps(row) + "\n").encode()


def _time(value: str) -> bytes:
    return _jsonl(test_time=value)


INSIDE = "the result is written inside -o"
# (id, what, maker -> bytes, file name, expected piece of the error line (or what an
# accepted file gives), field, exit code)
IMPORTS: list[tuple[str, str, Callable[[], bytes], str, str, str | None, int]] = [
    ("time-dotdot", "test_time `../../../../../x` (wrote into a parent folder before)",
     lambda: _time("../../../../../escaped"), "up.jsonl", INSIDE, None, 0),
    ("time-absolute", "test_time `/tmp/x` (wrote anywhere before)",
     lambda: _time("/tmp/benchkit-escaped"), "abs.jsonl", INSIDE, None, 0),
    ("time-offset", "test_time with a +05:30 offset",
     lambda: _time("2026-12-01T22:43:35+05:30"), "offset.jsonl", INSIDE + ", named 20261201T171335Z",
     None, 0),
    ("nan-sample", "NaN in samples_ts (a traceback before)",
     lambda: _jsonl(samples_ts=_Raw("[NaN, 1.0, 2.0]")), "nan.jsonl", "not a finite number",
     "samples_ts", 2),
    ("infinity-avg", "Infinity as avg_ts (a traceback before)",
     lambda: _jsonl(avg_ts=_Raw("Infinity"), samples_ns=[], samples_ts=[]), "inf.jsonl",
     "not a finite number", "avg_ts", 2),
    ("exponent-400", "1e400 in samples_ns (a traceback before)",
     lambda: _jsonl(samples_ns=_Raw("[1e400]")), "e400.jsonl", "malformed value",
     "samples_ns", 2),
    ("nan-csv", "nan as a CSV cell (a traceback before)",
     lambda: real("csv").replace('"5.269233"', '"nan"', 1).encode(), "nan.csv",
     "not a finite number", "avg_ts", 2),
    ("flash-attn-7", "flash_attn 7 (a KeyError traceback before)",
     lambda: _jsonl(flash_attn=7), "fa.jsonl", "malformed value 7", "flash_attn", 2),
    ("flash-attn-sql", "flash_attn '9' in SQL (a KeyError traceback before)",
     lambda: _sql_row(flash_attn="'9'"), "fa.sql", "malformed value 9", "flash_attn", 2),
    ("deep-json", "a JSON list nested 100,000 deep (a RecursionError before)", _deep_json,
     "deep.json", "nested thousands of levels deep", None, 2),
    ("nested-value", "an object where a number belongs",
     lambda: _jsonl(n_threads={"a": [1, [2]]}), "nested.jsonl", "nested value", "n_threads",
     2),
    ("ns-one", "a 1 ns sample (16,000,000,000 tok/s written before)",
     lambda: _jsonl(samples_ns=[1, 2, 3]), "fast.jsonl", "not a plausible figure",
     "samples_ns", 2),
    ("avg-zero", "avg_ts 0 (recorded as a measurement before)",
     lambda: _jsonl(avg_ts=0, samples_ns=[], samples_ts=[]), "zero.jsonl",
     "must be positive", "avg_ts", 2),
    ("spread-10000", "stddev_ts 10,000 times avg_ts (a summary every reader refused)",
     lambda: _jsonl(avg_ts=0.001, stddev_ts=10.0, samples_ns=[], samples_ts=[]),
     "spread.jsonl", "not a plausible figure", "summary.tps_cv", 2),
    ("n-prompt-2-64", "n_prompt 2^64 (written, then refused by every reader)",
     lambda: _jsonl(n_prompt=2**64), "huge.jsonl", "malformed value", "n_prompt", 2),
    ("minimal-csv", "16 MiB of minimal CSV rows (7.8 GB of memory before)", _minimal_csv,
     "minimal.csv", "more than 10,000 llama-bench tests", None, 2),
    ("json-10001", "10,001 tests in one JSON list", lambda: _json_of(10_001), "many.json",
     "more than 10,000 llama-bench tests", None, 2),
    ("samples-200001", "200,001 samples in one test", _many_samples, "samples.jsonl",
     "more than 100,000 repetitions", None, 2),
    ("sql-self-join", "a 30-way self-join of its own rows (ran for ever before)",
     _self_join, "join.sql", "not llama-bench's SQL", None, 2),
    ("sql-comments", "the real SQL under 5,000,000 comments (4 s of CPU before its cap)",
     lambda: (real("sql") + "--\n" * 5_000_000).encode(), "comments.sql",
     "more than 1,000 comments", None, 2),
    ("sql-attach", "ATTACH DATABASE in the SQL",
     lambda: (real("sql") + "ATTACH DATABASE 'x.db' AS x;\n").encode(), "attach.sql",
     "not ATTACH", None, 2),
    ("sql-expression", "an expression where a value belongs",
     lambda: _sql_row(n_threads="(SELECT 1)"), "expr.sql", "only literal values", None, 2),
    ("builds-33", "33 build commits in one file (5,000 result files from 429 KB before)",
     lambda: _builds(33), "builds.jsonl", "more than 32 machines or builds", None, 2),
    ("long-text", "a 5,000-character cpu_info", lambda: _jsonl(cpu_info="x" * 5000),
     "long.jsonl", "more than 4,096 characters", "cpu_info", 2),
]

def _alias_bomb() -> bytes:
    """Nine levels of nine aliases: 10^9 strings in ~350 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


# (id, what, file bytes, expected piece of the error line)
SPECS: list[tuple[str, str, bytes, str]] = [
    ("spec-utf16", "a chip spec saved as UTF-16 (a UnicodeDecodeError before)",
     "id: mychip\nname: My Chip\nbackend: cuda\ngpu_cores: 100\nbandwidth_gbs: 1000\n"
     "memory_gb: 24\n".encode("utf-16"), "UTF-16"),
    ("spec-deep", "a chip spec nested 100,000 deep (a RecursionError before)",
     b"id: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested deeper"),
    ("spec-deep-field", "a chip spec whose sources are nested 200 deep",
     b"id: mychip\nname: My Chip\nbackend: cuda\ngpu_cores: 100\nbandwidth_gbs: 1000\n"
     b"memory_gb: 24\nsources: " + b"{a: " * 200 + b"1" + b"}" * 200 + b"\n",
     "nested deeper"),
    ("spec-alias-bomb", "a chip spec that is a billion-laughs alias bomb", _alias_bomb(),
     "aliases expanded"),
    ("spec-latin1", "a chip spec in Latin-1", "id: mychip\nname: Ch\u00efp\n".encode("latin-1"),
     "not UTF-8"),
]

def serve_case() -> int:
    """The index of the first serve level in the real serve result."""
    doc = json.loads(SERVE_RESULT.read_text(encoding="utf-8"))
    return next(i for i, c in enumerate(doc["cases"]) if c["workload"]["kind"] == "serve")


# (id, what, the option given a FIFO, expected piece): both blocked for ever before
PROJECT_FIFOS: list[tuple[str, str, str, str]] = [
    ("spec-fifo", "a FIFO as --chip-spec", "--chip-spec", "FIFO"),
    ("gguf-fifo", "a FIFO as --gguf", "--gguf", "FIFO"),
]


# (id, what, summary key, hostile value, expected piece, field under the case)
SERVE: list[tuple[str, str, str, Any, str, str]] = [
    ("serve-ttft-text", "ttft_p99_s as text (a traceback in report and compare before)",
     "ttft_p99_s", "fast", "must be a number", "summary.ttft_p99_s"),
    ("serve-output-tps-list", "output_tps as a list (a traceback in compare before)",
     "output_tps", [1], "must be a number", "summary.output_tps"),
    ("serve-requests-text", "requests as text (a traceback in compare before)",
     "requests", "many", "must be a number", "summary.requests"),
    ("serve-error-rate-object", "error_rate as an object (a traceback in report before)",
     "error_rate", {"a": 1}, "must be a number", "summary.error_rate"),
    ("serve-errors-text", "errors as text, not counts by kind (a traceback before)",
     "errors", "timeout", "must be an object", "summary.errors"),
    ("serve-level-negative", "a negative level_s", "level_s", -3.0, "negative",
     "summary.level_s"),
    ("serve-goodput-huge", "goodput_rps 1e300", "goodput_rps", 1e300,
     "not a plausible figure", "summary.goodput_rps"),
]
SERVE_READERS = ("report", "compare", "validate", "project")

# (id, what the full disk interrupts, expected piece)
DISK: list[tuple[str, str, str]] = [
    ("disk-report", "report onto a full disk over an earlier report (a traceback before)",
     "No space left on device"),
    ("disk-site", "site onto a full disk over an earlier site (emptied it before)",
     "No space left on device"),
    ("disk-submit", "submit onto a full disk (a traceback before)", "No space left on device"),
    ("disk-import", "import of two files onto a full disk", "No space left on device"),
    ("disk-format", "report --format llama-bench-json onto a full disk",
     "No space left on device"),
]

# (id, what, command): text printed to a terminal with escape sequences in it
TERMINAL: list[tuple[str, str, str]] = [
    ("engines-list-escapes", "escape sequences in a tool's path and version line",
     "engines list"),
    ("project-escapes", "escape sequences in a --chip-spec's chip name", "project"),
    ("import-escapes", "escape sequences in an imported file's name", "import"),
    ("usage-escapes", "escape sequences in a mistyped option value", "report --format"),
]

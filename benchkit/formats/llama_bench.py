"""llama-bench's output formats, written from a benchkit result: json, jsonl, csv, sql, md.

Scripts and dashboards built around `llama-bench -o json` (or the sqlite table its `-o sql`
fills) keep working on benchkit's measurements: `write(doc, fmt)` turns every ok pp / tg /
pp+tg case of a result into one llama-bench test row, with llama-bench's field names,
types and formatting (tools/llama-bench/llama-bench.cpp at llama.cpp 0c1e570:
`test::get_fields`, the json/jsonl/csv/sql/markdown printers). Per-iteration figures
become `samples_ns` / `samples_ts`; avg and stddev are computed from them as llama-bench
computes them (integer nanoseconds). Fields benchkit does not know (cpu_mask, poll,
split_mode...) get llama-bench's defaults, because benchkit runs with those defaults;
a case imported from a llama-bench file writes back the values that file had.

Other workloads (chat, server load sweeps) have no llama-bench row and are left out.
Each output registers as `--format llama-bench-<name>` of `run` and `report`
(benchkit.formats); the field tables are shared with the reader, `llama_bench_import.py`,
through `llama_bench_fields.py`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from benchkit.formats import get, text_format
from benchkit.formats.llama_bench_fields import (BACKEND_NAMES, BOOL_FIELDS, DEFAULTS, FIELDS,
                                                  FLASH_ATTN, FLOAT_FIELDS, INT_FIELDS,
                                                  test_name)

_TOKEN_KINDS = ("pp", "tg", "pp+tg")
PREFIX = "llama-bench-"          # the --format names: llama-bench-json, ...


def write(doc: dict[str, Any], fmt: str) -> str:
    """The result `doc` (schema version 2) in llama-bench's output format `fmt` (json,
    jsonl, csv, sql, md; or the --format spelling llama-bench-json...)."""
    return write_all([doc], fmt)


def write_all(docs: list[dict[str, Any]], fmt: str) -> str:
    """Several results as one llama-bench output (the rows of each, in order)."""
    return get("run", PREFIX + fmt.removeprefix(PREFIX)).text(docs)


def _rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for doc in docs for row in rows_of(doc)]


def rows_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One llama-bench row (field -> typed value, plus samples) per ok token case."""
    env = doc.get("environment") or {}
    return [row_of(case, env, doc) for case in doc.get("cases") or []
            if case.get("status") == "ok" and (case.get("workload") or {}).get("kind")
            in _TOKEN_KINDS and (case.get("iterations") or _raw(case).get("avg_ns"))]


def _raw(case: dict[str, Any]) -> dict[str, Any]:
    """The llama-bench row an imported case came from (empty for benchkit's own cases)."""
    return (case.get("engine_info") or {}).get("llama_bench_row") or {}


def row_of(case: dict[str, Any], env: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A case as llama-bench would have printed it."""
    info = case.get("engine_info") or {}
    raw = _raw(case)
    row = {**DEFAULTS, **_from_case(case, env, doc, info), **raw}
    if isinstance(row["flash_attn"], str):      # imported rows keep auto / on / off
        row["flash_attn"] = FLASH_ATTN.get(row["flash_attn"], -1)
    if not case.get("iterations"):      # imported from csv / sql: no samples, only the summary
        return {**row, "samples_ns": [], "samples_ts": []}
    ns = [_ns(it) for it in case["iterations"]]
    tokens = row["n_prompt"] + row["n_gen"]
    ts = [1e9 * tokens / t if t else 0.0 for t in ns]
    row.update(avg_ns=_avg_int(ns), stddev_ns=_stdev_int(ns), avg_ts=_avg(ts),
               stddev_ts=_stdev(ts), samples_ns=ns, samples_ts=ts)
    return row


def _from_case(case: dict[str, Any], env: dict[str, Any], doc: dict[str, Any],
               info: dict[str, Any]) -> dict[str, Any]:
    eng, model, w = case.get("engine") or {}, case.get("model") or {}, case.get("workload") or {}
    backend = env.get("backend") or "cpu"
    tool = info.get("version") if isinstance(info.get("version"), dict) else {}
    return {
        "build_commit": str(info.get("build_commit") or tool.get("build_commit") or "unknown"),
        "build_number": int(info.get("build_number") or tool.get("build_number") or 0),
        "cpu_info": info.get("cpu_info") or _devices(env, ("cpu", "accel"))
        or (env.get("cpu") or {}).get("model") or "",
        "gpu_info": info.get("gpu_info") or _devices(env, ("gpu", "igpu")) or ", ".join(
            g.get("name", "") for g in env.get("gpus") or []),
        "backends": info.get("backends") or BACKEND_NAMES.get(backend, backend),
        "model_filename": model.get("file") or model.get("name") or "",
        "model_type": info.get("model_type") or _model_type(model),
        "model_size": int(model.get("size_bytes") or 0),
        "model_n_params": int(model.get("n_params") or 0),
        "n_batch": int(eng.get("n_batch", 2048)), "n_ubatch": int(eng.get("n_ubatch", 512)),
        "n_threads": int(info.get("n_threads") or eng.get("n_threads") or 0),
        "type_k": eng.get("type_k", "f16"), "type_v": eng.get("type_v", "f16"),
        "n_gpu_layers": int(eng.get("n_gpu_layers", -1)),
        "flash_attn": FLASH_ATTN.get(str(eng.get("flash_attn", "auto")), -1),
        "load_mode": "mmap" if eng.get("use_mmap", True) else "none",
        "no_op_offload": 0 if eng.get("op_offload", True) else 1,
        **split_fields(eng),
        "n_prompt": int(w.get("n_prompt") or 0), "n_gen": int(w.get("n_gen") or 0),
        "n_depth": int(w.get("depth") or 0),
        "test_time": info.get("test_time") or doc.get("started_at") or "",
    }


def split_fields(eng: dict[str, Any]) -> dict[str, Any]:
    """split_mode, main_gpu, devices and tensor_split as llama-bench prints them:
    `CUDA0/CUDA1` (`auto` for every device), proportions `%.2f` joined by `/`."""
    split = eng.get("tensor_split")
    devices = eng.get("devices")
    return {"split_mode": eng.get("split_mode") or DEFAULTS["split_mode"],
            "main_gpu": int(eng.get("main_gpu") or 0),
            "devices": "/".join(devices) if devices else DEFAULTS["devices"],
            "tensor_split": ("/".join(f"{float(x):.2f}" for x in split) if split
                             else DEFAULTS["tensor_split"])}


def _devices(env: dict[str, Any], kinds: tuple[str, ...]) -> str:
    """ggml's devices of these kinds as llama-bench names them (get_cpu_info,
    get_gpu_info: their descriptions, joined), from the environment's device list."""
    return ", ".join(str(d.get("description") or "") for d in env.get("devices") or []
                     if isinstance(d, dict) and d.get("type") in kinds)


def _model_type(model: dict[str, Any]) -> str:
    """llama_model_desc's "arch size ftype", as near as the result allows."""
    n = model.get("n_params")
    size = (f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M") if n else "?B"
    return " ".join(str(p) for p in (model.get("architecture") or "?", size,
                                     model.get("quantization") or "?"))


def _ns(it: dict[str, Any]) -> int:
    return int(it["tool_ns"]) if "tool_ns" in it else int(round(float(it["seconds"]) * 1e9))


_U64 = 2**64


def _avg_int(v: list[int]) -> int:
    """llama-bench's avg on uint64 nanoseconds (integer division)."""
    return (sum(v) % _U64) // len(v) if v else 0


def _stdev_int(v: list[int]) -> int:
    """llama-bench's stdev on uint64 nanoseconds, step for step: integer divisions and
    64-bit wrap-around (so that stddev_ns is the number llama-bench prints, even where
    its squares overflow for samples above about 4 s), then sqrt, truncated."""
    n = len(v)
    if n <= 1:
        return 0
    mean = _avg_int(v)
    sq_sum = sum(x * x for x in v) % _U64
    inner = (sq_sum // (n - 1) - (mean * mean % _U64) * n % _U64 // (n - 1)) % _U64
    return int(math.sqrt(float(inner)))


def _avg(v: list[float]) -> float:
    return sum(v) / len(v) if v else 0.0


def _stdev(v: list[float]) -> float:
    n = len(v)
    if n <= 1:
        return 0.0
    mean = _avg(v)
    inner = sum(x * x for x in v) / (n - 1) - mean * mean * n / (n - 1)
    return math.sqrt(inner) if inner > 0 else 0.0


# --------------------------------------------------------------------------- the printers

def _text(field: str, value: Any) -> str:
    """A value as llama-bench's get_values() string: std::to_string and friends."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if field in FLOAT_FIELDS:
        return f"{float(value):.6f}"
    return str(value)


def _json_value(field: str, value: Any) -> str:
    if field in BOOL_FIELDS:
        return "true" if value else "false"
    if field in INT_FIELDS or field in FLOAT_FIELDS:
        return _text(field, value)
    return json.dumps(str(value), ensure_ascii=False)


def _samples(row: dict[str, Any]) -> tuple[str, str]:
    return (", ".join(str(x) for x in row["samples_ns"]),
            ", ".join(_g(x) for x in row["samples_ts"]))


def _g(x: float) -> str:
    """std::ostream's default double format (6 significant digits), as llama-bench joins."""
    return f"{x:.6g}"


@text_format(PREFIX + "json", extension=".json", order=1)
def json_output(docs: list[dict[str, Any]]) -> str:
    """As llama-bench -o json prints it."""
    return write_json(_rows(docs))


def write_json(rows: list[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        lines = [f'    "{f}": {_json_value(f, row[f])},' for f in FIELDS]
        ns, ts = _samples(row)
        lines += [f'    "samples_ns": [ {ns} ],', f'    "samples_ts": [ {ts} ]']
        parts.append("  {\n" + "\n".join(lines) + "\n  }")
    return "[\n" + ",\n".join(parts) + "\n]\n"


@text_format(PREFIX + "jsonl", extension=".jsonl", order=1)
def jsonl_output(docs: list[dict[str, Any]]) -> str:
    """As llama-bench -o jsonl prints it."""
    return write_jsonl(_rows(docs))


def write_jsonl(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        ns, ts = _samples(row)
        fields = "".join(f'"{f}": {_json_value(f, row[f])}, ' for f in FIELDS)
        out.append("{" + fields + f'"samples_ns": [ {ns} ],"samples_ts": [ {ts} ]' + "}\n")
    return "".join(out)


@text_format(PREFIX + "csv", extension=".csv", order=1)
def csv_output(docs: list[dict[str, Any]]) -> str:
    """As llama-bench -o csv prints it."""
    return write_csv(_rows(docs))


def write_csv(rows: list[dict[str, Any]]) -> str:
    def esc(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    lines = [",".join(FIELDS)]
    lines += [",".join(esc(_text(f, row[f])) for f in FIELDS) for row in rows]
    return "\n".join(lines) + "\n"


@text_format(PREFIX + "sql", extension=".sql", order=1)
def sql_output(docs: list[dict[str, Any]]) -> str:
    """As llama-bench -o sql prints it."""
    return write_sql(_rows(docs))


def write_sql(rows: list[dict[str, Any]]) -> str:
    def sql_type(f: str) -> str:
        return "REAL" if f in FLOAT_FIELDS else (
            "INTEGER" if f in INT_FIELDS or f in BOOL_FIELDS else "TEXT")

    cols = [f"  {f} {sql_type(f)}{',' if i < len(FIELDS) - 1 else ''}"
            for i, f in enumerate(FIELDS)]
    out = ["CREATE TABLE IF NOT EXISTS llama_bench (", *cols, ");", ""]
    for row in rows:
        values = ", ".join("'" + _text(f, row[f]).replace("'", "''") + "'" for f in FIELDS)
        out.append(f"INSERT INTO llama_bench ({', '.join(FIELDS)}) VALUES ({values});")
    return "\n".join(out) + "\n"


# markdown_printer: display names and widths (negative = left aligned)
_MD_NAMES = {"n_gpu_layers": "ngl", "n_threads": "threads", "flash_attn": "fa",
             "load_mode": "lm", "no_op_offload": "nopo"}
_MD_WIDTH = {"model": -30, "size": 10, "params": 10, "backend": -10, "n_gpu_layers": 3,
             "n_threads": 7, "n_batch": 7, "n_ubatch": 8, "type_k": -6, "type_v": -6,
             "flash_attn": 3, "load_mode": -10, "no_op_offload": 4, "test": 15, "t/s": 20}
# the optional columns, shown (as llama-bench does) when a value is not its default
_MD_OPTIONAL = (("n_batch", 2048), ("n_ubatch", 512), ("type_k", "f16"), ("type_v", "f16"),
                ("flash_attn", -1), ("load_mode", "auto"), ("no_op_offload", 0))


@text_format(PREFIX + "md", extension=".md", order=1)
def md_output(docs: list[dict[str, Any]]) -> str:
    """As llama-bench -o md prints it."""
    return write_md(_rows(docs))


def write_md(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cpu = all(r["backends"] in ("CPU", "BLAS") for r in rows)
    fields = ["model", "size", "params", "backend"] + ([] if cpu else ["n_gpu_layers"])
    fields += ["n_threads"] if cpu or len({r["n_threads"] for r in rows}) > 1 else []
    fields += [f for f, default in _MD_OPTIONAL if any(r[f] != default for r in rows)]
    fields += ["test", "t/s"]
    head = "|" + "".join(f" {_pad(_MD_NAMES.get(f, f), _width(f))} |" for f in fields)
    rule = "|" + "".join(f" {'-' * (abs(_width(f)) - 1)}{':' if _width(f) > 0 else '-'} |"
                         for f in fields)
    body = ["|" + "".join(f" {_pad(_md_value(f, r), _width(f))} |" for f in fields)
            for r in rows]
    first = rows[0]
    return "\n".join([head, rule, *body, "",
                      f"build: {first['build_commit']} ({first['build_number']})"]) + "\n"


def _width(field: str) -> int:
    return _MD_WIDTH.get(field, -max(len(field), 10))


def _pad(text: str, width: int) -> str:
    return text.ljust(-width) if width < 0 else text.rjust(width)


def _md_value(field: str, r: dict[str, Any]) -> str:
    if field == "model":
        return str(r["model_type"])
    if field == "size":
        b = r["model_size"]
        return f"{b / 2**20:.2f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"
    if field == "params":
        n = r["model_n_params"]
        return f"{n / 1e6:.2f} M" if n < 1e9 else f"{n / 1e9:.2f} B"
    if field == "backend":
        return str(r["backends"])
    if field == "test":
        return test_name(r["n_prompt"], r["n_gen"], r["n_depth"])
    if field == "t/s":
        return f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}"
    return _text(field, r[field])

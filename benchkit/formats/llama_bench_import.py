"""`benchkit import`: llama-bench output files (json, jsonl, csv, sql) as benchkit results.

People already have llama-bench numbers, from their own machines and from threads where
others posted theirs. Imported, they can be reported, compared, projected and submitted
beside benchkit's own runs. What an imported result says comes from the file only:

- the cases are llama-bench's tests (engine kind `llama-bench`, its settings mapped to
  benchkit's names; every field of the row kept in `engine_info.llama_bench_row`);
- `engine_info` and `suite` are marked `"imported": true` with the source file's name,
  format and sha256;
- the environment is what the file says (cpu_info, gpu_info, backends), not this machine:
  a file carries no OS, memory or core counts, and those stay empty;
- per-repetition samples (`samples_ns` / `samples_ts` in -o json and jsonl) become one
  iteration each, on llama-bench's clock (`tool`). csv and sql carry only the mean and
  standard deviation: such cases have no iterations, their summary holds llama-bench's
  avg_ts / stddev_ts (tps_median too, as the only centre known) and a warning says so;
- a file is read only when it is a regular file of at most 16 MiB (10,000 tests or so;
  `benchkit.core.safeio.MAX_IMPORT_BYTES`), refused from its size before a byte is read;
  its rows are counted as they are read (`llama_bench_read`: tests, fields, samples,
  text lengths, and the result files one file may become), its SQL parsed, never run;
- every value is checked as every reader of a result checks it (NaN, Infinity, a figure
  no hardware gives: `benchkit.results.sanity`), naming the row and the field, before
  anything is written; the written file's name takes only digits from the file's
  test_time, and never leaves the output folder;
- the model is known by llama-bench's description (model_type, model_size: tensor bytes,
  model_n_params); when the file named in model_filename exists here and its header has
  the same parameter count, its sha256, size and header fill the model in, so that the
  import pairs with benchkit's own runs of that file in `compare`.

A file holding tests of several machines or builds (sql appended to by several runs)
becomes one result per machine and build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from benchkit.core.atomicio import write_files
from benchkit.core.version import __version__
from benchkit.core.errors import BenchkitError
from benchkit.formats.llama_bench_fields import (BOOL_FIELDS, FLASH_ATTN, FLOAT_FIELDS,
                                                  INT_FIELDS, test_name)
from benchkit.formats.llama_bench_read import MAX_RESULTS, MAX_SAMPLES, read_rows
from benchkit.results.io import FORMAT, SCHEMA_VERSION, check_schema, dumps, summarize
from benchkit.run.environment import backend_in

REQUIRED = ("n_prompt", "n_gen", "model_type")
TIMINGS = ("samples_ns", "samples_ts", "avg_ns", "avg_ts")
_MACHINE = ("cpu_info", "gpu_info", "backends", "build_commit")
# Boolean backend columns of llama-bench before `backends` (2024): column -> backend name.
_OLD_BACKENDS = {"cuda": "CUDA", "metal": "Metal", "vulkan": "Vulkan", "sycl": "SYCL",
                 "kompute": "Kompute", "rpc": "RPC", "blas": "BLAS"}


@dataclass
class Row:
    """One llama-bench test as read: typed fields, and where it was in the file."""

    fields: dict[str, Any]
    where: str                 # "line 3", "row 2", "statement 4"
    line: int | None = None


# --------------------------------------------------------------------------- reading

def import_files(paths: Iterable[str | Path], output_dir: str | Path,
                 model_files: Iterable[str | Path] = ()) -> list[tuple[Path, Path, int]]:
    """Read every file first (a bad one stops the import before anything is written), then
    write one result per file (and machine). `model_files`: the GGUF files the tests ran,
    when their paths in the files are not valid here. Returns (source, written, cases)."""
    models = Models([Path(m) for m in model_files])
    docs = [(Path(p), doc) for p in paths for doc in documents(Path(p), models)]
    models.check_used()
    files: dict[Path, str] = {}
    targets = []
    for source, doc in docs:          # every file checked before any is written
        text = dumps(doc)
        _check_size(text, source)
        targets.append(inside(Path(output_dir), f"{doc['run_id']}.json", source))
        files[targets[-1]] = text
    write_files(files, "result file")   # all or none: a full disk leaves no half import
    return [(source, target, len(doc["cases"])) for (source, doc), target in zip(docs, targets)]


def _check_size(text: str, source: Path) -> None:
    """A result every reader can read back: no larger than they take (MAX_RESULT_BYTES)."""
    from benchkit.core.safeio import MAX_RESULT_BYTES

    size = len(text.encode("utf-8"))
    if size > MAX_RESULT_BYTES:
        raise BenchkitError(f"its result would be {size:,} bytes, more than benchkit reads "
                            f"({MAX_RESULT_BYTES:,}): split the file", file=str(source))


def inside(folder: Path, name: str, source: Path) -> Path:
    """folder/name, refused unless it is a plain file name inside `folder` (the name is
    built from the file's content: it must never reach a parent folder or another root)."""
    target = folder / name
    if Path(name).name != name or name in (".", "..") or \
            target.resolve().parent != folder.resolve():
        raise BenchkitError(f"the result name {name[:60]!r} would leave the output folder "
                            f"{folder}", file=str(source))
    return target


def documents(path: Path, models: Models | None = None) -> list[dict[str, Any]]:
    """The benchkit result documents of one llama-bench output file."""
    from benchkit.community.scrub import scrub_home

    data = _read_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    text = _decode(data, path)
    fmt = sniff(text, path)
    rows = parse(text, fmt, path)
    if not rows:
        raise BenchkitError(f"no llama-bench tests in this {fmt} file", file=str(path))
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        key = tuple(str(row.fields.get(k)) for k in _MACHINE)
        if key not in groups and len(groups) == MAX_RESULTS:
            raise BenchkitError(f"more than {MAX_RESULTS} machines or builds (cpu_info, "
                                "gpu_info, backends, build_commit) in one file: each would "
                                f"be a result file of its own (at most {MAX_RESULTS}); split "
                                "it", file=str(path), line=row.line,
                                field=None if row.line else row.where)
        groups.setdefault(key, []).append(row)
    docs = []
    for i, group in enumerate(groups.values()):
        doc = scrub_home(to_document(group, path, fmt, sha, models or Models([]),
                                     part=i if len(groups) > 1 else None))
        check_schema(doc, str(path))
        _check_readable(doc, group, path)
        docs.append(doc)
    return docs


def _check_readable(doc: dict[str, Any], rows: list[Row], path: Path) -> None:
    """The checks every reader applies (benchkit.results.sanity), made before writing: a
    figure a reader would refuse is refused here, naming the row it came from."""
    from benchkit.results.sanity import check_figures

    try:
        check_figures(doc, str(path))
    except BenchkitError as exc:
        m = re.match(r"cases\.(\d+)\.(.*)", exc.field or "")
        if not m:
            raise
        row = rows[int(m[1])]
        raise BenchkitError(exc.message, file=str(path), line=row.line,
                            field=m[2] if row.line else f"{row.where}: {m[2]}") from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, bounded (benchkit.core.safeio): a regular file of at most
    MAX_IMPORT_BYTES, refused from its size before anything is read (a FIFO or /dev/zero
    would otherwise block or fill memory)."""
    from benchkit.core.safeio import MAX_IMPORT_BYTES, read_bounded_bytes

    return read_bounded_bytes(path, MAX_IMPORT_BYTES, "llama-bench file", str(path),
                              missing="no such file")


def _decode(data: bytes, path: Path) -> str:
    if not data.strip():
        raise BenchkitError("empty file: not a llama-bench output", file=str(path))
    if b"\0" in data:
        raise BenchkitError("binary data: not a llama-bench output (json, jsonl, csv or sql)",
                            file=str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenchkitError(f"not UTF-8 text (byte {exc.start}): not a llama-bench output",
                            file=str(path)) from None


def sniff(text: str, path: Path) -> str:
    """The format, from the content (files are often saved as .txt or .log)."""
    start = re.search(r"\S", text)
    head = text[start.start():start.start() + 4096] if start else ""   # the start decides
    first = head.splitlines()[0] if head else ""
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        return "jsonl"
    if re.match(r"(?:--[^\n]*\s*)*(CREATE\s+TABLE|INSERT\s+INTO|PRAGMA|BEGIN)\b", head, re.I):
        return "sql"
    if first.startswith("|"):
        raise BenchkitError("a Markdown table (llama-bench's default output) has no samples "
                            "and rounds every figure: re-run llama-bench with -o json",
                            file=str(path))
    if "," in first and re.fullmatch(r'[\w",\s]+', first):     # a header of field names
        return "csv"
    raise BenchkitError("not a llama-bench output: expected -o json, jsonl, csv or sql "
                        f"(the file starts with {first[:40]!r})", file=str(path))


def parse(text: str, fmt: str, path: Path) -> list[Row]:
    """The typed rows of a file, within the caps of `llama_bench_read` (tests per file,
    fields per test) and `MAX_SAMPLES` (repetitions per file)."""
    rows, samples = [], 0
    for fields, where, line in read_rows(text, fmt, str(path)):
        samples += max(_count(fields.get("samples_ns")), _count(fields.get("samples_ts")))
        if samples > MAX_SAMPLES:
            raise BenchkitError(f"more than {MAX_SAMPLES:,} repetitions (samples) in one file "
                                f"(at most {MAX_SAMPLES:,}): split it", file=str(path),
                                line=line, field=None if line else where)
        rows.append(Row(_typed(fields, path, where, line), where, line))
    return rows


def _count(samples: Any) -> int:
    """How many samples a raw value holds, before any is converted."""
    if isinstance(samples, list):
        return len(samples)
    return str(samples).count(",") + 1 if samples not in (None, "") else 0


# --------------------------------------------------------------------------- typing

def _typed(fields: dict[str, Any], path: Path, where: str, line: int | None) -> dict[str, Any]:
    """A row with llama-bench's types, whatever the format spelled them as; one error line
    naming the file, the row and the field for a missing, malformed or implausible value
    (the bounds every reader of a result applies, `benchkit.results.sanity`, checked here
    before anything is written)."""
    def bad(field: str, what: str) -> BenchkitError:
        return BenchkitError(what, file=str(path), line=line,
                             field=field if line else f"{where}.{field}")

    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise bad(missing[0], f"no {missing[0]} field: not a llama-bench test (its fields "
                              f"are {', '.join(REQUIRED)}, ..., avg_ns, avg_ts)")
    if not any(fields.get(f) not in (None, "", []) for f in TIMINGS):
        raise bad("avg_ns", "no timings (samples_ns, samples_ts, avg_ns or avg_ts)")
    out: dict[str, Any] = {}
    for field, value in fields.items():
        try:
            out[field] = _convert(field, value)
        except (TypeError, ValueError, OverflowError):
            raise bad(field, f"malformed value {_shown(value)}") from None
        if not _finite(out[field]):
            raise bad(field, f"{_shown(value)} is not a finite number (llama-bench writes no "
                             "NaN or Infinity)")
    if out["n_prompt"] < 0 or out["n_gen"] < 0 or out["n_prompt"] + out["n_gen"] == 0:
        raise bad("n_prompt", "a test needs n_prompt or n_gen above 0")
    problem = _implausible(out)
    if problem:
        raise bad(*problem)
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(x) for x in value)
    return True


def _implausible(f: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) for the first figure of a typed row no hardware gives, by the bounds
    every reader applies (benchkit.results.sanity): what would be written must be read."""
    from benchkit.results.sanity import BYTES, COUNT, PARAMS, SECONDS, TPS, judge

    tokens = f["n_prompt"] + f["n_gen"]
    for field, bound in (("n_prompt", COUNT), ("n_gen", COUNT), ("n_depth", COUNT),
                         ("model_size", BYTES), ("model_n_params", PARAMS),
                         ("stddev_ts", TPS)):
        why = judge(f.get(field), bound)
        if why:
            return field, why
    if judge(tokens, COUNT):
        return "n_gen", f"n_prompt + n_gen is {tokens:,} tokens: {judge(tokens, COUNT)}"
    for field in ("samples_ns", "avg_ns", "samples_ts", "avg_ts"):
        values = f.get(field) if field.startswith("samples") else [f.get(field)]
        for x in values or ():
            if x is None:
                continue
            if x <= 0:
                return field, f"{x!r}: a {'time' if 'ns' in field else 'speed'} must be positive"
            seconds = x / 1e9 if field.endswith("ns") else tokens / x
            why = judge(seconds, SECONDS) or judge(tokens / seconds, TPS)
            if why:
                unit = "ns" if field.endswith("ns") else "tok/s"
                return field, f"{x:,} {unit} for {tokens:,} tokens: {why}"
    return None


def _convert(field: str, value: Any) -> Any:
    if field == "samples_ns":
        return [_int(x) for x in _as_list(value)]
    if field == "samples_ts":
        return [_number(x) for x in _as_list(value)]
    if field == "flash_attn":
        return _flash_attn(value)
    if field == "tensor_split" and value is not None:
        split_parts(str(value))            # malformed proportions: one error line
        return str(value)
    if field in BOOL_FIELDS or field in _OLD_BACKENDS:
        return _bool(value)
    if value is None:
        return None
    if field in INT_FIELDS:
        return _int(value)
    if field in FLOAT_FIELDS:
        return _number(value)
    return value if isinstance(value, (str, int, float)) else str(value)


def split_parts(text: str) -> list[float]:
    """llama-bench's tensor_split text (`3.00/1.00`) as proportions; ValueError if one is
    not a number >= 0."""
    parts = [float(x) for x in text.split("/") if x.strip()]
    if any(not math.isfinite(x) or x < 0 for x in parts):
        raise ValueError(text)
    return parts


def _int(value: Any) -> int:
    """A whole number within llama-bench's 64-bit fields."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    number = int(value)
    if abs(number) >= 2**64:
        raise ValueError(value)
    return number


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    return float(value)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):          # a csv / sql cell holding "[1, 2]" or "1,2"
        return [x for x in re.split(r"[\s,\[\]]+", value) if x]
    raise TypeError(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(value)


def _flash_attn(value: Any) -> str:
    """-1 / 0 / 1 (llama.cpp since 2025), or a boolean (before): auto / off / on."""
    if isinstance(value, str) and value.strip().lower() in FLASH_ATTN:
        return value.strip().lower()
    if isinstance(value, bool):
        return "on" if value else "off"
    number = int(str(value).strip().lower().replace("true", "1").replace("false", "0"))
    names = {n: name for name, n in FLASH_ATTN.items()}
    if number not in names:             # ValueError: the caller's "malformed value" line
        raise ValueError(value)
    return names[number]


# --------------------------------------------------------------------------- documents

def to_document(rows: list[Row], path: Path, fmt: str, sha: str, models: Models, *,
                part: int | None = None) -> dict[str, Any]:
    """One benchkit result (schema version 2) for rows of one machine and build."""
    first = rows[0].fields
    times = sorted(t for t in (utc_time(r.fields.get("test_time")) for r in rows) if t)
    started = times[0] if times else _mtime(path)
    source = {"tool": "llama-bench", "file": path.name, "sha256": sha, "format": fmt,
              "tests": len(rows)}
    env = environment(first)
    cases = [to_case(i, r, path, fmt, sha, models) for i, r in enumerate(rows)]
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "run_id": run_id(started, path, sha, part), "status": "complete", "partial": False,
        "started_at": started, "finished_at": times[-1] if times else started,
        "benchkit_version": __version__, "command": ["benchkit", "import", path.name],
        "environment": env,
        "suite": {"name": f"llama-bench-{_slug(path.stem)}", "imported": True,
                  "description": f"imported from llama-bench's {fmt} output {path.name}",
                  "source": source},
        "cases": cases,
    }


def run_id(started: str, path: Path, sha: str, part: int | None) -> str:
    """Sortable like `benchkit run`'s, and the same for the same file (a re-import
    replaces the earlier one instead of adding a duplicate). Only digits of `started`
    reach the name, whatever the file said."""
    digits = re.sub(r"\D", "", started or "")
    stamp = f"{digits[:8]}T{digits[8:14]}Z" if len(digits) >= 14 else "00000000T000000Z"
    return f"{stamp}-import-{_slug(path.stem)}-{sha[:6]}{'' if part is None else f'-{part}'}"


_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


def utc_time(value: Any) -> str | None:
    """llama-bench's test_time ("2025-06-01T12:00:00Z", or with an offset) in UTC as
    benchkit writes times, or None when it is not a time at all (such a row is dated by
    the file's modification time, and says so)."""
    m = _TIME.fullmatch(str(value or "").strip())
    if not m:
        return None
    zone = (m[4] or "Z").replace("Z", "+00:00")
    zone = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        t = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}{zone}")
    except ValueError:                  # month 13, hour 25
        return None
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "file"


def _mtime(path: Path) -> str:
    t = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def environment(row: dict[str, Any]) -> dict[str, Any]:
    """The `environment` of an imported result: only what the llama-bench row says."""
    cpu = str(row.get("cpu_info") or "") or None
    gpu_names = [g.strip() for g in str(row.get("gpu_info") or "").split(",") if g.strip()]
    backends = backends_of(row)
    backend = backend_of(backends)
    gpus = [{"name": n, "memory_bytes": None, "driver": None} for n in gpu_names]
    return {
        "os": {"system": "unknown", "release": "unknown", "version": None, "machine": None},
        "cpu": {"model": cpu, "cores_physical": None, "cores_logical": None, "arch": None},
        "memory_bytes": None,
        "chip": chip_of(cpu, gpu_names, backend),
        "gpus": gpus,
        "backend": backend,
        "llama_cpp_system_info": None,
        "python": None,
        "versions": {"benchkit": __version__, "llama_cpp_commit": row.get("build_commit"),
                     "llama_cpp_build_number": row.get("build_number")},
        "imported": True,
        "source": "the llama-bench file (cpu_info, gpu_info, backends); the OS, memory and "
                  "core counts are not in it",
    }


def backends_of(row: dict[str, Any]) -> str:
    """llama-bench's `backends` ("CUDA", "MTL,BLAS", "CPU"), or what older files' boolean
    columns (cuda, metal, ...) add up to."""
    if row.get("backends"):
        return str(row["backends"])
    on = [name for col, name in _OLD_BACKENDS.items() if row.get(col) is True]
    return ",".join(on) or "CPU"


def backend_of(backends: str) -> str:
    """benchkit's environment.backend for llama-bench's backends string."""
    return backend_in(backends)


def chip_of(cpu: str | None, gpus: list[str], backend: str) -> dict[str, Any]:
    """The accelerator the file names (its first GPU when a GPU backend ran), or the CPU."""
    from benchkit.run.environment import identify_chip

    if backend != "cpu" and gpus:
        name = gpus[0]
        if backend == "metal" or name.startswith("Apple"):
            kind = "apple"
        elif backend == "cuda" or "NVIDIA" in name.upper():
            kind = "nvidia"
        elif backend == "hip" or re.search(r"\bAMD|Radeon|Instinct", name):
            kind = "amd"
        else:
            kind = "other"
        return {"kind": kind, "name": name, "id": identify_chip(name, None), "gpu_cores": None}
    return {"kind": "cpu", "name": cpu, "id": None, "gpu_cores": None}


def to_case(index: int, row: Row, path: Path, fmt: str, sha: str,
            models: Models) -> dict[str, Any]:
    from benchkit.engines.llama_cpp.bench import LlamaBench

    f = row.fields
    depth = int(f.get("n_depth") or 0)
    kind = "pp" if f["n_gen"] == 0 else ("tg" if f["n_prompt"] == 0 else "pp+tg")
    workload = {"kind": kind, "n_prompt": f["n_prompt"], "n_gen": f["n_gen"],
                **({"depth": depth} if depth else {})}
    iterations, warnings = iterations_of(f)
    if f.get("test_time") and not utc_time(f["test_time"]):
        warnings.append(f"test_time {_shown(f['test_time'])} is not a time: the run is dated "
                        "by the file's modification time")
    tps = [it["tps"] for it in iterations]
    summary = summarize(tps) if iterations else summary_of_means(f)
    backends = backends_of(f)
    ngl = f.get("n_gpu_layers")
    on_gpu = backend_of(backends) != "cpu" and ngl != 0
    return {
        "index": index, "status": "ok", "error": None, "model": models.of(f),
        "engine": engine_of(f, depth), "test": test_name(f["n_prompt"], f["n_gen"], depth),
        "engine_info": {
            "layer": LlamaBench.layer, "name": "llama-bench", "imported": True,
            "source_file": path.name, "source_sha256": sha, "source_format": fmt,
            "source_row": row.where,
            **{k: f.get(k) for k in ("build_commit", "build_number", "cpu_info", "gpu_info",
                                     "model_type", "n_threads", "test_time", "devices")
               if k in f},
            "backends": backends,
            "warmup": "not in the file (llama-bench runs one warmup unless --no-warmup)",
            "llama_bench_row": {k: v for k, v in f.items()
                                if k not in ("samples_ns", "samples_ts")},
        },
        "workload": workload, "load": None,
        "placement": {"device_kind": "gpu" if on_gpu else "cpu",
                      "n_gpu_layers_requested": ngl,
                      "note": "from the file's backends and n_gpu_layers; llama-bench does "
                              "not report where layers went"},
        "iterations": iterations, "summary": summary, "warnings": warnings,
    }


def iterations_of(f: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each repetition's sample as an iteration on llama-bench's clock."""
    tokens = f["n_prompt"] + f["n_gen"]
    if f.get("samples_ns"):
        return [{"tokens": tokens, "seconds": ns / 1e9, "tps": tokens * 1e9 / ns,
                 "clock": "tool", "tool_ns": ns} for ns in f["samples_ns"]], []
    if f.get("samples_ts"):
        return [{"tokens": tokens, "seconds": tokens / ts, "tps": ts, "clock": "tool"}
                for ts in f["samples_ts"]], []
    return [], ["the file has llama-bench's mean and standard deviation only (avg_ts, "
                "stddev_ts), not its repetitions: n is unknown (0 here) and tps_median holds "
                "the mean; import -o json or jsonl output for per-repetition samples"]


def summary_of_means(f: dict[str, Any]) -> dict[str, Any]:
    """A summary from llama-bench's avg/stddev when there are no samples."""
    tokens = f["n_prompt"] + f["n_gen"]
    mean = f.get("avg_ts") or (tokens * 1e9 / f["avg_ns"] if f.get("avg_ns") else None)
    sd = f.get("stddev_ts")
    return {"n": 0, "tps_mean": mean, "tps_median": mean, "tps_stdev": sd, "tps_min": None,
            "tps_max": None, "tps_cv": sd / mean if sd is not None and mean else None,
            "tps_ci95_low": None, "tps_ci95_high": None,
            "source": "llama-bench avg_ts and stddev_ts (no per-repetition samples)"}


def engine_of(f: dict[str, Any], depth: int) -> dict[str, Any]:
    """The case's `engine`: llama-bench's settings under benchkit's names."""
    load_mode = f.get("load_mode")
    use_mmap = f["use_mmap"] if "use_mmap" in f else (
        None if load_mode is None else load_mode in ("auto", "mmap", "mmap+mlock"))
    nopo = f.get("no_op_offload")
    return {"kind": "llama-bench", "n_gpu_layers": f.get("n_gpu_layers"),
            "n_ctx": depth + f["n_prompt"] + f["n_gen"], "n_batch": f.get("n_batch"),
            "n_ubatch": f.get("n_ubatch"), "n_threads": f.get("n_threads"),
            "flash_attn": f.get("flash_attn"), "type_k": f.get("type_k"),
            "type_v": f.get("type_v"), "use_mmap": use_mmap,
            "op_offload": None if nopo is None else not bool(nopo),
            **split_settings(f), "binary": None, "args": None}


def split_settings(f: dict[str, Any]) -> dict[str, Any]:
    """llama-bench's split_mode, main_gpu, tensor_split (`3.00/1.00`, `0.00` for the
    default) and devices (`CUDA0/CUDA1`, `auto`) under benchkit's names and types; a field
    the file lacks (an older llama-bench) is None."""
    parts = split_parts(str(f.get("tensor_split") or ""))
    devices = f.get("devices")
    return {"split_mode": f.get("split_mode"), "main_gpu": f.get("main_gpu"),
            "tensor_split": parts if any(parts) else None,
            "devices": (str(devices).split("/") if devices and devices not in ("auto", "none")
                        else None)}


class Models:
    """The `model` objects of imported rows, one per model, completed from the GGUF file
    itself where it is here: the path in model_filename, else a file given with --model
    (same parameter count; the same file name when several are given). Its sha256 pairs
    the import with benchkit's own runs of that file in `compare` and identifies it in
    community checks."""

    def __init__(self, given: list[Path]) -> None:
        self.given = given
        for p in given:
            if not p.is_file():
                raise BenchkitError("no such model file", file=str(p), field="--model")
        self.cache: dict[str, dict[str, Any]] = {}
        self.local: dict[tuple[str, Any], dict[str, Any] | None] = {}   # one hash a file
        self.used: set[Path] = set()

    def of(self, f: dict[str, Any]) -> dict[str, Any]:
        key = f"{f.get('model_filename')}|{f.get('model_n_params')}|{f.get('model_type')}"
        if key not in self.cache:
            self.cache[key] = self._model(f)
        return self.cache[key]

    def _model(self, f: dict[str, Any]) -> dict[str, Any]:
        filename = str(f.get("model_filename") or "")
        desc = str(f.get("model_type") or "").split()
        base = Path(filename.replace("\\", "/")).name
        model = {"name": base or str(f["model_type"]), "file": base or None, "source": None,
                 "size_bytes": f.get("model_size"), "sha256": None,
                 "architecture": desc[0] if desc else None,
                 "n_params": f.get("model_n_params"),
                 "quantization": quant_name(" ".join(desc[2:])),
                 "n_layers": None, "synthetic": False, "preset": None, "standin_for": None,
                 "type": f.get("model_type"),
                 "size_note": "model_size from llama-bench: the tensors' bytes, not the file's"}
        named = [p for p in self.given if p.name == base] or (
            self.given if len(self.given) == 1 else [])
        candidates = [(Path(filename).expanduser(), "the file named by model_filename")] \
            if filename else []
        candidates += [(p, "the --model file") for p in named]
        for candidate, how in candidates:
            key = (str(candidate), f.get("model_n_params"))
            if key not in self.local:
                self.local[key] = _local_model(candidate, f.get("model_n_params"), how)
            local = self.local[key]
            if local is not None:
                model.update(local)
                self.used.add(candidate)
                break
        return model

    def check_used(self) -> None:
        """A --model file that matched no test is a mistake worth one line."""
        for p in self.given:
            if p not in self.used:
                raise BenchkitError("matches no imported test (its parameter count differs "
                                    "from every model_n_params)", file=str(p), field="--model")


def quant_name(ftype: str) -> str | None:
    """llama.cpp's file-type description as the GGUF type name benchkit uses elsewhere:
    "Q4_K - Medium" -> Q4_K_M, "IQ2_XXS - 2.0625 bpw" -> IQ2_XXS, "Q8_0" -> Q8_0."""
    text = ftype.replace("(guessed)", "").strip()
    if not text:
        return None
    m = re.fullmatch(r"(\w+) - (Small|Medium|Large)", text)
    if m:
        return f"{m[1]}_{m[2][0]}"
    return text.split(" - ")[0].strip()


def _local_model(path: Path, n_params: Any, how: str) -> dict[str, Any] | None:
    """Size, sha256 and header of a GGUF file that has the row's parameter count."""
    from benchkit.models.gguf import read_gguf_info, sha256_file

    if not path.is_file():
        return None
    try:
        info = read_gguf_info(path)
    except BenchkitError:
        return None
    if n_params is not None and info.n_params != n_params:
        return None
    return {"size_bytes": info.size_bytes, "sha256": sha256_file(path),
            "architecture": info.architecture, "quantization": info.file_type,
            "n_layers": info.n_layers,
            "size_note": f"{how}, found here with the same parameter count: its size, "
                         "sha256 and header"}

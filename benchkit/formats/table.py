"""The end-of-run table, as llama-bench prints it, in md / csv / json / jsonl.

One row per case: model | size | params | engine | backend | ngl | threads | test | t/s | n.
`t/s` is the mean ± sample standard deviation over the timed iterations and `n` is
their count, so every figure says what it is. For `chat` the t/s is the decode rate a
reader sees and `ttft ms` the median time to first token.

Each of the four registers as a `benchkit run --format` (benchkit.formats); `report`
writes pages instead, so these are `run`'s alone.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from benchkit.results.facts import ran_on_gpu
from benchkit.results.model import Case, Run, Summary
from benchkit.core.units import fmt_bytes, fmt_params
from benchkit.formats import RUN, get, text_format

_MD_HEADER = ("model", "size", "params", "engine", "backend", "ngl", "threads", "test",
              "t/s (mean ± sd)", "n", "ttft ms (median)")
_MD_RIGHT = {"size", "params", "ngl", "threads", "test", "t/s (mean ± sd)", "n",
             "ttft ms (median)"}


def rows(doc: dict[str, Any] | Run) -> list[dict[str, Any]]:
    """Machine-readable rows (the csv / json / jsonl output)."""
    run = doc if isinstance(doc, Run) else Run.from_json(doc)
    backend = run.env.get("backend", "cpu")
    return [_row(case, backend) for case in run.cases]


def _row(case: Case, backend: str) -> dict[str, Any]:
    """One case's row; a server benchkit did not start, or a case never measured, has no
    placement: its backend is unknown."""
    model, engine = case.model or {}, case.engine or {}
    summary = case.summary or Summary()
    return {
        "model": model.get("name"),
        "quantization": model.get("quantization"),
        "size_bytes": model.get("size_bytes"),
        "n_params": model.get("n_params"),
        "synthetic": model.get("synthetic"),
        "engine": engine.get("kind"),
        "clock": case.clock,
        "backend": (_engine_backend(case.placement, backend if ran_on_gpu(case) else "cpu")
                    if case.placement else None),
        "n_gpu_layers": engine.get("n_gpu_layers"),
        "n_threads": engine.get("n_threads"),
        "test": case.test,
        "status": case.status,
        "n": summary.n,
        "tps_mean": summary.tps_mean,
        "tps_stdev": summary.tps_stdev,
        "tps_median": summary.tps_median,
        "tps_ci95_low": summary.tps_ci95_low,
        "tps_ci95_high": summary.tps_ci95_high,
        "ttft_median_s": summary.get("ttft_median_s"),
        "error": case.error,
    }


def format_table(doc: dict[str, Any], fmt: str = "md") -> str:
    """The table for `doc` in the `run` format `fmt` (benchkit.formats)."""
    return get(RUN, fmt).text([doc])


def _data(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of every result, text from the files printable (no escapes, one line)."""
    from benchkit.core.textsafe import terminal

    return [{k: terminal(v, one_line=True) if isinstance(v, str) else v for k, v in r.items()}
            for doc in docs for r in rows(doc)]


@text_format("md", commands=(RUN,))
def markdown(docs: list[dict[str, Any]]) -> str:
    """The llama-bench style table, aligned for a terminal."""
    return _markdown(_data(docs))


@text_format("csv", commands=(RUN,))
def csv_table(docs: list[dict[str, Any]]) -> str:
    """One csv row per case, every machine-readable column."""
    data = _data(docs)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(data[0]) if data else ["model"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return buf.getvalue()


@text_format("json", commands=(RUN,))
def json_table(docs: list[dict[str, Any]]) -> str:
    """The rows as one indented JSON list."""
    return json.dumps(_data(docs), indent=2, ensure_ascii=False) + "\n"


@text_format("jsonl", commands=(RUN,))
def jsonl_table(docs: list[dict[str, Any]]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _data(docs))


def _markdown(data: list[dict[str, Any]]) -> str:
    table = [_md_row(r) for r in data]
    widths = [max(3, len(h), *(len(row[i]) for row in table)) for i, h in enumerate(_MD_HEADER)]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "| " + " | ".join(
            c.rjust(w) if h in _MD_RIGHT else c.ljust(w)
            for c, w, h in zip(cells, widths, _MD_HEADER)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if h in _MD_RIGHT else "-" * w
                             for w, h in zip(widths, _MD_HEADER)) + " |"
    return "\n".join([line(_MD_HEADER), rule, *(line(r) for r in table)]) + "\n"


def _md_row(r: dict[str, Any]) -> list[str]:
    name = (r["model"] or "?").removesuffix(".gguf")
    if r["synthetic"]:
        name += " (synthetic)"
    if r["status"] == "unsupported":
        tps = "unsupported"
    elif r["status"] != "ok":
        tps = "FAILED"
    elif (r["n"] or 0) < 2:
        tps = f"{r['tps_mean']:.2f} ± n/a"      # one iteration has no spread to show
    else:
        tps = f"{r['tps_mean']:.2f} ± {r['tps_stdev']:.2f}"
    ttft = f"{r['ttft_median_s'] * 1000:.1f}" if r["ttft_median_s"] is not None else ""
    return [name, fmt_bytes(r["size_bytes"]), fmt_params(r["n_params"]), r["engine"] or "",
            _backend(r["backend"]) if r["backend"] else "", _blank(r["n_gpu_layers"]), _blank(r["n_threads"]),
            r["test"], tps,
            str(r["n"] or 0), ttft]


def _blank(value: Any) -> str:
    """A setting an engine does not have (a server's threads) prints as nothing."""
    return "" if value is None else str(value)


def _backend(name: str) -> str:
    return {"cuda": "CUDA", "metal": "Metal", "cpu": "CPU", "vulkan": "Vulkan", "hip": "ROCm",
            "sycl": "SYCL", "mlx-cpu": "MLX (CPU)", "mlx-gpu": "MLX (Metal)"}.get(name, name)


def _engine_backend(placement: dict[str, Any], llama_backend: str) -> str:
    """`mlx-cpu` / `mlx-gpu` for the mlx engine (its placement names its backend), else the
    llama.cpp build's backend."""
    if placement.get("backend") == "mlx":
        return f"mlx-{placement.get('device_kind') or 'cpu'}"
    return llama_backend

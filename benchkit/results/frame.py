"""`load_results(paths)`: result files as one pandas DataFrame, one row per case and test.

This is what reports, comparisons and projections read, so the column names are a
contract (docs/architecture.md lists them). The environment is flattened into `env_`
columns; `device_kind` / `device_name` / `device_id` say what did the work: the GPU or
Apple chip when any layer was offloaded, else the CPU (a `cpu-<model>` slug as id).

A serve case is one load level (benchkit.workloads.serve.workload), so it stays one row: its
level's figures are the `serve_` columns (SERVE_COLUMNS, empty for other workloads),
named with their unit as the other columns are (`_s` seconds, `_tps` tokens per second,
`_rps` requests per second).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from benchkit import engines
from benchkit.run.environment import cpu_slug
from benchkit.core.errors import BenchkitError
from benchkit.results.facts import device_kind, gpus_used
from benchkit.results.io import read_result
from benchkit.results.model import Case, Run, Summary

COLUMNS = [
    # run
    "file", "run_id", "run_status", "partial", "started_at", "suite",
    # case
    "case_index", "status", "error", "test", "workload_kind", "n_prompt", "n_gen", "depth",
    "warmup", "warmup_used",
    # model
    "model_name", "model_size_bytes", "model_sha256", "model_arch", "model_params",
    "model_quant", "model_layers", "model_synthetic",
    # engine: the kind, then every engine's settings (ENGINE_SETTINGS, from the registry)
    "engine", "engine_layer", "clock",
    # figures
    "n", "tps_mean", "tps_median", "tps_stdev", "tps_min", "tps_max", "tps_cv",
    "tps_ci95_low", "tps_ci95_high", "tps_values", "ttft_median_s",
    # serve levels: SERVE_COLUMNS, below
    # load
    "load_seconds", "peak_rss_bytes",
    # placement
    "layers_offloaded", "layers_total", "device_kind", "device_name", "device_id", "backend",
    "flash_attn_used", "model_buffer_mib", "kv_buffer_mib", "compute_buffer_mib",
    # several GPUs: how many did the work, and each one's share (JSON text)
    "n_gpus", "gpu_layers", "gpu_buffer_mib", "gpu_power_w", "gpu_power_w_each",
    "gpu_joules_per_token",
    # environment
    "env_os_system", "env_os_release", "env_cpu_model", "env_cpu_cores_logical",
    "env_cpu_cores_physical", "env_memory_bytes", "env_chip_kind", "env_chip_name",
    "env_chip_id", "env_chip_gpu_cores", "env_gpu_name", "env_gpu_memory_bytes", "env_backend",
    "env_benchkit_version", "env_llama_cpp_python_version",
]

_SUMMARY = ("n", "tps_mean", "tps_median", "tps_stdev", "tps_min", "tps_max", "tps_cv",
            "tps_ci95_low", "tps_ci95_high")
# The settings that define a configuration: the engine's kind and every engine's own
# settings, as the engines declare them (lists and mappings as JSON text, so that rows group).
ENGINE_SETTINGS = ("engine", *engines.setting_names())
COLUMNS[COLUMNS.index("clock") + 1:COLUMNS.index("clock") + 1] = list(ENGINE_SETTINGS[1:])
# A serve level's figures: column -> key of the case summary (serve.serve_summary).
SERVE_COLUMNS = {
    "serve_concurrency": "concurrency", "serve_rate_rps": "rate",
    "serve_requests": "requests", "serve_requests_ok": "requests_ok",
    "serve_error_rate": "error_rate", "serve_level_s": "level_s",
    "serve_requests_per_s": "requests_per_s", "serve_output_tps": "output_tps",
    "serve_input_tps": "input_tps", "serve_ttft_p50_s": "ttft_p50_s",
    "serve_ttft_p90_s": "ttft_p90_s", "serve_ttft_p99_s": "ttft_p99_s",
    "serve_tpot_p50_s": "tpot_p50_s", "serve_tpot_p99_s": "tpot_p99_s",
    "serve_itl_p50_s": "itl_p50_s", "serve_itl_p99_s": "itl_p99_s",
    "serve_e2e_p50_s": "e2e_p50_s", "serve_e2e_p99_s": "e2e_p99_s",
    "serve_goodput_rps": "goodput_rps",
    "serve_cache_hit_rate": "cache_hit_rate", "serve_draft_acceptance": "draft_acceptance",
    "serve_slo_max_load": "slo_max_load", "serve_speculative_speedup": "speculative_speedup",
}
COLUMNS[COLUMNS.index("ttft_median_s") + 1:COLUMNS.index("ttft_median_s") + 1] = list(
    SERVE_COLUMNS)


def cell(value: Any) -> Any:
    """A frame cell as a value: None for pandas' missing values (NaN, NA)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if not isinstance(value, (list, tuple, dict)) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def load_results(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Any:
    """Read result files (or every *.json in a folder) into a DataFrame, one row per case.

    Every file is checked (format, schema version, JSON Schema) first: one bad file
    fails the load with its name, rather than quietly dropping rows.
    """
    return frame_of((str(path), read_result(path)) for path in expand_paths(paths))


def frame_of(docs: Iterable[tuple[str, dict[str, Any]]]) -> Any:
    """The DataFrame of result documents already read, each with the file it came from."""
    import pandas as pd

    records = [row for path, doc in docs for row in rows_of(doc, path)]
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """A path, a folder (its *.json files, sorted) or a list of them, as files."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise BenchkitError("no result files (*.json) in this folder", file=str(p))
            files.extend(found)
        else:
            files.append(p)
    return files


def rows_of(doc: dict[str, Any] | Run, file: str = "") -> list[dict[str, Any]]:
    """The DataFrame rows of one result document (its JSON object or its typed `Run`)."""
    run = doc if isinstance(doc, Run) else Run.from_json(doc)
    env = _env_columns(run.env)
    head = {"file": file, "run_id": run.run_id, "run_status": run.status,
            "partial": run.partial, "started_at": run.started_at,
            "suite": (run.suite or {}).get("name")}
    return [{**head, **_case_columns(case, env), **env} for case in run.cases]


def _case_columns(case: Case, env: dict[str, Any]) -> dict[str, Any]:
    model = case.model or {}
    workload = case.workload or {}
    summary = case.summary or Summary()
    engine = case.engine or {}
    load = case.load or {}
    placement = case.placement or {}
    kind = device_kind(case)
    row = {
        "case_index": case.index, "status": case.status,
        "error": case.error, "test": case.test,
        "workload_kind": workload.get("kind"), "n_prompt": workload.get("n_prompt"),
        "n_gen": workload.get("n_gen"), "depth": workload.get("depth") or 0,
        "warmup": case.warmup, "warmup_used": case.warmup_used,
        "model_name": model.get("name"), "model_size_bytes": model.get("size_bytes"),
        "model_sha256": model.get("sha256"), "model_arch": model.get("architecture"),
        "model_params": model.get("n_params"), "model_quant": model.get("quantization"),
        "model_layers": model.get("n_layers"), "model_synthetic": bool(model.get("synthetic")),
        **{key: _setting(engine.get(key)) for key in ENGINE_SETTINGS[1:]},
        "engine": engine.get("kind"),
        "engine_layer": (case.engine_info or {}).get("layer"),
        "clock": case.clock,
        **{key: summary.get(key) for key in _SUMMARY},
        "tps_values": [it.tps for it in case.iterations],
        "ttft_median_s": summary.get("ttft_median_s"),
        **_serve_columns(workload.get("kind"), summary),
        "load_seconds": load.get("seconds"), "peak_rss_bytes": load.get("peak_rss_bytes"),
        "layers_offloaded": placement.get("layers_offloaded"),
        "layers_total": placement.get("layers_total"),
        "device_kind": kind,
        # what computed the figure: `mlx` for the mlx engine (its placement says so), else
        # the llama.cpp build's backend (cpu, cuda, metal...): projections keep them apart
        "backend": placement.get("backend") or env.get("env_backend"),
        # flash attention as llama.cpp reported it at load (None where it said nothing)
        "flash_attn_used": placement.get("flash_attn"),
        "model_buffer_mib": _buffer_mib(placement, "model"),
        "kv_buffer_mib": _buffer_mib(placement, "kv"),
        "compute_buffer_mib": _buffer_mib(placement, "compute"),
        **gpu_columns(case),
    }
    if kind == "gpu":
        row["device_name"] = env["env_chip_name"] or env["env_gpu_name"]
        row["device_id"] = env["env_chip_id"]
    else:
        row["device_name"] = env["env_cpu_model"]
        row["device_id"] = cpu_slug(env["env_cpu_model"])
    return row


def _serve_columns(kind: str | None, summary: Summary) -> dict[str, Any]:
    """A serve level's figures from its summary; None for every other workload (a chat's
    ttft is `ttft_median_s`, not a level's)."""
    serve = kind == "serve"
    return {col: summary.get(key) if serve else None for col, key in SERVE_COLUMNS.items()}


def _setting(value: Any) -> Any:
    """A setting as a DataFrame cell: lists and mappings as JSON text (hashable)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def gpu_columns(case: Case) -> dict[str, Any]:
    """How many GPUs did the work and what each held and drew: layers and buffer MiB per
    device as llama.cpp reported them, the GPUs' summed mean power and energy per token,
    and each GPU's mean power (NVML's order)."""
    gpus = gpus_used(case)
    devices = [d for d in (case.placement or {}).get("per_device") or []
               if d.get("kind") in ("gpu", "split")]
    layers = {d["device"]: d["layers"] for d in devices if d.get("layers") is not None}
    mib = {d["device"]: round(sum(d.get(k) or 0 for k in ("model_mib", "kv_mib",
                                                           "compute_mib")), 2)
           for d in devices}
    nv = (case.telemetry or {}).get("nvidia") or {}
    each = [((d.get("power_w") or {}).get("mean")) for d in nv.get("devices") or []]
    return {"n_gpus": len(gpus) if gpus else None,
            "gpu_layers": json.dumps(layers) if layers else None,
            "gpu_buffer_mib": json.dumps(mib) if mib else None,
            "gpu_power_w": nv.get("power_w_mean"),
            "gpu_power_w_each": json.dumps(each) if each else None,
            "gpu_joules_per_token": nv.get("joules_per_token")}


def _buffer_mib(placement: dict[str, Any], kind: str) -> float | None:
    sizes = [b["mib"] for b in placement.get("buffers") or [] if b.get("kind") == kind]
    return sum(sizes) if sizes else None


def _env_columns(env: dict[str, Any]) -> dict[str, Any]:
    os_, cpu, chip = env.get("os") or {}, env.get("cpu") or {}, env.get("chip") or {}
    gpus = env.get("gpus") or []
    versions = env.get("versions") or {}
    return {
        "env_os_system": os_.get("system"), "env_os_release": os_.get("release"),
        "env_cpu_model": cpu.get("model"), "env_cpu_cores_logical": cpu.get("cores_logical"),
        "env_cpu_cores_physical": cpu.get("cores_physical"),
        "env_memory_bytes": env.get("memory_bytes"),
        "env_chip_kind": chip.get("kind"), "env_chip_name": chip.get("name"),
        "env_chip_id": chip.get("id"), "env_chip_gpu_cores": chip.get("gpu_cores"),
        "env_gpu_name": gpus[0].get("name") if gpus else None,
        "env_gpu_memory_bytes": gpus[0].get("memory_bytes") if gpus else None,
        "env_backend": env.get("backend"),
        "env_benchkit_version": versions.get("benchkit"),
        "env_llama_cpp_python_version": versions.get("llama_cpp_python"),
    }

"""llama-bench's own jsonl files as projection measurements, with the settings each row ran
(flash attention, -ngl, --n-cpu-moe) and the backend it names.

The GPU evidence under reports/nvidia/v3/ is llama-bench jsonl on shape-exact stand-ins
(`<preset>.<QUANT>.synthetic.gguf`): the model's shape is its preset's, at the file's size.
A machine's host (system RAM bandwidth, host-device link) comes with the files, in the
folder's `host.yaml`, for the partly offloaded rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

from benchkit.core.errors import BenchkitError
from benchkit.core.safeio import MAX_RESULT_BYTES, read_bounded, yaml_load_bounded
from benchkit.projection.chips import identify, load_chips
from benchkit.projection.measurements import Measurement
from benchkit.projection.placement import Host, RunConfig
from benchkit.projection.shapes import shape_from_preset

# llama-bench's `backends` field (the build's) -> benchkit's backend names.
BACKENDS = {"CUDA": "cuda", "ROCm": "hip", "HIP": "hip", "Vulkan": "vulkan", "SYCL": "sycl",
            "Metal": "metal", "CPU": "cpu", "BLAS": "cpu"}


def row_config(row: dict[str, Any]) -> RunConfig:
    """The placement and flash attention a llama-bench row ran with (-ngl 99 or more: all)."""
    ngl = int(row.get("n_gpu_layers", 99))
    fa = row.get("flash_attn")
    flash = None if fa in (None, -1, "auto") else bool(int(fa))
    layers_all = ngl >= 99 or ngl < 0
    return RunConfig(flash_attn=flash, n_gpu_layers=None if layers_all else ngl,
                     n_cpu_moe=int(row.get("n_cpu_moe", 0) or 0))


def row_backend(row: dict[str, Any]) -> str | None:
    """The GPU backend of the build that wrote the row (its first non-CPU one)."""
    names = [b.strip() for b in str(row.get("backends", "")).split(",") if b.strip()]
    gpu = [BACKENDS[n] for n in names if n in BACKENDS and BACKENDS[n] != "cpu"]
    return gpu[0] if gpu else (BACKENDS.get(names[0]) if names else None)


def _preset_of(filename: str) -> tuple[str, str] | None:
    """(preset, quant) of a stand-in's file name `<preset>.<QUANT>.synthetic.gguf`."""
    parts = Path(filename).name.split(".")
    if len(parts) >= 4 and parts[-2] == "synthetic":
        return ".".join(parts[:-3]), parts[-3]
    return None


def load_host(folder: Path) -> Host | None:
    """The host of a folder of runs (`host.yaml`: cpu_bw_gbs, link_gbs), or None."""
    path = folder / "host.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        doc = yaml_load_bounded(read_bounded(path, 1 << 16, "host file"), str(path))[1] or {}
    except yaml.YAMLError:
        raise BenchkitError("not valid YAML", file=str(path)) from None
    try:
        return Host(cpu_bw_gbs=float(doc["cpu_bw_gbs"]), link_gbs=float(doc["link_gbs"]))
    except (KeyError, TypeError, ValueError):
        raise BenchkitError("needs cpu_bw_gbs and link_gbs (GB/s)", file=str(path),
                            field="cpu_bw_gbs") from None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of one llama-bench jsonl file."""
    text = read_bounded(path, MAX_RESULT_BYTES, "llama-bench jsonl")
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise BenchkitError("not a JSON line", file=str(path), line=i) from None
    return rows


def measurements_from_rows(rows: Iterable[dict[str, Any]], source: str,
                           host: Host | None = None, depth: bool = False) -> list[Measurement]:
    """One Measurement per chip, model file and setting: the tg and the pp row of each;
    with `depth`, one per context depth too (else rows at a depth are left out)."""
    chips = load_chips()
    groups: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        chip_id = identify(str(row.get("gpu_info", "")).split(",")[0].strip(), chips=chips)
        n_depth = int(row.get("n_depth", 0) or 0)
        if chip_id is None or (n_depth and not depth):
            continue
        cfg = row_config(row)
        key = (chip_id, row.get("model_filename"), cfg, row_backend(row), n_depth)
        kind = "tg" if row.get("n_gen") and not row.get("n_prompt") else "pp"
        groups[key][kind] = row
    out = []
    for (chip_id, filename, cfg, backend, n_depth), got in groups.items():
        first = got.get("tg") or got["pp"]
        named = _preset_of(str(filename))
        shape = shape_from_preset(named[0], named[1], float(first["model_size"])) \
            if named else None
        tg, pp = got.get("tg"), got.get("pp")
        out.append(Measurement(
            chip_id=chip_id, tg_tps=float(tg["avg_ts"]) if tg else None,
            pp_tps=float(pp["avg_ts"]) if pp else None,
            model_bytes=float(first["model_size"]), n_params=float(first["model_n_params"]),
            n_layers=shape.n_layers if shape else None, source=source,
            model_key=f"{Path(str(filename)).name}", model_name=str(first.get("model_type")),
            quant=named[1] if named else None, shape=shape,
            tg_n=len(tg.get("samples_ts") or []) if tg else None,
            tg_cv=_cv(tg), pp_n=len(pp.get("samples_ts") or []) if pp else None, pp_cv=_cv(pp),
            tg_tokens=int(tg["n_gen"]) if tg else 128,
            pp_tokens=int(pp["n_prompt"]) if pp else 512, config=cfg,
            host=host if cfg.partial else None, depth=n_depth,
            backend=backend if backend and backend != chips[chip_id].backend else None))
    return out


def _cv(row: dict[str, Any] | None) -> float | None:
    if not row or not row.get("avg_ts"):
        return None
    return float(row.get("stddev_ts", 0.0)) / float(row["avg_ts"])


def folder_measurements(folder: Path, depth: bool = False) -> list[Measurement]:
    """Every llama-bench jsonl file of a folder, with the folder's host (and the rows at a
    context depth, with `depth`)."""
    host = load_host(folder)
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out += measurements_from_rows(read_rows(path), f"{folder.name}/{path.name}", host,
                                      depth)
    return out


def with_config(m: Measurement, config: RunConfig) -> Measurement:
    """The measurement as the model it measured, asked for at another setting."""
    return replace(m, config=config, tg_tps=None, pp_tps=None)

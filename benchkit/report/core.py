"""Turn result files into a report page, Markdown and/or one self-contained HTML file.

The page follows the one our users wrote by hand (summary with the headline figure and
the speedup over CPU-only, a metrics table, per-workload detail, memory buffers and
layer placement, environment, projections, achieved bandwidth), but every figure comes
from a result file and carries its unit, iteration count and spread.

This module computes the figures (`build_context`) and writes the files
(`write_report`); the wording and layout live in `benchkit/templates/`, the pictures in
`benchkit.report.charts.core`. A section is present only when the results hold its data; where a
figure cannot be known (a CPU's peak bandwidth, a chip missing from the database) the
page says so instead of inventing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.core.stats import percentile
from benchkit.core.units import fmt_bytes, fmt_mib, fmt_ms, fmt_params, fmt_pct, fmt_tps  # noqa: F401
# Engine settings that define a configuration: cases that share them (and the model
# and the run) are one row of the metrics table.
from benchkit.results.frame import ENGINE_SETTINGS
from benchkit.results.frame import cell as _clean
from benchkit.results.facts import DECODE_KINDS, PROMPT_KINDS   # by preference order

FORMATS = ("md", "html", "both")
SIZES_B = (1, 3, 7, 13, 70)        # the reference page's model-size table
SIZE_QUANT = "Q4_K_M"
SYNTHETIC = "synthetic stand-in"


# --------------------------------------------------------------------------- loading

def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Result paths as given, with a directory standing for the *.json files inside it."""
    from benchkit.results.frame import expand_paths as expand

    out = expand(list(paths))
    if not out:
        raise BenchkitError("no result files given: pass one or more result JSON files "
                            "(or a directory of them)", field="RESULT")
    return out


def load(paths: Iterable[str | Path]):
    """The results as a DataFrame (one row per case) plus each raw document by file.

    The DataFrame is the shared contract; the raw documents add what it flattens away
    (per-device buffers, every iteration's tokens and seconds, per-token latencies).
    """
    from benchkit.results.frame import frame_of
    from benchkit.results.io import read_result

    files = expand_paths(paths)
    # each file read and checked once, in order: a bad file is refused in one line
    read = [(str(f), read_result(f)) for f in files]
    df = frame_of(read)
    if df is None or len(df) == 0:
        raise BenchkitError("the results hold no cases to report", file=str(files[0]),
                            field="cases")
    present = set(df["file"])
    docs = {f: doc for f, doc in read if f in present}
    if not (df["status"] == "ok").any():
        first = df.iloc[0]
        raise BenchkitError(f"every case failed, nothing to report (first error: "
                            f"{_clean(first.get('error')) or 'unknown'})",
                            file=str(first["file"]), field="cases.status")
    return df, docs


# --------------------------------------------------------------------------- small helpers



def _num(value: Any) -> float | None:
    value = _clean(value)
    return None if value is None else float(value)


def spread_text(row: Any) -> str:
    """'± 1.2 (CV 2.9%, n=5)': the spread that goes with every median."""
    sd, cv, n = _num(row.get("tps_stdev")), _num(row.get("tps_cv")), _clean(row.get("n"))
    parts = [f"± {fmt_tps(sd)}" if sd is not None else "± —"]
    inner = []
    if cv is not None:
        inner.append(f"CV {fmt_pct(cv)}")
    if n is not None:
        inner.append(f"n={int(n)}")
    if inner:
        parts.append(f"({', '.join(inner)})")
    return " ".join(parts)


# --------------------------------------------------------------------------- configurations

@dataclass
class Config:
    """One engine configuration of one model in one run: a row of the metrics table."""

    file: str
    run_id: str
    model_name: str
    model_sha256: str | None
    model_bytes: float | None
    model_layers: int | None
    synthetic: bool
    engine: dict[str, Any]
    device_kind: str
    device_name: str | None
    device_id: str | None
    backend: str | None
    layers_offloaded: int | None
    layers_total: int | None
    machine: str | None = None        # what the run's environment calls the machine
    rows: dict[str, Any] = field(default_factory=dict)   # test -> DataFrame row (ok cases)
    label: str = ""
    baseline: "Config | None" = None

    @property
    def placement_text(self) -> str:
        """Where the layers ran, in words."""
        if self.device_kind == "unknown":
            return "as the server placed it"
        if self.device_kind == "gpu" and self.layers_offloaded is None:
            # the engine did not say how many layers (llama-bench, llama-server)
            ngl = self.engine.get("n_gpu_layers")
            asked = "all layers" if ngl is not None and ngl < 0 else f"n_gpu_layers {ngl}"
            return f"{asked} on {self.device_name or 'GPU'} (asked)"
        if self.device_kind != "gpu" or not self.layers_offloaded:
            return "CPU only"
        where = self.device_name or "GPU"
        if self.layers_total and self.layers_offloaded >= self.layers_total:
            return f"all layers on {where}"
        return f"{self.layers_offloaded}/{self.layers_total or '?'} layers on {where}"

    @property
    def layers_text(self) -> str:
        if self.layers_offloaded is None or not self.layers_total:
            return "—"
        share = self.layers_offloaded / self.layers_total
        return f"{self.layers_offloaded}/{self.layers_total} ({share:.0%})"

    def first_of(self, kinds: Sequence[str]) -> Any | None:
        """The first ok case whose workload kind is in `kinds`, by preference order."""
        for kind in kinds:
            for row in self.rows.values():
                if row["workload_kind"] == kind:
                    return row
        return None

    @property
    def decode(self) -> Any | None:
        return self.first_of(DECODE_KINDS)

    @property
    def prompt(self) -> Any | None:
        return self.first_of(PROMPT_KINDS)

    @property
    def is_cpu_only(self) -> bool:
        if self.device_kind == "unknown" or (self.device_kind == "gpu"
                                             and self.layers_offloaded is None):
            return False
        return self.device_kind != "gpu" or not self.layers_offloaded


def configurations(df) -> list[Config]:
    """Group the ok cases into configurations, in the order the run measured them."""
    ok = df[df["status"] == "ok"]
    swept = _swept_ctx(ok)
    configs: dict[tuple, Config] = {}
    for _, row in ok.iterrows():
        key = _config_key(row, swept)
        while key in configs and row["test"] in configs[key].rows:
            key = (*key, "again")      # the same test twice in one configuration: keep both
        cfg = configs.get(key)
        if cfg is None:
            keys = ENGINE_SETTINGS if key[:-1] in swept else _NO_CTX
            cfg = configs[key] = Config(
                file=row["file"], run_id=row["run_id"], model_name=row["model_name"],
                model_sha256=_clean(row.get("model_sha256")),
                model_bytes=_num(row.get("model_size_bytes")),
                model_layers=_clean(row.get("model_layers")),
                synthetic=bool(_clean(row.get("model_synthetic"))),
                engine={k: _clean(row.get(k)) for k in keys},
                device_kind=_clean(row.get("device_kind")) or "cpu",
                device_name=_clean(row.get("device_name")),
                device_id=_clean(row.get("device_id")), backend=_clean(row.get("env_backend")),
                layers_offloaded=_clean(row.get("layers_offloaded")),
                layers_total=_clean(row.get("layers_total")),
                machine=_clean(row.get("env_chip_name")) or _clean(row.get("env_cpu_model")))
        cfg.rows.setdefault(row["test"], row)
    out = list(configs.values())
    _label(out)
    _pick_baselines(out)
    return out


# The runner sizes the context to each workload unless the suite fixes n_ctx, so n_ctx
# varies from test to test inside one configuration; it separates configurations only
# where the suite swept it (the same test measured at several n_ctx).
_NO_CTX = tuple(k for k in ENGINE_SETTINGS if k != "n_ctx")


def _base_key(row: Any) -> tuple:
    return (row["file"], _clean(row.get("model_sha256")),
            *(str(_clean(row.get(k))) for k in _NO_CTX))


def _swept_ctx(ok) -> set[tuple]:
    """Base keys whose cases measure one test at more than one n_ctx."""
    seen: dict[tuple, set[str]] = {}
    for _, row in ok.iterrows():
        seen.setdefault((_base_key(row), row["test"]), set()).add(str(_clean(row.get("n_ctx"))))
    return {key for (key, _), ctxs in seen.items() if len(ctxs) > 1}


def _config_key(row: Any, swept: set[tuple]) -> tuple:
    base = _base_key(row)
    return (*base, str(_clean(row.get("n_ctx"))) if base in swept else None)


def _label(configs: list[Config]) -> None:
    """Short unique names: where it ran, plus only the settings that differ."""
    varying = [k for k in ENGINE_SETTINGS
               if len({str(c.engine.get(k)) for c in configs}) > 1]
    if len({c.placement_text for c in configs}) == len(configs) and "n_gpu_layers" in varying:
        varying.remove("n_gpu_layers")   # "CPU only" / "all layers on X" already says it
    many_models = len({c.model_sha256 or c.model_name for c in configs}) > 1
    for c in configs:
        parts = [c.model_name] if many_models else []
        parts.append(c.placement_text)
        parts += [_setting_text(k, c.engine.get(k)) for k in varying
                  if c.engine.get(k) is not None]
        c.label = " · ".join(parts)
    _disambiguate(configs)


def _setting_text(key: str, value: Any) -> str:
    """A setting in a label: the engine by its name alone, others as `key value`."""
    return str(value) if key == "engine" else f"{key} {value}"


def _disambiguate(configs: list[Config]) -> None:
    """Where labels repeat, add the first of device, run id, file name that tells them apart."""
    for extra in (lambda c: c.device_name, lambda c: c.machine, lambda c: c.run_id,
                  lambda c: Path(c.file).stem, lambda c: f"#{configs.index(c) + 1}"):
        groups: dict[str, list[Config]] = {}
        for c in configs:
            groups.setdefault(c.label, []).append(c)
        for group in groups.values():
            if len(group) > 1 and len({str(extra(c)) for c in group}) == len(group):
                for c in group:
                    c.label = f"{c.label} · {extra(c)}"


def _pick_baselines(configs: list[Config]) -> None:
    """Per model, the CPU-only configuration (n_gpu_layers 0 first), else the first one.

    The baseline comes from the same run where that run has a CPU-only configuration,
    so that a GPU is compared with the CPU of its own machine.
    """
    by_model: dict[Any, list[Config]] = {}
    for c in configs:
        by_model.setdefault(c.model_sha256 or c.model_name, []).append(c)
    for group in by_model.values():
        fallback = _baseline_of(group)
        for c in group:
            same_run = [o for o in group if o.file == c.file and o.is_cpu_only]
            c.baseline = _baseline_of(same_run) if same_run else fallback


def _baseline_of(group: list[Config]) -> Config:
    cpu = [c for c in group if c.is_cpu_only]
    zero = [c for c in cpu if c.engine.get("n_gpu_layers") == 0]
    return (zero or cpu or group)[0]


def _ratio(a: Any | None, b: Any | None) -> float | None:
    """a / b on medians, when both exist and measure the same test."""
    if a is None or b is None or a["test"] != b["test"]:
        return None
    am, bm = _num(a.get("tps_median")), _num(b.get("tps_median"))
    return am / bm if am and bm else None


# --------------------------------------------------------------------------- sections

def _figure(row: Any | None, synthetic: bool) -> dict[str, Any] | None:
    """A median tok/s with its spread, ready for a table cell."""
    if row is None:
        return None
    return {"test": row["test"], "median": fmt_tps(_num(row.get("tps_median"))),
            "spread": spread_text(row), "synthetic": synthetic}


def performance(configs: list[Config]) -> list[dict[str, Any]]:
    """Rows of the metrics table: decode and prompt tok/s with spread, speedup."""
    rows = []
    for c in configs:
        base = c.baseline
        dec_x = _ratio(c.decode, base.decode if base else None)
        pp_x = _ratio(c.prompt, base.prompt if base else None)
        rows.append({
            "label": c.label, "backend": c.backend or "—", "layers": c.layers_text,
            "decode": _figure(c.decode, c.synthetic), "prompt": _figure(c.prompt, c.synthetic),
            "is_baseline": base is c,
            "speedup_decode": None if dec_x is None else f"{dec_x:.2f}×",
            "speedup_prompt": None if pp_x is None else f"{pp_x:.2f}×",
        })
    return rows


def summary(configs: list[Config], df) -> dict[str, Any]:
    """The headline: the best decode figure, and its speedup over the CPU-only run."""
    with_decode = [c for c in configs if c.decode is not None]
    pool = with_decode or configs
    def headline(c: Config) -> Any:      # rows are pandas Series: no `or` between them
        if with_decode:
            return c.decode
        return c.prompt if c.prompt is not None else next(iter(c.rows.values()))

    best = max(pool, key=lambda c: _num(headline(c)["tps_median"]) or 0)
    best_row = headline(best)
    base = best.baseline
    speedup = None
    if base is not None and base is not best and not (best.is_cpu_only and base.is_cpu_only):
        ratio = _ratio(best_row, base.rows.get(best_row["test"]))
        if ratio is not None:
            speedup = {"ratio": f"{ratio:.1f}×", "over": base.label,
                       "cpu_only": base.is_cpu_only}
    models = []
    for sha, group in df[df["status"] == "ok"].groupby("model_sha256", sort=False, dropna=False):
        first = group.iloc[0]
        models.append({
            "name": first["model_name"], "quant": _clean(first.get("model_quant")) or "—",
            "size": fmt_bytes(_num(first.get("model_size_bytes"))),
            "params": fmt_params(_num(first.get("model_params"))),
            "arch": _clean(first.get("model_arch")) or "—",
            "synthetic": bool(_clean(first.get("model_synthetic"))),
            "sha256": _clean(sha)})
    devices = list(dict.fromkeys(_hardware_text(r) for _, r in df.iterrows()))
    tests = list(dict.fromkeys(df[df["status"] == "ok"]["test"]))
    return {"best": best.label, "figure": _figure(best_row, best.synthetic),
            "kind": "decode" if with_decode else "throughput", "speedup": speedup,
            "all_cpu": all(c.is_cpu_only for c in configs),
            "models": models, "hardware": devices, "tests": tests,
            "n_configs": len(configs), "suites": list(dict.fromkeys(df["suite"]))}


def _hardware_text(row: Any) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda)' or the CPU model for a CPU-only machine."""
    chip = _clean(row.get("env_chip_name")) or _clean(row.get("env_cpu_model")) or "unknown"
    cores = _clean(row.get("env_chip_gpu_cores"))
    backend = _clean(row.get("env_backend"))
    text = f"{chip}, {int(cores)} GPU cores" if cores else chip
    return f"{text} ({backend} backend)" if backend else text


def _case(docs: dict, row: Any) -> dict[str, Any]:
    """The raw case behind a DataFrame row."""
    doc = docs.get(row["file"]) or {}
    for case in doc.get("cases", []):
        if case.get("index") == row["case_index"]:
            return case
    return {}


def detail(configs: list[Config], docs: dict) -> list[dict[str, Any]]:
    """Per configuration, per test: totals, throughput, latency percentiles, TTFT."""
    out = []
    for c in configs:
        columns = []
        for test, row in c.rows.items():
            case = _case(docs, row)
            its = case.get("iterations") or []
            tokens = sum(int(i.get("tokens") or 0) for i in its)
            seconds = sum(float(i.get("seconds") or 0.0) for i in its)
            lat = [float(x) for i in its for x in (i.get("token_latencies_s") or [])]
            ttft = [float(i["ttft_s"]) for i in its if i.get("ttft_s") is not None]
            n = len(its)
            columns.append({
                "test": test, "kind": row["workload_kind"], "synthetic": c.synthetic,
                "iterations": n, "warmup": _warmup_text(row),
                "total_tokens": f"{tokens:,}",
                "total_time": f"{seconds:,.3f} s",
                "throughput": fmt_tps(tokens / seconds if seconds else None),
                "median": fmt_tps(_num(row.get("tps_median"))),
                "spread": spread_text(row),
                "ci95": _ci_text(row),
                "range": (f"{fmt_tps(_num(row.get('tps_min')))} – "
                          f"{fmt_tps(_num(row.get('tps_max')))}"),
                "avg_latency": fmt_ms(seconds / tokens if tokens else None),
                "p50": fmt_ms(percentile(lat, 50)), "p90": fmt_ms(percentile(lat, 90)),
                "p99": fmt_ms(percentile(lat, 99)), "latency_tokens": len(lat),
                "ttft": fmt_ms(percentile(ttft, 50)) if ttft else "—",
                "ttft_p90": fmt_ms(percentile(ttft, 90)) if ttft else "—",
                "load": (f"{_num(row.get('load_seconds')):.2f} s"
                         if _num(row.get("load_seconds")) is not None else "—"),
                "peak_rss": fmt_bytes(_num(row.get("peak_rss_bytes"))),
                "warnings": list(case.get("warnings") or []),
            })
        out.append({"label": c.label, "synthetic": c.synthetic, "columns": columns,
                    "model": c.model_name})
    return out


def _warmup_text(row: Any) -> Any:
    """The warmup as asked, and for `auto` how many it took."""
    asked, used = _clean(row.get("warmup")), _clean(row.get("warmup_used"))
    if asked == "auto":
        return f"auto, {int(used)} used" if used is not None else "auto"
    return asked


def _ci_text(row: Any) -> str:
    """The 95% CI of the mean; a throughput cannot be negative, so the bound stops at 0."""
    low, high = _num(row.get("tps_ci95_low")), _num(row.get("tps_ci95_high"))
    if low is None or high is None:
        return "—"
    return f"{fmt_tps(max(low, 0.0))} – {fmt_tps(high)}"


def resources(configs: list[Config], docs: dict) -> list[dict[str, Any]]:
    """Buffers per device and layer placement, as llama.cpp reported them."""
    out = []
    for c in configs:
        placement = None
        for row in c.rows.values():
            placement = _case(docs, row).get("placement")
            if placement:
                break
        if not placement:
            continue
        per_device: dict[str, dict[str, float]] = {}
        for buf in placement.get("buffers") or []:
            dev = per_device.setdefault(str(buf.get("device") or "?"), {})
            kind = str(buf.get("kind") or "other")
            dev[kind] = dev.get(kind, 0.0) + float(buf.get("mib") or 0.0)
        devices = [{"device": name, "model": fmt_mib(b.get("model")), "kv": fmt_mib(b.get("kv")),
                    "compute": fmt_mib(b.get("compute")),
                    "total": fmt_mib(sum(b.values()))} for name, b in per_device.items()]
        fa = placement.get("flash_attn")
        out.append({
            "label": c.label, "devices": devices,
            "total": fmt_mib(sum(sum(b.values()) for b in per_device.values()))
            if per_device else None,
            "layers": c.layers_text, "device_list": ", ".join(placement.get("devices") or [])
            or "—",
            "requested": placement.get("n_gpu_layers_requested",
                                       c.engine.get("n_gpu_layers")),
            "flash_attn": "on" if fa is True else "off" if fa is False else "—",
            "device_kind": placement.get("device_kind") or c.device_kind,
            "note": placement.get("note"),
        })
    return out


def placement_notes(configs: list[Config], docs: dict) -> list[str]:
    """What the engine said about placement (e.g. a build without a GPU backend), once each."""
    notes: list[str] = []
    for c in configs:
        for row in c.rows.values():
            note = (_case(docs, row).get("placement") or {}).get("note")
            if note and note not in notes:
                notes.append(str(note))
    return notes


def environments(docs: dict) -> list[dict[str, Any]]:
    """One column per run: the machine and the software that produced the figures."""
    out = []
    for file, doc in docs.items():
        env = doc.get("environment") or {}
        chip, cpu, osinfo = env.get("chip") or {}, env.get("cpu") or {}, env.get("os") or {}
        versions = env.get("versions") or {}
        gpus = [f"{g.get('name')}" + (f", {fmt_bytes(g['memory_bytes'])}" if g.get("memory_bytes")
                                      else "") + (f", driver {g['driver']}" if g.get("driver")
                                                  else "") for g in env.get("gpus") or []]
        out.append({
            "run_id": doc.get("run_id"), "file": Path(file).name,
            "chip": f"{chip.get('name') or '—'} ({chip.get('kind') or '?'}"
                    + (f", id {chip['id']})" if chip.get("id") else ")"),
            "gpu_cores": chip.get("gpu_cores") or "—",
            "gpus": "; ".join(gpus) or "none",
            "memory": fmt_bytes(env.get("memory_bytes")),
            "cpu": f"{cpu.get('model') or '—'} ({cpu.get('cores_physical') or '?'} physical / "
                   f"{cpu.get('cores_logical') or '?'} logical cores)",
            "os": " ".join(str(x) for x in (osinfo.get("system"), osinfo.get("release"),
                                            osinfo.get("machine")) if x),
            "backend": env.get("backend") or "—",
            "python": env.get("python") or "—",
            "benchkit": versions.get("benchkit") or doc.get("benchkit_version") or "—",
            "llama_cpp_python": versions.get("llama_cpp_python") or "—",
            "system_info": env.get("llama_cpp_system_info") or "",
            "status": doc.get("status"), "partial": bool(doc.get("partial")),
            "started_at": doc.get("started_at"), "finished_at": doc.get("finished_at"),
            "suite": (doc.get("suite") or {}).get("name"),
            "suite_description": (doc.get("suite") or {}).get("description"),
            "suite_file": (doc.get("suite") or {}).get("file"),
            "command": " ".join(doc.get("command") or []),
        })
    return out


def methodology(df) -> dict[str, Any]:
    """Warmup and iteration counts as run (they may differ between cases)."""
    ok = df[df["status"] == "ok"]
    asked = list(ok["warmup"].dropna()) if "warmup" in ok else []
    warm = sorted({int(w) for w in asked if w != "auto"})
    used = sorted({int(u) for u in ok["warmup_used"].dropna()}) if "warmup_used" in ok else []
    text = _range_text(warm)
    if "auto" in asked:      # warmup: auto, with the counts it took
        auto = f"auto (until the last 3 agreed within 2%; {_range_text(used)} used)"
        text = auto if not warm else f"{text}, or {auto}"
    iters = sorted({int(n) for n in ok["n"].dropna()})
    return {"warmup": text, "iterations": _range_text(iters)}


def _range_text(values: list[int]) -> str:
    if not values:
        return "—"
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def bandwidth(configs: list[Config]) -> dict[str, Any] | None:
    """Achieved bandwidth = model bytes × decode tok/s, as a share of the chip's peak.

    The model file size stands for the bytes read per generated token; KV-cache reads
    make the true figure a little higher, so this is a lower bound.
    """
    chips = _chips_module()
    rows = []
    for c in configs:
        row = c.decode
        if row is None or row["workload_kind"] != "tg" or not c.model_bytes:
            continue
        tps = _num(row.get("tps_median"))
        if not tps:
            continue
        achieved = c.model_bytes * tps / 1e9
        peak, peak_note = _peak(chips, c)
        rows.append({
            "label": c.label, "test": row["test"], "synthetic": c.synthetic,
            "model_size": fmt_bytes(c.model_bytes), "tps": fmt_tps(tps),
            "n": int(_clean(row.get("n")) or 0),
            "achieved_gbs": achieved, "achieved": f"{achieved:,.1f} GB/s",
            "peak_gbs": peak, "peak": f"{peak:,.0f} GB/s" if peak else "unknown",
            "share": fmt_pct(achieved / peak) if peak else "—", "note": peak_note,
        })
    return {"rows": rows} if rows else None


def _chips_module():
    """benchkit.projection.chips when installed; the report degrades to notes without it."""
    try:
        from benchkit.projection import chips
    except ImportError:
        return None
    return chips


def _peak(chips, c: Config) -> tuple[float | None, str]:
    """The peak memory bandwidth of the device that did the work, and why if unknown."""
    if c.is_cpu_only:
        return None, ("CPU run: the peak bandwidth of this machine's memory is not in the "
                      "chip database")
    if chips is None:
        return None, "chip database not available in this installation"
    if not c.device_id:
        return None, "the result does not name the device's chip id"
    try:
        chip = chips.get_chip(c.device_id)
    except (BenchkitError, KeyError, LookupError):
        chip = None
    if chip is None or not getattr(chip, "bandwidth_gbs", None):
        return None, f"device {c.device_id!r} is not in the chip database"
    return float(chip.bandwidth_gbs), f"peak of {getattr(chip, 'name', c.device_id)}"


def projections(df, configs: list[Config], method: str = "roofline") -> dict[str, Any]:
    """Projected throughput on other chips, anchored on the measured ones.

    Uses `benchkit.projection.model` when present; a CPU-only measurement has no anchor in the
    chip database, and the section then says so rather than guessing a bandwidth.
    """
    try:
        from benchkit.projection import model as projection
    except ImportError:
        return {"note": "projections need the benchkit.projection.model module, which this "
                        "installation does not have", "tables": []}
    try:
        measurements = projection.measurements_from_frame(df[df["status"] == "ok"])
    except BenchkitError as exc:
        return {"note": f"no projection: {exc.message}", "tables": []}
    chips = _chips_module()
    anchored = [m for m in measurements if _known_chip(chips, m.chip_id)]
    if not measurements:
        devices = sorted({str(c.device_name or c.device_id) for c in configs})
        return {"note": ("no projection: projections are calibrated on GPU runs with every "
                         "layer offloaded, and these results hold none (measured on "
                         + ", ".join(devices) + "). A CPU's memory bandwidth is not in the "
                         "chip database, so no peak is assumed."), "tables": []}
    if not anchored:
        devices = sorted({str(m.chip_id) for m in measurements} or
                         {str(c.device_id) for c in configs})
        return {"note": ("no projection: the measured device (" + ", ".join(devices) +
                         ") is not in the chip database, so there is no peak bandwidth or "
                         "compute figure to scale from. Projections need a measurement on "
                         "a listed chip or GPU (see `benchkit project`)."), "tables": []}
    tables = []
    for sha, group in _by_model(configs).items():
        ref = group[0]
        ms = [m for m in anchored if _same_model(m, ref)] or anchored
        try:
            rows = projection.project(ms, method=method, model_bytes=ref.model_bytes,
                                      n_layers=ref.model_layers)
        except BenchkitError as exc:
            tables.append({"model": ref.model_name, "note": f"no projection: {exc.message}",
                           "rows": [], "sizes": None})
            continue
        sizes = None
        try:
            sizes = projection.size_table(ms[0].chip_id, ms, sizes_b=list(SIZES_B),
                                          quant=SIZE_QUANT, method=method)
        except (BenchkitError, TypeError, ValueError) as exc:
            sizes = {"note": f"no model-size table: {exc}"}
        tables.append({"model": ref.model_name, "synthetic": ref.synthetic, "note": None,
                       "rows": [_projection_row(r) for r in rows], "raw": rows,
                       "sizes": _size_rows(sizes), "anchors": sorted({m.chip_id for m in ms}),
                       "method": method})
    return {"note": None, "tables": tables}


def _known_chip(chips, chip_id: str | None) -> bool:
    if chips is None or not chip_id:
        return False
    try:
        return chips.get_chip(chip_id) is not None
    except (BenchkitError, KeyError, LookupError):
        return False


def _by_model(configs: list[Config]) -> dict[Any, list[Config]]:
    out: dict[Any, list[Config]] = {}
    for c in configs:
        out.setdefault(c.model_sha256 or c.model_name, []).append(c)
    return out


def _same_model(m: Any, ref: Config) -> bool:
    """A measurement of the configuration's model file: same sha256, else same size."""
    key = getattr(m, "model_key", None)
    if key and ref.model_sha256:
        return key == ref.model_sha256
    return bool(ref.model_bytes) and getattr(m, "model_bytes", None) == ref.model_bytes


def _range(mid: Any, low: Any, high: Any) -> str:
    if mid is None:
        return "—"
    if low is None or high is None:
        return fmt_tps(float(mid))
    return f"{fmt_tps(float(mid))} ({fmt_tps(float(low))} – {fmt_tps(float(high))})"


def _projection_row(r: dict[str, Any]) -> dict[str, Any]:
    """One chip of the projection table, formatted."""
    measured = r.get("measured_tg")
    return {
        "chip": r.get("chip"), "name": r.get("label") or r.get("name") or r.get("chip"),
        "gpu_cores": r.get("gpu_cores") if r.get("gpu_cores") is not None else "—",
        "bandwidth": f"{r['bandwidth_gbs']:,.0f} GB/s" if r.get("bandwidth_gbs") else "—",
        "tg": _range(r.get("tg_tps"), r.get("tg_low"), r.get("tg_high")),
        "pp": _range(r.get("pp_tps"), r.get("pp_low"), r.get("pp_high")),
        "fits": {True: "yes", False: "no"}.get(r.get("fits"), "—"),
        "status": r.get("status") or ("measured" if measured else "not tested"),
        "measured": fmt_tps(float(measured)) if measured else None,
    }


def _size_rows(sizes: Any) -> dict[str, Any] | None:
    """The model-size table, whatever shape size_table returned (list of dicts)."""
    if sizes is None:
        return None
    if isinstance(sizes, dict) and "note" in sizes:
        return {"note": sizes["note"], "rows": []}
    rows = sizes.get("rows", sizes) if isinstance(sizes, dict) else sizes
    out = []
    for r in rows or []:
        out.append({
            "size": f"~{r.get('size_b', r.get('params_b', '?'))}B params",
            "quant": r.get("quant", SIZE_QUANT),
            "file": f"{r['model_gb']:,.1f} GB" if r.get("model_gb") else "—",
            "tg": _range(r.get("tg_tps"), r.get("tg_low"), r.get("tg_high")),
            "fits": {True: "yes", False: "no"}.get(r.get("fits"), "—"),
        })
    chip = (rows[0].get("label") or rows[0].get("name")) if rows else None
    return {"note": None, "rows": out, "chip": chip}


def problems(df) -> list[dict[str, str]]:
    """Failed cases and run-level warnings: shown, never hidden."""
    out = []
    for _, row in df.iterrows():
        if row["status"] != "ok":
            out.append({"what": f"{row['test']} (case {row['case_index']}) failed",
                        "detail": str(_clean(row.get("error")) or "no error recorded")})
        if _clean(row.get("partial")) and row["case_index"] == 0:
            out.append({"what": f"run {row['run_id']} is partial",
                        "detail": f"status {row.get('run_status')}: not every case ran"})
    return out


def case_warnings(configs: list[Config], docs: dict) -> list[dict[str, str]]:
    """Warnings the runner recorded on a case (high spread, throttling), by configuration."""
    out = []
    for c in configs:
        for test, row in c.rows.items():
            for warning in _case(docs, row).get("warnings") or []:
                out.append({"what": f"{c.label}, {test}", "detail": str(warning)})
    return out


# --------------------------------------------------------------------------- charts

def chart_data(configs: list[Config], docs: dict, bw: dict | None,
               proj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Draw every chart the data supports; name -> {title, caption, svg}."""
    from benchkit.report.charts import core as charts

    bars, series = [], []
    for c in configs:
        for test, row in c.rows.items():
            med = _num(row.get("tps_median"))
            if med is None:
                continue
            values = [float(v) for v in (_clean(row.get("tps_values")) or [])]
            bars.append({"test": test, "label": c.label, "median": med,
                         "low": _num(row.get("tps_min")) or med,
                         "high": _num(row.get("tps_max")) or med,
                         "n": int(_clean(row.get("n")) or len(values))})
            series.append({"test": test, "label": c.label, "values": values})
    synthetic = any(c.synthetic for c in configs)
    tag = f" Figures of a {SYNTHETIC} model." if synthetic else ""
    out = {}
    svg = charts.throughput(bars)
    if svg:
        out["throughput"] = {"title": "Throughput per configuration", "svg": svg,
                             "caption": "Bars: median tok/s over the timed iterations; "
                                        "whiskers: the slowest and fastest iteration." + tag}
    svg = charts.iterations(series)
    if svg:
        out["iterations"] = {"title": "Throughput of every iteration", "svg": svg,
                             "caption": "tok/s of each timed iteration in run order: a "
                                        "downward slope means throttling or a busy machine."
                                        + tag}
    raw = next((t["raw"] for t in proj.get("tables", []) if t.get("raw")), None)
    if raw:
        svg = charts.projection(raw)
        if svg:
            out["projection"] = {"title": "Projected decode throughput", "svg": svg,
                                 "caption": "Bars: projected decode tok/s with its range; "
                                            "diamonds: measured figures." + tag}
    if bw:
        svg = charts.bandwidth(bw["rows"])
        if svg:
            out["bandwidth"] = {"title": "Achieved memory bandwidth", "svg": svg,
                                "caption": "Model file bytes × median decode tok/s; dashed: "
                                           "the chip's peak where the database knows it."
                                           + tag}
    return out


# --------------------------------------------------------------------------- rendering

def build_context(df, docs: dict, *, method: str = "roofline",
                  title: str | None = None) -> dict[str, Any]:
    """Everything the templates print, computed once for both formats."""
    configs = configurations(df)
    bw = bandwidth(configs)
    proj = projections(df, configs, method=method)
    summ = summary(configs, df)
    from benchkit.report import sections as report_sections

    sections, section_charts = report_sections.build(df, docs, configs)
    return {
        "title": title or "Benchmark report: " + ", ".join(summ["suites"]),
        "summary": summ,
        "placement_notes": placement_notes(configs, docs),
        "performance": performance(configs),
        "detail": detail(configs, docs),
        "resources": resources(configs, docs),
        "bandwidth": bw,
        "projections": proj,
        "environments": environments(docs),
        "methodology": methodology(df),
        "problems": problems(df) + case_warnings(configs, docs),
        "synthetic": any(c.synthetic for c in configs),
        "charts": {**chart_data(configs, docs, bw, proj), **section_charts},
        "sections": sections,
        "sources": [Path(f).name for f in docs],
        "SYNTHETIC": SYNTHETIC,
    }


def _env(autoescape: bool):
    """The jinja2 environment: templates are package data; HTML is always escaped."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("benchkit", "templates"),
        autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
        # Markdown passes raw HTML through: no value may open a tag there either
        finalize=None if autoescape else _md_text)
    env.filters["cell"] = md_cell
    if not autoescape:
        env.globals["chart"] = jinja2.pass_context(_md_chart)
    return env


def _md_chart(ctx: Any, name: str) -> Any:
    """A chart in Markdown: its image line and caption. A function rather than a template
    macro, because a macro's output would pass through `_md_text` again and lose its
    image syntax; this one returns text already safe (the title and caption escaped)."""
    from benchkit.core.textsafe import MdSafe, md_text

    images, charts = ctx.get("images") or {}, ctx.get("charts") or {}
    if name not in images:
        return MdSafe("")
    chart = charts[name]
    return MdSafe(f"\n![{md_text(chart['title'])}]({images[name]})\n\n"
                  f"*{md_text(chart['caption'])}*\n")


def _md_text(value: Any) -> Any:
    """Every value printed into Markdown: no tag, link, image or autolink can form
    (benchkit.core.textsafe; result text is untrusted)."""
    from benchkit.core.textsafe import md_text

    return md_text(value)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes or newlines, no raw HTML, links
    or images (benchkit.core.textsafe)."""
    from benchkit.core.textsafe import md_cell as cell

    return cell(value)


def render_markdown(ctx: dict[str, Any], image_names: dict[str, str]) -> str:
    """The Markdown page; charts are referenced as the files named in image_names."""
    return _env(False).get_template("report.md.j2").render(**ctx, images=image_names)


def render_html(ctx: dict[str, Any]) -> str:
    """One self-contained HTML page: inline CSS and SVG, nothing fetched from anywhere."""
    from markupsafe import Markup

    inline = {name: Markup(_inline_svg(chart["svg"])) for name, chart in ctx["charts"].items()}
    return _env(True).get_template("report.html.j2").render(**ctx, inline_svg=inline)


def _inline_svg(svg: str) -> str:
    """matplotlib's SVG file made fit for inlining: no XML prolog, scales with the page."""
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return re.sub(r"<svg([^>]*?)\swidth=\"[^\"]*\"\s+height=\"[^\"]*\"",
                  r'<svg\1 role="img" preserveAspectRatio="xMinYMin meet"', svg, count=1)


@dataclass
class Written:
    """What `write_report` wrote, for the command to list."""

    paths: list[Path]


def write_report(paths: Iterable[str | Path], out: str | Path, *, fmt: str = "both",
                 method: str = "roofline", title: str | None = None) -> Written:
    """Write OUT.md (+ OUT-<chart>.svg) and/or OUT.html from the given result files."""
    if fmt not in FORMATS:
        raise BenchkitError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})",
                            field="--format")
    df, docs = load(paths)
    ctx = build_context(df, docs, method=method, title=title)
    out = Path(out)
    if out.suffix in (".md", ".html"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if fmt in ("md", "both"):
        images = {}
        for name, chart in ctx["charts"].items():
            img = out.parent / f"{out.name}-{name}.svg"
            img.write_text(chart["svg"], encoding="utf-8")
            images[name] = img.name
            written.append(img)
        md = out.parent / f"{out.name}.md"
        md.write_text(render_markdown(ctx, images), encoding="utf-8")
        written.insert(0, md)
    if fmt in ("html", "both"):
        html = out.parent / f"{out.name}.html"
        html.write_text(render_html(ctx), encoding="utf-8")
        written.insert(0, html)
    return Written(paths=written)


def default_output(paths: Sequence[str | Path], output: str | None = None) -> Path:
    """Where the report goes: OUTPUT as given; inside it when it is a folder; else
    reports/<result file stem> for one result and reports/report for several."""
    files = [Path(p) for p in paths]
    name = files[0].stem if len(files) == 1 and files[0].suffix == ".json" else "report"
    if output is None:
        return Path("reports") / name
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        return Path(output) / name
    return Path(output)

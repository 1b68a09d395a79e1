"""The figures a report is made of: result files loaded, cases grouped into configurations.

A configuration is one engine setting of one model in one run (a row of the metrics
table); every section of the page, the core one's and the registered ones
(`benchkit.report.sections`), reads its figures from these `Config`s and the raw result
documents. The small helpers here (`clean`, `num`, `case`, `figure`, `spread_text`) are
shared by all sections, so that every table cell shows a figure the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.core.units import fmt_pct, fmt_tps
# Engine settings that define a configuration: cases that share them (and the model
# and the run) are one row of the metrics table.
from benchkit.results.facts import DECODE_KINDS, PROMPT_KINDS   # by preference order
from benchkit.results.frame import ENGINE_SETTINGS
from benchkit.results.frame import cell as clean

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
                            f"{clean(first.get('error')) or 'unknown'})",
                            file=str(first["file"]), field="cases.status")
    return df, docs


# --------------------------------------------------------------------------- small helpers

def num(value: Any) -> float | None:
    """A DataFrame cell as a float, None where the result has no figure."""
    value = clean(value)
    return None if value is None else float(value)


def whole(value: Any) -> int | None:
    """A count from the frame as an int (pandas stores a column with gaps as floats)."""
    value = clean(value)
    return None if value is None else int(value)


def spread_text(row: Any) -> str:
    """'± 1.2 (CV 2.9%, n=5)': the spread that goes with every median."""
    sd, cv, n = num(row.get("tps_stdev")), num(row.get("tps_cv")), clean(row.get("n"))
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
                model_sha256=clean(row.get("model_sha256")),
                model_bytes=num(row.get("model_size_bytes")),
                model_layers=whole(row.get("model_layers")),
                synthetic=bool(clean(row.get("model_synthetic"))),
                engine={k: clean(row.get(k)) for k in keys},
                device_kind=clean(row.get("device_kind")) or "cpu",
                device_name=clean(row.get("device_name")),
                device_id=clean(row.get("device_id")),
                backend=clean(row.get("backend")) or clean(row.get("env_backend")),
                layers_offloaded=whole(row.get("layers_offloaded")),
                layers_total=whole(row.get("layers_total")),
                machine=clean(row.get("env_chip_name")) or clean(row.get("env_cpu_model")))
        cfg.rows.setdefault(row["test"], row)
    out = list(configs.values())
    _label(out)
    _pick_baselines(out)
    return out


# The runner sizes the context to each workload unless the suite fixes n_ctx, so n_ctx
# varies from test to test inside one configuration; it separates configurations only
# where the suite swept it (the same test measured at several n_ctx).
_NO_CTX = tuple(k for k in ENGINE_SETTINGS if k != "n_ctx")


def base_key(row: Any) -> tuple:
    """What makes a configuration apart from n_ctx: the file, the model, every other
    engine setting (the serve section groups its levels by it)."""
    return (row["file"], clean(row.get("model_sha256")),
            *(str(clean(row.get(k))) for k in _NO_CTX))


def _swept_ctx(ok) -> set[tuple]:
    """Base keys whose cases measure one test at more than one n_ctx."""
    seen: dict[tuple, set[str]] = {}
    for _, row in ok.iterrows():
        seen.setdefault((base_key(row), row["test"]), set()).add(str(clean(row.get("n_ctx"))))
    return {key for (key, _), ctxs in seen.items() if len(ctxs) > 1}


def _config_key(row: Any, swept: set[tuple]) -> tuple:
    base = base_key(row)
    return (*base, str(clean(row.get("n_ctx"))) if base in swept else None)


def _label(configs: list[Config]) -> None:
    """Short unique names: only what differs between the configurations.

    A setting differs when the configurations that have it disagree on its value; one an
    engine does not have (an OpenAI server's `n_batch`) does not make it differ. What all
    share is stated once, by `common_settings`. Placement joins the label when the known
    placements differ ("CPU only" / "all layers on X"); then `n_gpu_layers` would repeat it.
    """
    varying = [k for k in ENGINE_SETTINGS if len(_values(configs, k)) > 1]
    placed = len({_placement_key(c) for c in configs} - {None}) > 1
    if placed and "n_gpu_layers" in varying:
        varying.remove("n_gpu_layers")
    many_models = len({c.model_sha256 or c.model_name for c in configs}) > 1
    for c in configs:
        parts = [c.model_name] if many_models else []
        if placed or not (varying or many_models):
            parts.append(c.placement_text)
        parts += [setting_text(k, c.engine.get(k)) for k in varying
                  if c.engine.get(k) is not None]
        c.label = " · ".join(parts)
    _disambiguate(configs)


def _values(configs: list[Config], key: str) -> set[str]:
    """The distinct values a setting takes among the configurations that have it."""
    return {value_text(c.engine.get(key)) for c in configs if c.engine.get(key) is not None}


def _placement_key(c: Config) -> str | None:
    """Where the layers ran, for comparing configurations: an engine that only says what
    was asked counts as having done it; a server that does not say counts as unknown."""
    if c.device_kind == "unknown":
        return None
    return c.placement_text.removesuffix(" (asked)")


def common_settings(configs: list[Config]) -> list[str]:
    """What every configuration shares, stated once: the placement when it is the same
    for all, then each setting that takes one value wherever it applies, those that only
    some engines have after the names of those engines."""
    out = []
    places = {_placement_key(c) for c in configs} - {None}
    if len(places) == 1:
        out.append(places.pop())
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in ENGINE_SETTINGS:
        values = _values(configs, key)
        if len(values) == 1 and not (key == "n_gpu_layers" and out):
            having = [c for c in configs if c.engine.get(key) is not None]
            where = () if len(having) == len(configs) or len(configs) == 1 else \
                tuple(dict.fromkeys(str(c.engine.get("engine")) for c in having))
            groups.setdefault(where, []).append(setting_text(key, next(iter(values))))
    for where, texts in groups.items():
        out.append((f"{', '.join(where)}: " if where else "") + " · ".join(texts))
    return out


def value_text(value: Any) -> str:
    """A setting's value as a person writes it: 2048 not 2048.0, on / off for flags."""
    if hasattr(value, "item"):          # a numpy scalar from the frame
        value = value.item()
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def setting_text(key: str, value: Any) -> str:
    """A setting in a label: the engine by its name alone, others as `key value`."""
    return value_text(value) if key == "engine" else f"{key} {value_text(value)}"


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


def ratio(a: Any | None, b: Any | None) -> float | None:
    """a / b on medians, when both exist and measure the same test."""
    if a is None or b is None or a["test"] != b["test"]:
        return None
    am, bm = num(a.get("tps_median")), num(b.get("tps_median"))
    return am / bm if am and bm else None


def figure(row: Any | None, synthetic: bool) -> dict[str, Any] | None:
    """A median tok/s with its spread, ready for a table cell."""
    if row is None:
        return None
    return {"test": row["test"], "median": fmt_tps(num(row.get("tps_median"))),
            "spread": spread_text(row), "synthetic": synthetic}


def case(docs: dict, row: Any) -> dict[str, Any]:
    """The raw case behind a DataFrame row."""
    doc = docs.get(row["file"]) or {}
    for item in doc.get("cases", []):
        if item.get("index") == row["case_index"]:
            return item
    return {}



"""Run a suite: for each model and engine configuration, load once, then for each
workload run the warmup iterations (discarded) and the timed ones.

The result file is rewritten (atomically) after every case, so that a crash or Ctrl-C
loses nothing already measured: until the end `partial` is true and `status` says
"running"; Ctrl-C leaves "interrupted". A case that fails (a model llama.cpp cannot load,
a decode error) is recorded with status "failed" and its error, and the run goes on.

Models are resolved and their GGUF headers read BEFORE anything is measured: a typo in
a path should cost a second, not the first hour of a sweep.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchkit import __version__
from benchkit.engine import Engine, EngineSettings, interrupt_guard
from benchkit.errors import BenchkitError
from benchkit.gguf_info import GGUFInfo, read_gguf_info, sha256_file
from benchkit.modelref import ResolvedModel, resolve
from benchkit.result import FORMAT, SCHEMA_VERSION, summarize, write_result
from benchkit.stats import drift_warning, spread_warning
from benchkit.suite import Suite, Workload, scrub_home


@dataclass
class PreparedModel:
    """A resolved model and what its header and bytes say about it."""

    resolved: ResolvedModel
    info: GGUFInfo
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The `model` object of a result case."""
        info, spec = self.info, self.resolved.spec
        return {
            "name": spec.name or self.resolved.path.name,
            "file": self.resolved.path.name,
            "source": self.resolved.source,
            "size_bytes": info.size_bytes,
            "sha256": self.sha256,
            "architecture": info.architecture,
            "n_params": info.n_params,
            "quantization": info.file_type,
            "n_layers": info.n_layers,
            "synthetic": info.synthetic,
            "preset": info.preset,
            "standin_for": self.resolved.standin_for,
        }


@dataclass
class RunOutcome:
    """What a finished (or interrupted) run leaves: the file and the document."""

    path: Path
    doc: dict[str, Any]
    failed: list[dict[str, Any]] = field(default_factory=list)




def prepare_models(suite: Suite, *, synthetic: bool = False) -> list[PreparedModel]:
    """Resolve every model, read its header and checksum it; fail at once on bad input."""
    prepared = []
    for spec in suite.models:
        resolved = resolve(spec, synthetic=synthetic)
        try:
            info = read_gguf_info(resolved.path)
        except BenchkitError as exc:
            raise BenchkitError(f"{exc.message} ({resolved.path.name})", file=spec.suite_file,
                                field=spec.field, line=spec.line) from None
        digest = sha256_file(resolved.path)
        if spec.sha256 and digest != spec.sha256:
            raise BenchkitError(f"sha256 mismatch: the file has {digest}", file=spec.suite_file,
                                field=spec.field.rsplit(".", 1)[0] + ".sha256", line=spec.line)
        prepared.append(PreparedModel(resolved, info, digest))
    return prepared


def new_run_id(suite_name: str, now: dt.datetime | None = None) -> str:
    """UTC start time, suite name, random suffix: sortable and unique."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{suite_name}-{secrets.token_hex(3)}"


def run_suite(suite: Suite, output_dir: str | Path, *, synthetic: bool = False,
              command: list[str] | None = None, progress: bool | None = None,
              stream: TextIO | None = None) -> RunOutcome:
    """Measure every case of `suite`, writing `output_dir/<run_id>.json` after each one.

    Raises BenchkitError before measuring anything if a model cannot be resolved or
    read; re-raises KeyboardInterrupt after recording the run as interrupted.
    """
    from benchkit import environment

    stream = stream or sys.stderr
    models = prepare_models(suite, synthetic=synthetic)
    started = dt.datetime.now(dt.timezone.utc)
    doc: dict[str, Any] = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(suite.name, started), "status": "running", "partial": True,
        "started_at": _iso(started), "finished_at": None, "benchkit_version": __version__,
        "command": command, "environment": environment.collect(),
        "suite": {**suite.as_run(), "synthetic": synthetic}, "cases": [],
    }
    path = Path(output_dir) / f"{doc['run_id']}.json"
    outcome = RunOutcome(path, doc)
    _write(doc, path)
    bar = _Progress(suite.n_cases, progress, stream)
    try:
        with interrupt_guard():
            for model in models:
                for settings in suite.engines:
                    _run_configuration(suite, model, settings, outcome, bar)
    except KeyboardInterrupt:
        _finish(doc, "interrupted", path)
        raise
    except BaseException:
        _finish(doc, "failed", path)
        raise
    _finish(doc, "complete", path)
    return outcome


def _run_configuration(suite: Suite, model: PreparedModel, settings: EngineSettings,
                       outcome: RunOutcome, bar: _Progress) -> None:
    """Load the model once with `settings`, then run every workload on it."""
    settings = settings.resolved()
    spec = model.resolved.spec
    label = f"{spec.suite_file}{f':{spec.line}' if spec.line else ''} [{spec.field}]"
    try:
        engine = Engine(model.resolved.path, settings, label=label)
    except BenchkitError as exc:
        for workload in suite.workloads:
            _add_case(outcome, _case(model, settings, workload, suite, error=str(exc)), bar)
        return
    try:
        load = {"seconds": engine.load_seconds, "rss_after_load_bytes": _rss(),
                "peak_rss_bytes": None}
        for workload in suite.workloads:
            case = _case(model, settings, workload, suite, load=dict(load))
            try:
                _measure(engine, workload, suite, case, bar)
            except BenchkitError as exc:
                case.update(status="failed", error=str(exc))
            case["load"]["peak_rss_bytes"] = _peak_rss()
            _add_case(outcome, case, bar)
    finally:
        engine.close()


def _case(model: PreparedModel, settings: EngineSettings, workload: Workload, suite: Suite,
          *, load: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    return {
        "index": 0, "status": "failed" if error else "ok", "error": error,
        "model": model.to_dict(), "engine": asdict(settings), "test": workload.test,
        "workload": workload.to_dict(), "warmup": suite.warmup, "load": load,
        "placement": None, "iterations": [], "summary": summarize([]), "warnings": [],
    }


def _measure(engine: Engine, workload: Workload, suite: Suite, case: dict[str, Any],
             bar: _Progress) -> None:
    """Warmup (discarded), then the timed iterations; fills the case in place."""
    engine.new_context(_context_size(engine, workload))
    case["engine"]["n_ctx"] = engine.n_ctx
    case["placement"] = engine.placement.to_dict()
    case["warnings"].extend(_placement_warnings(engine))
    bar.start(case, suite.warmup + suite.iterations)
    for _ in range(suite.warmup):
        _iteration(engine, workload)
        bar.step(None)
    for _ in range(suite.iterations):
        it = _iteration(engine, workload)
        case["iterations"].append(it)
        bar.step(it["tps"])
    tps = [it["tps"] for it in case["iterations"]]
    case["summary"] = summarize(tps)
    if workload.kind == "chat":
        case["summary"].update(_chat_summary(case["iterations"]))
    case["warnings"].extend(w for w in (spread_warning(tps), drift_warning(tps)) if w)


def _context_size(engine: Engine, workload: Workload) -> int:
    """Exactly what the workload needs, as llama-bench sizes its context."""
    if workload.kind == "chat":
        return len(engine.tokenize(workload.prompt or "")) + workload.n_gen
    return workload.n_prompt + workload.n_gen


def _iteration(engine: Engine, w: Workload) -> dict[str, Any]:
    """One timed request; tps = tokens / seconds for every kind."""
    if w.kind == "chat":
        c = engine.chat(w.prompt or "", w.n_gen, temperature=w.temperature, top_k=w.top_k,
                        top_p=w.top_p, seed=w.seed)
        # tokens / seconds: the tokens after the first, over the time from first to last
        return {"tokens": c.n_generated - 1, "seconds": c.decode_s, "tps": c.decode_tps,
                "n_prompt": c.n_prompt, "n_generated": c.n_generated, "ttft_s": c.ttft_s,
                "decode_tps": c.decode_tps, "total_s": c.total_s,
                "token_latencies_s": c.token_latencies_s}
    if w.kind == "pp":
        seconds, tokens = engine.time_pp(w.n_prompt), w.n_prompt
    elif w.kind == "tg":
        seconds, tokens = engine.time_tg(w.n_gen), w.n_gen
    else:
        seconds, tokens = engine.time_pp_tg(w.n_prompt, w.n_gen), w.n_prompt + w.n_gen
    return {"tokens": tokens, "seconds": seconds, "tps": tokens / seconds if seconds else 0.0}


def _chat_summary(iterations: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics

    ttft = [it["ttft_s"] for it in iterations]
    total = [it["total_s"] for it in iterations]
    lat = [x for it in iterations for x in it["token_latencies_s"]]
    return {"ttft_median_s": statistics.median(ttft) if ttft else None,
            "ttft_mean_s": statistics.fmean(ttft) if ttft else None,
            "total_median_s": statistics.median(total) if total else None,
            "token_latency_median_s": statistics.median(lat) if lat else None}


def _placement_warnings(engine: Engine) -> list[str]:
    """Fewer layers on the GPU than asked, when a GPU backend exists."""
    p = engine.placement
    if not p.gpu_offload_supported or p.layers_total is None:
        return []
    asked = p.n_gpu_layers_requested
    expected = p.layers_total if asked < 0 else min(asked, p.layers_total)
    if p.layers_offloaded < expected:
        return [f"only {p.layers_offloaded}/{p.layers_total} layers offloaded to the GPU "
                f"(asked for {'all' if asked < 0 else asked})"]
    return []


def _add_case(outcome: RunOutcome, case: dict[str, Any], bar: _Progress) -> None:
    doc = outcome.doc
    case["index"] = len(doc["cases"])
    doc["cases"].append(case)
    if case["status"] == "failed":
        outcome.failed.append(case)
    bar.done(case)
    _write(doc, outcome.path)


def _finish(doc: dict[str, Any], status: str, path: Path) -> None:
    doc["status"] = status
    doc["partial"] = status != "complete"
    doc["finished_at"] = _iso(dt.datetime.now(dt.timezone.utc))
    _write(doc, path)


def _write(doc: dict[str, Any], path: Path) -> None:
    try:
        write_result(scrub_home(doc), path)
    except OSError as exc:
        raise BenchkitError(f"cannot write the result file: {exc.strerror or exc}",
                            file=str(path)) from None


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rss() -> int | None:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int | None:
    """The process's peak resident set so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0)) or None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class _Progress:
    """A tqdm bar per case on stderr (running tok/s); one line per case when not a TTY."""

    def __init__(self, n_cases: int, enabled: bool | None, stream: TextIO) -> None:
        self.n_cases, self.stream = n_cases, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.bar: Any = None
        self.values: list[float] = []
        self.count = 0

    def start(self, case: dict[str, Any], total: int) -> None:
        self.values = []
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self._label(case, self.count + 1), unit="it",
                            file=self.stream, leave=True, dynamic_ncols=True)

    def step(self, tps: float | None) -> None:
        if tps is not None:
            self.values.append(tps)
        if self.bar is not None:
            if tps is None:
                self.bar.set_postfix_str("warmup")
            else:
                mean = sum(self.values) / len(self.values)
                self.bar.set_postfix_str(f"{mean:.1f} t/s mean of {len(self.values)}")
            self.bar.update(1)

    def done(self, case: dict[str, Any]) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        label = self._label(case, self.count)
        if case["status"] == "failed":
            self.stream.write(f"{label}: FAILED: {case['error']}\n")
        elif not self.enabled:
            s = case["summary"]
            spread = f" ± {s['tps_stdev']:.2f}" if s["n"] > 1 else ""
            self.stream.write(f"{label}: {s['tps_mean']:.2f}{spread} t/s "
                              f"(mean{' ± sd' if spread else ''} of {s['n']} iterations)\n")
        for warning in case["warnings"]:
            self.stream.write(f"warning: {label}: {warning}\n")
        self.stream.flush()

    def _label(self, case: dict[str, Any], number: int) -> str:
        return (f"[{number}/{self.n_cases}] {case['model']['name']} "
                f"ngl={case['engine']['n_gpu_layers']} {case['test']}")

"""Run a suite: for each model and engine configuration, open the model once, then for
each workload run the warmup iterations (discarded) and the timed ones.

The runner does not know what it times: engines (`benchkit.engines`) measure, workloads
(`benchkit.workloads`) say what a test is and how it summarises, and the runner only
orders the cases (model outer, so that a model is loaded as few times as possible, as
llama-bench orders its instances), records them and shows progress.

The result file is rewritten (atomically) after every case, so that a crash or Ctrl-C
loses nothing already measured: until the end `partial` is true and `status` says
"running"; Ctrl-C leaves "interrupted". A case that fails (a model an engine cannot load,
a server that does not start, a decode error) is recorded with status "failed" and its
error, a workload an engine cannot run with status "unsupported" and the reason, and the
run goes on.

Models are resolved and their GGUF headers read BEFORE anything is measured: a typo in
a path should cost a second, not the first hour of a sweep.

The workload says what its figures warn of and how its progress reads
(`Workload.spread_warnings`, `progress_total`, `progress_text`: per-iteration tok/s
checks by default; the serve workload's iterations are concurrent requests, not
repetitions, and it has its own). Everything the progress prints comes from result text
(model names, engines' errors) and goes through benchkit.core.textsafe.terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchkit.core.version import __version__
from benchkit.run import telemetry
from benchkit.engines.base import AutoWarmup, Engine, ModelFile
from benchkit.core.errors import BenchkitError
from benchkit.models.gguf import GGUFInfo, read_gguf_info, sha256_file
from benchkit.models.mlx import folder_sha256, read_mlx_info
from benchkit.core.interrupts import Interrupted, interrupt_guard
from benchkit.models.ref import ResolvedModel, resolve
from benchkit.results.io import FORMAT, SCHEMA_VERSION, case_problem, summarize, write_result
from benchkit.results.sanity import TPS, judge
from benchkit.community.scrub import scrub_home
from benchkit.results.lock import WriterLock
from benchkit.results.model import Case, Run
from benchkit.run.suite import Suite
from benchkit.core.textsafe import terminal
from benchkit.core.urls import scrub_credentials
from benchkit.run.worker import Job, execute, run_isolated
from benchkit.workloads.base import Workload


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
            **({"format": info.metadata["format"]} if info.metadata.get("format") else {}),
            "standin_for": self.resolved.standin_for,
        }

    def model_file(self) -> ModelFile:
        """What an engine is given to open."""
        spec = self.resolved.spec
        label = f"{spec.suite_file}{f':{spec.line}' if spec.line else ''} [{spec.field}]"
        return ModelFile(path=str(self.resolved.path), label=label, sha256=self.sha256,
                         name=spec.name or self.resolved.path.name)


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
        folder = resolved.path.is_dir()       # an MLX model folder (benchkit.models.mlx)
        if folder and not any("mlx" in e.model_formats for e in suite.engines):
            raise BenchkitError(f"model path is not a file: {spec.ref} (a folder is an MLX "
                                "model, and no engine of this suite runs MLX)",
                                file=spec.suite_file, field=spec.field, line=spec.line)
        try:
            info = read_mlx_info(resolved.path) if folder else read_gguf_info(resolved.path)
            digest = folder_sha256(resolved.path) if folder else sha256_file(resolved.path)
        except BenchkitError as exc:
            raise BenchkitError(f"{exc.message} ({resolved.path.name})", file=spec.suite_file,
                                field=spec.field, line=spec.line) from None
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
              stream: TextIO | None = None, isolate: bool = True,
              case_timeout_s: float | None = None,
              resume: str | Path | None = None) -> RunOutcome:
    """Measure every case of `suite`, writing `output_dir/<run_id>.json` after each one.

    `isolate` runs each configuration in a worker process (benchkit.run.worker), so that a
    crash in a native library fails its case, not the run. `resume` names the result of
    an interrupted or crashed run of the same suite: its finished cases are kept and only
    the others run, into the same file. Raises BenchkitError before measuring anything
    if a model cannot be resolved or read (or the resumed run does not match);
    re-raises Interrupted (SIGINT, SIGTERM, SIGHUP) after recording the run as
    interrupted, with the case in progress kept as partial.
    """
    from benchkit.run import environment
    from benchkit.run import preflight

    stream = stream or sys.stderr
    models = prepare_models(suite, synthetic=synthetic)
    preflight.check(suite, models)
    env = environment.collect()
    if resume is not None:
        from benchkit.results.resume import reopen

        lock = WriterLock(resume)        # refused at once while another run writes it
        lock.acquire()
        try:
            doc, path = reopen(resume, suite, models, env, synthetic=synthetic,
                               command=command)
        except BaseException:
            lock.release()
            raise
    else:
        started = dt.datetime.now(dt.timezone.utc)
        doc = {
            "format": FORMAT, "schema_version": SCHEMA_VERSION,
            "run_id": new_run_id(suite.name, started), "status": "running", "partial": True,
            "started_at": _iso(started), "finished_at": None, "benchkit_version": __version__,
            "command": command, "environment": env,
            "suite": {**suite.as_run(), "synthetic": synthetic}, "cases": [],
        }
        path = Path(output_dir) / f"{doc['run_id']}.json"
        lock = WriterLock(path)
        lock.acquire()
    try:
        return _measure(suite, models, RunOutcome(path, doc), progress, stream,
                        isolate=isolate, case_timeout_s=case_timeout_s)
    finally:
        lock.release()


def _measure(suite: Suite, models: list[PreparedModel], outcome: RunOutcome,
             progress: bool | None, stream: TextIO, *, isolate: bool,
             case_timeout_s: float | None) -> RunOutcome:
    """Every case not yet in the outcome's document, written after each one; the
    document's status says how the run ended."""
    doc, path = outcome.doc, outcome.path
    _write(doc, path)
    done = {case_key(c) for c in Run.from_json(doc).cases}     # a resumed run's, kept
    todo = sum(1 for m in models for e in suite.engines for w in suite.workloads
               if case_key_of(m, e, w) not in done)
    bar = _Progress(todo, progress, stream)
    recorder = _Recorder(outcome, suite, bar)
    try:
        with interrupt_guard():
            for model in models:
                for engine in suite.engines:
                    workloads = [w for w in suite.workloads
                                 if case_key_of(model, engine, w) not in done]
                    _run_configuration(suite, model, engine, workloads, recorder,
                                       isolate=isolate, case_timeout_s=case_timeout_s)
    except Interrupted as exc:
        recorder.abandon(f"interrupted by {exc.name}")
        doc["interrupted_by"] = exc.name
        _finish(doc, "interrupted", path)
        raise
    except BaseException:
        recorder.abandon("the run failed")
        _finish(doc, "failed", path)
        raise
    _finish(doc, "complete", path)
    return outcome


def case_key(case: Case) -> str:
    """What makes a case the same case in a resumed run: model, engine settings, test."""
    engine = {k: v for k, v in (case.engine or {}).items() if k != "n_ctx"}
    return json.dumps([case.model_sha256, engine, case.test], sort_keys=True, default=str)


def case_key_of(model: PreparedModel, engine: Engine, workload: Workload) -> str:
    """case_key of the case a run would record, without running it."""
    settings = {k: v for k, v in engine.settings().items() if k != "n_ctx"}
    return json.dumps([model.sha256, settings, workload.test], sort_keys=True, default=str)


def _run_configuration(suite: Suite, model: PreparedModel, engine: Engine,
                       workloads: list[Workload], recorder: _Recorder, *, isolate: bool,
                       case_timeout_s: float | None) -> None:
    """Open the model once with `engine` (in a worker when `isolate`), then run every
    workload it supports on it; the ones it does not are recorded as unsupported."""
    runnable = []
    fmt = model.info.metadata.get("format", "gguf")
    for workload in workloads:
        reason = engine.unsupported(workload)
        if fmt not in engine.model_formats and engine.uses_model_file:
            reason = (f"{engine.kind} runs {' or '.join(sorted(engine.model_formats))} models; "
                      f"this one is {fmt}")
        if reason:
            recorder.add(_case(model, engine, workload, suite, status="unsupported",
                               error=reason), workload)
        else:
            runnable.append(workload)
    if not runnable:
        return
    recorder.configure(model, engine, runnable)
    # every engine gets the suite's model: the HTTP engines check the one they are served
    job = Job(engine, model.model_file(), tuple(runnable), suite.warmup, suite.iterations)
    if isolate:
        run_isolated(job, recorder.event, case_timeout_s=case_timeout_s)
    else:
        execute(job, recorder.event)


class _Recorder:
    """Turns a configuration's events (benchkit.run.worker) into result cases, and writes the
    file after every case."""

    def __init__(self, outcome: RunOutcome, suite: Suite, bar: _Progress) -> None:
        self.outcome, self.suite, self.bar = outcome, suite, bar
        self.load: dict[str, Any] | None = None
        self.info: dict[str, Any] = {}
        self.case: dict[str, Any] | None = None
        self.pid: int | None = None
        self.sampler: telemetry.Sampler | None = None
        self.refused: Refused | None = None

    def configure(self, model: PreparedModel, engine: Engine, workloads: list[Workload]) -> None:
        self.model, self.engine, self.workloads = model, engine, workloads
        self.load, self.info, self.case = None, {}, None

    def add(self, case: dict[str, Any], workload: Workload) -> None:
        doc = self.outcome.doc
        case["index"] = len(doc["cases"])
        admit(doc, case, self.refused)
        self.refused = None
        clean = scrub_credentials(case)       # no URL's user:password, printed or written
        case.clear()
        case.update(clean)
        doc["cases"].append(case)
        if case["status"] == "failed":
            self.outcome.failed.append(case)
        self.bar.done(case, workload)
        _write(doc, self.outcome.path)

    def event(self, e: dict[str, Any]) -> None:
        getattr(self, "_" + e["type"])(e)

    def _new(self, i: int, error: str | None = None) -> dict[str, Any]:
        return _case(self.model, self.engine, self.workloads[i], self.suite,
                     load=dict(self.load) if self.load else None, info=self.info, error=error)

    def _opened(self, e: dict[str, Any]) -> None:
        self.load = {"seconds": e["load_seconds"],
                     "rss_after_load_bytes": e["rss_after_load_bytes"], "peak_rss_bytes": None}
        self.info = e["facts"] or {}
        self.pid = e.get("pid")

    def _open_failed(self, e: dict[str, Any]) -> None:
        for i in range(len(self.workloads)):
            self.add(self._new(i, error=e["error"]), self.workloads[i])

    def _case_start(self, e: dict[str, Any]) -> None:
        case = self.case = self._new(e["i"])
        case["warnings"].extend(e["warnings"] or [])
        case["placement"] = e["placement"]
        if e.get("n_ctx"):                  # the context asked of llama.cpp
            case["engine"]["n_ctx"] = e["n_ctx"]
        warmup = self.suite.warmup if isinstance(self.suite.warmup, int) else 0
        self.bar.start(case, self.workloads[e["i"]].progress_total(warmup, self.suite.iterations))
        self.sampler = telemetry.Sampler(pid=self.pid).start()

    def _iteration(self, e: dict[str, Any]) -> None:
        if e["warmup"]:
            self.bar.step(None)
            if self.sampler is not None:
                self.sampler.begin_timed()     # the window starts after the last warmup
            return
        if self.case is not None and "it" in e:
            self.case["iterations"].append(e["it"])
        tps = e["it"].get("tps") if "it" in e else e.get("tps")
        # a figure no reader would accept is not shown (`admit` fails its case)
        self.bar.step(tps if judge(tps, TPS) is None else None)

    def _case_done(self, e: dict[str, Any]) -> None:
        case = self.case or self._new(e["i"])
        case["iterations"] = e["iterations"]
        self._settling(case)
        case["engine_info"].update(e["facts"] or {})
        case["warnings"].extend(e.get("warnings") or [])
        if case["load"] is not None:
            case["load"]["peak_rss_bytes"] = e["peak_rss_bytes"]
        _settle(case, self.workloads[e["i"]], e)
        self.case = None
        self.add(case, self.workloads[e["i"]])

    def _case_failed(self, e: dict[str, Any]) -> None:
        case = self.case if self.case is not None else self._new(e["i"])
        workload = self.workloads[e["i"]]
        error = e["error"]
        if e.get("stopped"):            # at its time limit: how far it got
            error += f" after {workload.progress_of(len(case['iterations']), self.suite.iterations)}"
        case.update(status="failed", error=error)
        self._settling(case)
        _summarise(case, workload)
        case["warnings"].extend(workload.spread_warnings(case))
        self.case = None
        self.add(case, workload)

    def abandon(self, why: str) -> None:
        """The run is ending: keep the case in progress, marked partial."""
        case, self.case = self.case, None
        if case is None:
            return
        self._settling(case)
        workload = self.workloads[self._index(case)]
        done = workload.progress_of(len(case["iterations"]), self.suite.iterations)
        case.update(status="partial", error=f"{why} after {done}")
        _summarise(case, workload)
        self.add(case, workload)

    def _settling(self, case: dict[str, Any]) -> None:
        """A case ends: its iterations screened (`screen`) before anything is computed
        from them, then its telemetry."""
        self.refused = screen(self.outcome.doc, case)
        self._telemetry(case)

    def _telemetry(self, case: dict[str, Any]) -> None:
        """Stop the case's sampler; its figures and warnings go into the case."""
        sampler, self.sampler = self.sampler, None
        if sampler is None:
            return
        its = case["iterations"]
        case["telemetry"] = sampler.finish(tokens=sum(it["tokens"] for it in its) or None,
                                           seconds=sum(it["seconds"] for it in its) or None)
        case["warnings"].extend(telemetry.warnings(case["telemetry"]))

    def _index(self, case: dict[str, Any]) -> int:
        return next(i for i, w in enumerate(self.workloads) if w.test == case["test"])


MAX_REPAIRS = 32           # values taken out of one case before it is left bare


def screen(doc: dict[str, Any], case: dict[str, Any]) -> Refused | None:
    """Drop the iterations of `case` that hold a figure no reader of `doc` would accept
    (benchkit.results.io.case_problem: NaN, a negative or absurd figure, 0 s for N tokens,
    nesting no reader takes), before anything is computed from them. What was dropped,
    or None."""
    its = case["iterations"]
    if not its:
        return None
    skeleton = {"index": 0, "status": "ok", "model": case["model"], "engine": case["engine"],
                "test": case["test"], "workload": case["workload"], "summary": summarize([])}
    problem = case_problem(doc, {**skeleton, "iterations": its})
    if problem is None:               # the usual case: one check
        return None
    bad = {k for k, it in enumerate(its)
           if case_problem(doc, {**skeleton, "iterations": [it]}) is not None}
    case["iterations"] = [it for k, it in enumerate(its) if k not in bad]
    return Refused(problem, len(bad), len(its))


@dataclass(frozen=True)
class Refused:
    """Iterations `screen` dropped: the first figure refused, how many, of how many."""

    problem: BenchkitError
    dropped: int
    of: int


def admit(doc: dict[str, Any], case: dict[str, Any], refused: Refused | None) -> None:
    """Make `case` one that every reader accepts, before it is written into `doc`.

    Figures come from outside (a server's timings and token counts, the rows llama-bench
    prints): one that a reader would refuse fails its case, in one line naming the field,
    and is left out: `screen` dropped the iterations holding one (the others are kept, the
    summary is theirs), another such value becomes null here, and a case that still does
    not pass keeps only its identity and the error. The rest of the run stays readable
    by report, compare, validate, project and submit."""
    problem = case_problem(doc, case)
    if problem is None and refused is None:
        return
    first = refused.problem if refused else problem
    seen: set[str] = set()
    for _ in range(MAX_REPAIRS):
        if problem is None:
            break
        field = problem.field or ""
        if field in seen or not _null(case, field.split(".")[2:]):
            _bare(case)
            break
        seen.add(field)
        problem = case_problem(doc, case)
    else:
        _bare(case)
    assert first is not None
    _refuse(case, first, refused)


def _refuse(case: dict[str, Any], problem: BenchkitError, refused: Refused | None) -> None:
    field = (problem.field or "").removeprefix("cases.0.")
    said = f"a figure no reader would accept: {field}: {problem.message}"
    if refused is not None:
        said += f" ({refused.dropped} of {refused.of} iterations left out)"
    old = case.get("error") if case.get("status") == "failed" else None
    case.update(status="failed", error=f"{old}; {said}" if old else said)


def _null(case: dict[str, Any], path: list[str]) -> bool:
    """Set the value at `path` (keys and list indexes) in `case` to null; False when
    there is no such value, or it is null already."""
    node: Any = case
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) and part.isdigit() and \
            int(part) < len(node) else node.get(part) if isinstance(node, dict) else None
    last = path[-1] if path else None
    if isinstance(node, dict) and last in node and node[last] is not None:
        node[last] = None
        return True
    return False


def _bare(case: dict[str, Any]) -> None:
    """The case's identity and error only: nothing measured a reader could refuse."""
    for key in ("telemetry", "cold_start"):
        case.pop(key, None)
    case.update(iterations=[], summary=summarize([]), load=None, placement=None,
                engine_info={"layer": (case.get("engine_info") or {}).get("layer")},
                warnings=[])


def _settle(case: dict[str, Any], workload: Workload, e: dict[str, Any]) -> None:
    """A finished case's summary, warnings, warmup count and cold-start cost."""
    _summarise(case, workload)
    case["warnings"].extend(workload.spread_warnings(case))
    used = e.get("warmups_used")
    if used is not None:
        case["warmup_used"] = used
        if case["warmup"] == "auto" and used >= AutoWarmup().cap:
            case["warnings"].append(f"warmup: auto stopped at its cap of {used} iterations "
                                    f"before the last {AutoWarmup().window} agreed within "
                                    f"{AutoWarmup().tolerance:.0%}")
    first = e.get("first_iteration")
    if first is not None:
        load = (case.get("load") or {}).get("seconds")
        case["cold_start"] = {"load_seconds": load, "first_iteration": first,
                              "first_token_s": first.get("ttft_s", first.get("seconds"))}


def _summarise(case: dict[str, Any], workload: Workload) -> None:
    tps = [it["tps"] for it in case["iterations"]]
    case["summary"] = {**summarize(tps), **workload.summary(case["iterations"])}


def _case(model: PreparedModel, engine: Engine, workload: Workload, suite: Suite, *,
          load: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
          status: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {
        "index": 0, "status": status or ("failed" if error else "ok"), "error": error,
        "model": model.to_dict(), "engine": engine.settings(),
        "engine_info": {"layer": engine.layer, **(info or {})}, "test": workload.test,
        "workload": workload.to_dict(), "warmup": suite.warmup, "load": load,
        "placement": None, "iterations": [], "summary": summarize([]), "warnings": [],
    }


def _finish(doc: dict[str, Any], status: str, path: Path) -> None:
    doc["status"] = status
    doc["partial"] = status != "complete"
    doc["finished_at"] = _iso(dt.datetime.now(dt.timezone.utc))
    _write(doc, path)


def _write(doc: dict[str, Any], path: Path) -> None:
    try:
        # the cases were scrubbed of URL credentials as they were added; the rest here
        clean = {k: v if k == "cases" else scrub_credentials(v) for k, v in doc.items()}
        write_result(scrub_home(clean), path)
    except OSError as exc:
        raise BenchkitError(f"cannot write the result file: {exc.strerror or exc}",
                            file=str(path)) from None


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Progress:
    """A tqdm bar per case on stderr (running tok/s); one line per case when not a TTY.

    Every line is result text (a model name, an engine's error, a warning quoting one):
    written through `benchkit.core.textsafe.terminal`, so that no escape sequence in it reaches
    the terminal, and a label is always one line.
    """

    def __init__(self, n_cases: int, enabled: bool | None, stream: TextIO) -> None:
        self.n_cases, self.stream = n_cases, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.bar: Any = None
        self.values: list[float] = []
        self.count = 0

    def start(self, case: dict[str, Any], total: int | None) -> None:
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

    def done(self, case: dict[str, Any], workload: Workload) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        label = self._label(case, self.count)
        if case["status"] in ("failed", "partial"):
            self._say(f"{label}: {case['status'].upper()}: {terminal(case['error'])}")
        elif case["status"] == "unsupported":
            self._say(f"{label}: unsupported: {terminal(case['error'])}")
        elif not self.enabled:
            self._say(f"{label}: {workload.progress_text(case['summary'])}")
        for warning in case["warnings"]:
            self._say(f"warning: {label}: {terminal(warning, one_line=True)}")
        self.stream.flush()

    def _say(self, line: str) -> None:
        self.stream.write(line + "\n")

    def _label(self, case: dict[str, Any], number: int) -> str:
        """[3/8] engine model ngl=N test, on one line with nothing a terminal obeys."""
        eng = case["engine"]
        ngl = f" ngl={eng['n_gpu_layers']}" if "n_gpu_layers" in eng else ""
        return terminal(f"[{number}/{self.n_cases}] {eng['kind']} {case['model']['name']}"
                        f"{ngl} {case['test']}", one_line=True)

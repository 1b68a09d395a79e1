"""Validate community results: every check a file must pass to join the shared data set.

The data set is a folder of result files in the repository,
`results/community/<chip>/<model>/<id>.json`, grown by pull requests. Two rules make it
trustworthy without trusting anyone:

- every file comes from a *standard suite* (`suites/standard*.yaml`, marked `standard:
  true`): fixed model (by sha256), engine settings, tests and counts, so rows compare;
- every file is checked by `validate`, which CI runs on each pull request. A check either
  rejects the file (it cannot be part of the data set), warns (it can, but a reviewer
  should look), or notes what it could not check. Exit codes: 0 accepted (warnings
  allowed), 1 accepted with warnings under `--strict`, 2 at least one file rejected.

The path is derived from the content (`benchkit.community.identity`); a file whose path
does not match its content is rejected.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from benchkit.community.identity import community_relpath, fingerprint, work_chip
from benchkit.community.scrub import private_fields
from benchkit.core.errors import BenchkitError
from benchkit.results.facts import DECODE_KINDS
from benchkit.core.units import fmt_bytes
from benchkit.core.stats import CV_LIMIT

MAX_BYTES = 1024 * 1024          # a standard-suite result is tens of KB; more is not a result
MAX_NOTES = 2000                 # characters of free text a submitter may add
MIN_ITERATIONS = 3               # fewer timed iterations give no usable spread
SUMMARY_RTOL = 1e-6              # summary figures must be those the iterations give
TPS_RTOL = 0.01                  # an iteration's tps must be its tokens / seconds
NEAR_RTOL = 1e-6                 # iterations this close to another file's are a copy, not a run
CPU_SOCKETS = 2                  # the CPU ceiling: two sockets of the fastest CPU memory known

EXIT_OK, EXIT_WARNINGS, EXIT_REJECTED = 0, 1, 2

ERROR, WARNING, NOTE = "error", "warning", "note"


# --- problems and verdicts ---------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding about one file: a rejection (error), a warning, or a note."""

    level: str
    file: str
    field: str | None
    message: str

    def __str__(self) -> str:
        from benchkit.core.textsafe import terminal   # messages quote the file's own text

        line = f"{self.level}: {BenchkitError(self.message, file=self.file, field=self.field)}"
        return terminal(line, one_line=True)


@dataclass
class Verdict:
    """What validate concluded about one file; `doc` is None when it could not be read.
    `written` is the document as the file holds it (its id hashes that content; `doc` is
    upgraded to the current format)."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    doc: dict[str, Any] | None = None
    written: dict[str, Any] | None = None

    @property
    def relpath(self) -> PurePosixPath | None:
        """The path the content files under (None when the file could not be read)."""
        content = self.written if self.written is not None else self.doc
        return community_relpath(content) if content is not None else None

    def add(self, level: str, field_: str | None, message: str) -> None:
        self.problems.append(Problem(level, self.file, field_, message))

    def count(self, level: str) -> int:
        return sum(1 for p in self.problems if p.level == level)

    @property
    def accepted(self) -> bool:
        return self.count(ERROR) == 0


def exit_code(verdicts: Iterable[Verdict], *, strict: bool = False) -> int:
    """0 all accepted; 1 accepted but warned and `strict`; 2 any rejected."""
    verdicts = list(verdicts)
    if any(not v.accepted for v in verdicts):
        return EXIT_REJECTED
    if strict and any(v.count(WARNING) for v in verdicts):
        return EXIT_WARNINGS
    return EXIT_OK


# --- the standard suites -----------------------------------------------------------------


@dataclass(frozen=True)
class StandardSuite:
    """What a community result of this suite must match (read from the suite file)."""

    name: str
    file: str
    sha256: tuple[str | None, ...]           # one per model, None where the suite pins none
    tests: tuple[str, ...]
    iterations: int
    warmup: int
    engine: dict[str, Any]                   # the settings the suite pins (others are free)
    allow_synthetic: bool


def find_suites_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the standard suites are: `--suites DIR`, else ./suites, else the source tree's.

    CI and contributors run benchkit from a checkout, so ./suites is the usual answer; the
    fallback covers running from another folder with benchkit installed in editable mode.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_dir():
            raise BenchkitError("suites folder does not exist", file=str(explicit),
                                field="--suites")
        return path
    for cand in (Path("suites"), Path(__file__).resolve().parents[2] / "suites"):
        if cand.is_dir() and any(cand.glob("*.yaml")):
            return cand
    raise BenchkitError("no suites/ folder with the standard suites here; run from the "
                        "benchkit checkout or pass --suites DIR", field="--suites")


def standard_suites(suites_dir: str | os.PathLike[str] | None = None) -> dict[str, StandardSuite]:
    """Every suite in the folder that says `standard: true`, by name."""
    from benchkit.run.suite import load_suite, normalize_engine_value

    found: dict[str, StandardSuite] = {}
    folder = find_suites_dir(suites_dir)
    for path in sorted(folder.glob("*.yaml")):
        suite = load_suite(path)
        if suite.raw.get("standard") is not True:
            continue
        pinned = dict((suite.raw.get("engine") or {}))
        found[suite.name] = StandardSuite(
            name=suite.name, file=shown_path(path),
            sha256=tuple(m.sha256 for m in suite.models),
            tests=tuple(w.test for w in suite.workloads),
            iterations=suite.iterations, warmup=suite.warmup,
            engine={k: normalize_engine_value(k, v) for k, v in pinned.items()},
            allow_synthetic=bool(suite.raw.get("allow_synthetic", False)))
    return found


# --- validate ----------------------------------------------------------------------------


def validate_paths(paths: Iterable[str | os.PathLike[str]], *,
                   suites_dir: str | os.PathLike[str] | None = None) -> list[Verdict]:
    """Check every result file named (folders: every *.json under them), in sorted order."""
    standards = standard_suites(suites_dir)
    files = list(_expand(paths))
    verdicts = [check_file(f, standards) for f in files]
    _check_set(verdicts)
    return verdicts


def _expand(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    seen: set[Path] = set()
    for p in paths:
        path = Path(p)
        found = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for f in found:
            if f not in seen:
                seen.add(f)
                yield f


def check_file(path: str | os.PathLike[str], standards: dict[str, StandardSuite]) -> Verdict:
    """Every check that needs only this file and the standard suites."""
    from benchkit.results.io import parse_result
    from benchkit.core.safeio import read_json_file

    shown = shown_path(path)
    verdict = Verdict(shown)
    problem = file_problem(Path(path))
    if problem:
        verdict.add(ERROR, None, problem)
        return verdict
    size = Path(path).stat().st_size
    if size > MAX_BYTES:
        verdict.add(ERROR, None, f"file is too large: {size:,} bytes (at most {MAX_BYTES:,}); "
                                 "a standard-suite result is tens of KB")
        return verdict
    try:   # read once: the document as written (what its content id was computed from)
        written = read_json_file(path, MAX_BYTES, "result file", str(path))
        doc = parse_result(written, str(path), validate=False)
    except BenchkitError as exc:
        verdict.add(ERROR, exc.field, exc.message)
        return verdict
    if _schema_problems(doc, verdict):
        return verdict
    verdict.doc = doc
    verdict.written = written
    check_document(doc, verdict, standards)
    return verdict


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be a community file, or None: it must be a regular file reached
    without a link. A link under results/community/ would publish a file from anywhere
    (a link to /dev/zero would be read forever); a FIFO would block the reader."""
    from benchkit.core.safeio import file_kind

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return ("a symbolic link: community results must be regular files inside the "
                "tree, not links")
    kind = file_kind(st.st_mode)
    if kind:
        return f"{kind}, not a regular file: community results must be regular files"
    absolute = Path(os.path.abspath(path))
    root = next((p for p in absolute.parents if p.name == "community"), None)
    if root is not None:
        for folder in absolute.parents:
            if folder.is_symlink():
                return (f"reached through a linked folder ({shown_path(folder)}): community "
                        "results must lie inside the tree")
            if folder == root:
                break
    return None


def _schema_problems(doc: dict[str, Any], verdict: Verdict) -> bool:
    """One line per schema problem (missing fields named one by one); True if any."""
    import jsonschema

    from benchkit.results.io import schema

    validator = jsonschema.Draft202012Validator(schema())
    found = False
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            for name in err.validator_value:
                if isinstance(err.instance, dict) and name not in err.instance:
                    verdict.add(ERROR, f"{where}.{name}" if where else name,
                                "missing required field")
                    found = True
            continue
        verdict.add(ERROR, where or None, err.message)
        found = True
    return found


def check_document(doc: dict[str, Any], verdict: Verdict,
                   standards: dict[str, StandardSuite]) -> None:
    """The community rules, on a document that already fits the result schema."""
    if doc.get("status") != "complete" or doc.get("partial"):
        verdict.add(ERROR, "status", f"run is {doc.get('status')!r}"
                    f"{' and partial' if doc.get('partial') else ''}: only complete runs "
                    "are accepted")
    suite_name = doc["suite"]["name"]
    std = standards.get(suite_name)
    if std is None:
        names = ", ".join(sorted(standards)) or "none found"
        verdict.add(ERROR, "suite.name", f"suite {suite_name!r} is not a standard suite "
                    f"(standard suites: {names}); run suites/standard.yaml")
    cases = doc["cases"]
    if not cases:
        verdict.add(ERROR, "cases", "no cases")
        return
    models = {(c["model"].get("name"), c["model"].get("sha256")) for c in cases}
    if len(models) > 1:
        verdict.add(ERROR, "cases", f"{len(models)} models in one result; a community "
                    "result holds one model")
    for i, case in enumerate(cases):
        _check_case(case, f"cases.{i}", doc, std, verdict)
    if std is not None:
        _check_against_suite(doc, std, verdict)
    for item in private_fields(doc):
        where, _, why = item.partition(": ")
        verdict.add(ERROR, where, f"not publishable ({why}); prepare the file with "
                    "`benchkit submit`")
    _check_notes(doc, verdict)


def _check_case(case: dict[str, Any], where: str, doc: dict[str, Any],
                std: StandardSuite | None, verdict: Verdict) -> None:
    if case["status"] != "ok":
        verdict.add(ERROR, f"{where}.status", f"case failed: {case.get('error') or 'no reason'}")
        return
    iters = case["iterations"]
    tps = [float(it["tps"]) for it in iters]
    if len(tps) < MIN_ITERATIONS:
        verdict.add(ERROR, f"{where}.iterations", f"too few iterations: {len(tps)} "
                    f"(at least {MIN_ITERATIONS})")
        return
    expected = _check_summary(case, tps, where, verdict)
    _check_iterations(case, where, verdict)
    if std is not None and len(tps) < std.iterations:
        verdict.add(WARNING, f"{where}.iterations", f"{len(tps)} iterations, fewer than the "
                    f"standard suite's {std.iterations}")
    cv = expected["tps_cv"]
    if cv is not None and cv > CV_LIMIT:
        verdict.add(WARNING, f"{where}.summary.tps_cv", f"high spread: CoV {cv:.1%} over "
                    f"{len(tps)} iterations ({case['test']})")
    model = case["model"]
    if model.get("sha256") is None and not model.get("synthetic"):
        verdict.add(ERROR, f"{where}.model.sha256", "missing: the model file cannot be "
                    "identified")
    _check_bandwidth(case, where, doc, verdict)


def _check_summary(case: dict[str, Any], tps: list[float], where: str,
                   verdict: Verdict) -> dict[str, Any]:
    """The summary must be what the iterations give: a figure typed in by hand is not.

    Returns the summary the iterations give, for the other checks."""
    from benchkit.results.io import summarize

    expected = summarize(tps)
    summary = case["summary"]
    for key in ("n", "tps_mean", "tps_median", "tps_stdev", "tps_min", "tps_max"):
        got, want = summary.get(key), expected[key]
        if not _close(got, want, SUMMARY_RTOL):
            verdict.add(ERROR, f"{where}.summary.{key}", f"{got!r} does not match the "
                        f"iterations, which give {_fmt(want)}")
    return expected


def _check_iterations(case: dict[str, Any], where: str, verdict: Verdict) -> None:
    """pp and tg: tokens as the test names them, tok/s = tokens / seconds."""
    workload = case["workload"]
    kind = workload["kind"]
    if kind not in ("pp", "tg"):
        return
    tokens = workload.get("n_prompt") if kind == "pp" else workload.get("n_gen")
    for j, it in enumerate(case["iterations"]):
        here = f"{where}.iterations.{j}"
        if tokens and it["tokens"] != tokens:
            verdict.add(ERROR, f"{here}.tokens", f"{it['tokens']} tokens in a "
                        f"{case['test']} iteration (expected {tokens})")
        elif it["seconds"] <= 0 or not _close(it["tps"], it["tokens"] / it["seconds"], TPS_RTOL):
            verdict.add(ERROR, f"{here}.tps", f"{it['tps']!r} tok/s is not tokens / seconds "
                        f"({it['tokens']} / {it['seconds']!r})")


def _check_bandwidth(case: dict[str, Any], where: str, doc: dict[str, Any],
                     verdict: Verdict) -> None:
    """Decode reads every weight once per token: tok/s x model bytes cannot exceed the
    memory bandwidth of the chip that did the work. (The file size stands for the bytes
    read per token; for the standard suites' models the output head reads the whole
    token table, so the file size is what moves.)"""
    if case["workload"]["kind"] not in DECODE_KINDS:
        return
    size = case["model"].get("size_bytes")
    tps = case["summary"].get("tps_median")
    if not size or not tps:
        return
    chip_id = work_chip(doc)
    ceiling = bandwidth_ceiling(chip_id, doc)
    if ceiling is None:
        verdict.add(NOTE, f"{where}.summary.tps_median", "the chip database is not "
                    "available: the decode figure cannot be checked")
        return
    limit, basis, known = ceiling
    if not known:
        verdict.add(NOTE, f"{where}.summary.tps_median", f"{chip_id!r} is not in the chip "
                    "database: the decode figure cannot be checked against its own memory "
                    f"bandwidth, only against {basis}")
    needed = float(tps) * float(size) / 1e9
    if needed > limit:
        verdict.add(ERROR, f"{where}.summary.tps_median", f"physically impossible: "
                    f"{float(tps):,.1f} tok/s x {fmt_bytes(size)} = {needed:,.0f} GB/s, "
                    f"above {basis}")


def bandwidth_ceiling(chip_id: str, doc: dict[str, Any]) -> tuple[float, str, bool] | None:
    """(GB/s no decode on this chip can exceed, what that figure is, whether the chip is in
    the database); None without a database.

    Every chip gets a ceiling. A known chip: its peak bandwidth (times the GPUs in the
    machine, which a row split can read at once). A CPU the database does not list: two
    sockets of the fastest CPU memory configuration in the database. An unknown GPU:
    the fastest chip in the database. The last two are generous (they refuse only what
    no hardware does), but a figure beyond them is not a measurement.
    """
    try:
        from benchkit.projection.chips import load_chips

        chips = load_chips()
    except (ImportError, BenchkitError):
        return None
    is_cpu = chip_id.startswith("cpu-")
    gpus = (doc.get("environment") or {}).get("gpus") or []
    n_gpus = len(gpus) if not is_cpu and len(gpus) > 1 else 1
    times = f" x {n_gpus} GPUs" if n_gpus > 1 else ""
    chip = _chip(chip_id)
    if chip is not None and getattr(chip, "bandwidth_gbs", None):
        return (float(chip.bandwidth_gbs) * n_gpus, f"the {chip.bandwidth_gbs:,.0f} GB/s "
                f"peak memory bandwidth of {chip.name}{times}", True)
    pool = [c for c in chips.values() if (c.vendor == "cpu") == is_cpu and c.bandwidth_gbs]
    if not pool:
        return None
    best = max(pool, key=lambda c: c.bandwidth_gbs)
    if is_cpu:
        limit = float(best.bandwidth_gbs) * CPU_SOCKETS
        return (limit, f"{limit:,.0f} GB/s ({CPU_SOCKETS} sockets of the fastest CPU memory "
                f"in the chip database, {best.name} at {best.bandwidth_gbs:,.0f} GB/s each)",
                False)
    return (float(best.bandwidth_gbs) * n_gpus, f"the {best.bandwidth_gbs:,.0f} GB/s of the "
            f"fastest chip in the database ({best.name}){times}", False)


def _chip(chip_id: str) -> Any:
    """The chip database entry, or None (also when the database is not available)."""
    try:
        from benchkit.projection.chips import get_chip
    except ImportError:
        return None
    try:
        return get_chip(chip_id)
    except (BenchkitError, KeyError, LookupError):
        return None


def _check_against_suite(doc: dict[str, Any], std: StandardSuite, verdict: Verdict) -> None:
    """Tests, engine settings, model identity and stand-ins, as the standard suite pins them."""
    cases = doc["cases"]
    tests = [c["test"] for c in cases]
    for test in std.tests:
        if test not in tests:
            verdict.add(ERROR, "cases", f"no {test} case: the standard suite {std.name} "
                        f"runs {', '.join(std.tests)}")
    for i, case in enumerate(cases):
        where = f"cases.{i}"
        if case["test"] not in std.tests:
            verdict.add(ERROR, f"{where}.test", f"{case['test']!r} is not a test of the "
                        f"standard suite {std.name} ({', '.join(std.tests)})")
        for key, want in std.engine.items():
            got = case["engine"].get(key)
            if got != want:
                verdict.add(ERROR, f"{where}.engine.{key}", f"{got!r}; the standard suite "
                            f"{std.name} runs {want!r}")
        if case.get("warmup") is not None and case["warmup"] < std.warmup:
            verdict.add(WARNING, f"{where}.warmup", f"{case['warmup']} warmup iterations, "
                        f"fewer than the standard suite's {std.warmup}")
        _check_model(case["model"], where, std, verdict)


def _check_model(model: dict[str, Any], where: str, std: StandardSuite,
                 verdict: Verdict) -> None:
    if model.get("synthetic"):
        if not std.allow_synthetic:
            verdict.add(ERROR, f"{where}.model.synthetic", "a synthetic stand-in: the standard "
                        f"suite {std.name} takes the real model only (it installs from PyPI)")
        return
    pinned = [s for s in std.sha256 if s]
    if not pinned:
        verdict.add(NOTE, f"{where}.model.sha256", f"the standard suite {std.name} pins no "
                    "sha256: the model file cannot be checked")
        return
    got = str(model.get("sha256") or "").lower()
    if got and got not in pinned:
        verdict.add(ERROR, f"{where}.model.sha256", f"{got[:12]}… differs from the standard "
                    f"suite's {pinned[0][:12]}… ({std.file}): another model file")


def _check_notes(doc: dict[str, Any], verdict: Verdict) -> None:
    block = doc.get("community")
    if block is None:
        return
    if not isinstance(block, dict):
        verdict.add(ERROR, "community", "must be an object")
        return
    notes = block.get("notes")
    if notes is not None and not isinstance(notes, str):
        verdict.add(ERROR, "community.notes", "must be text")
    elif notes and len(notes) > MAX_NOTES:
        verdict.add(ERROR, "community.notes", f"{len(notes)} characters (at most {MAX_NOTES})")


def _check_set(verdicts: list[Verdict]) -> None:
    """Checks across files: the path matches the content, and no run is filed twice."""
    known: dict[Path, Measured | None] = {}
    # of two copies both validated here, the earlier run (then path) is the original
    order = {Path(os.path.abspath(v.file)): (str(v.doc.get("started_at") or ""),
                                             os.path.abspath(v.file))
             for v in verdicts if v.doc is not None}
    for v in verdicts:
        if v.doc is None:
            continue
        path = Path(v.file)
        root = community_root(path)
        if root is None:
            v.add(NOTE, None, "not under a community/ folder: path not checked "
                  "(`benchkit submit` files it)")
            continue
        expected = v.relpath
        actual = PurePosixPath(*path.resolve().relative_to(root.resolve()).parts)
        if actual != expected:
            v.add(ERROR, None, f"path does not match the content: expected "
                  f"{shown_path(root / expected)}")
        mine = order[Path(os.path.abspath(v.file))]
        copies = {p for p, key in order.items() if key > mine}
        for problem in duplicate_problems(v.doc, path, root, known, copies=copies):
            v.add(ERROR, None, problem)


@dataclass(frozen=True)
class Measured:
    """What duplicate checks compare: the exact measurements, and what was measured (model
    files, chip, tests and engine settings) with every iteration's tok/s."""

    fingerprint: str
    identity: str
    series: tuple[tuple[float, ...], ...]


def measured(doc: dict[str, Any]) -> Measured:
    """The measurements of a file as a set: cases in the order of what they measured, and
    each case's iterations sorted, so that a copy with its cases or iterations reordered
    compares equal to the original."""
    cases = sorted(((json.dumps([c.get("test"), c.get("engine")], sort_keys=True, default=str),
                     tuple(sorted(float(it["tps"]) for it in c.get("iterations") or [])))
                    for c in doc.get("cases") or []))
    identity = json.dumps([work_chip(doc),
                           sorted({str(c["model"].get("sha256") or c["model"].get("name"))
                                   for c in doc.get("cases") or []}),
                           [key for key, _ in cases]], sort_keys=True, default=str)
    return Measured(fingerprint(doc), identity, tuple(series for _, series in cases))


def _measured_file(path: Path) -> Measured | None:
    """The measurements of another file of the data set; None when it is not one (it is
    judged on its own; here it only must not hang, exhaust memory or crash the check)."""
    from benchkit.results.io import upgrade
    from benchkit.core.safeio import read_json_file

    if file_problem(path):
        return None
    try:
        doc = read_json_file(path, MAX_BYTES, "result file")
        return measured(upgrade(doc)) if isinstance(doc, dict) else None
    except (BenchkitError, AttributeError, KeyError, TypeError, ValueError):
        return None


def duplicate_problems(doc: dict[str, Any], path: Path, root: Path,
                       cache: dict[Path, Measured | None] | None = None,
                       copies: set[Path] | frozenset[Path] = frozenset()) -> list[str]:
    """Files under `root` (other than `path`) with the same measurements, or with every
    iteration within NEAR_RTOL of this file's on the same model, chip and settings: a
    copy with its figures nudged is the same run, not a second one. Files in `copies`
    (absolute paths) are the copies of this one, reported on their own verdicts."""
    cache = {} if cache is None else cache
    mine = measured(doc)
    out = []
    for other in sorted(root.rglob("*.json")):
        key = Path(os.path.abspath(other))
        if key == Path(os.path.abspath(path)) or key in copies:
            continue
        if key not in cache:
            cache[key] = _measured_file(other)
        theirs = cache[key]
        if theirs is None:
            continue
        if theirs.fingerprint == mine.fingerprint:
            out.append(f"duplicate: the same measurements as {shown_path(other)}")
        elif theirs.identity == mine.identity and _near(mine.series, theirs.series):
            out.append(f"near-duplicate of {shown_path(other)}: the same model, chip and "
                       f"settings, and every iteration within {NEAR_RTOL:g} of its figures "
                       "(a copy with its figures nudged is not a new run)")
    return out


def _near(a: tuple[tuple[float, ...], ...], b: tuple[tuple[float, ...], ...]) -> bool:
    if len(a) != len(b) or not any(a) or any(len(x) != len(y) for x, y in zip(a, b)):
        return False
    return all(math.isclose(x, y, rel_tol=NEAR_RTOL, abs_tol=0.0)
               for xs, ys in zip(a, b) for x, y in zip(xs, ys))


def community_root(path: Path) -> Path | None:
    """The nearest folder named `community` above the file, if any."""
    for parent in path.resolve().parents:
        if parent.name == "community":
            return _relative_if_inside(parent)
    return None


# --- small helpers -----------------------------------------------------------------------


def _close(got: Any, want: Any, rtol: float) -> bool:
    if got is None or want is None:
        return got is None and want is None
    try:
        g, w = float(got), float(want)
    except (TypeError, ValueError):
        return False
    return math.isclose(g, w, rel_tol=rtol, abs_tol=1e-9)


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _relative_if_inside(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def shown_path(path: str | os.PathLike[str]) -> str:
    """The path as printed: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)

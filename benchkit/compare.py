"""Compare two result files case by case, and say whether a difference is real.

A difference between two medians means little on its own: a busy laptop moves tok/s by
a few percent from run to run. As pyperf's `compare_to` and llama.cpp's
`compare-llama-bench.py` do, cases are matched on what was measured (the model file by
sha256, the engine settings, the test) and each pair is judged with a statistical test
over the timed iterations: Welch's t-test by default (it does not assume equal spreads),
or Mann-Whitney U (no normality assumption, but with 3 iterations per side it can never
reach p < 0.05). A change counts only when it is significant *and* at least
`min_change` percent (10% by default, as airspeed velocity's `asv compare`): the
iterations of one run agree with each other more closely than two runs do (CPU
frequency, memory placement, neighbours), so the t-test alone would call run-to-run
noise a change.

Cases that cannot be compared (another model file, a test one side lacks, other engine
settings) are listed with the reason, never mixed into the table.

A case without per-iteration samples (imported from llama-bench's csv or sql output,
which hold one mean per test: the importer records `n` 0 and no iterations) has a centre
but no spread: its figure says so instead of "± 0", and its pairs get the verdict
"no samples", never a p-value. One timed iteration has no spread either ("n=1, no
spread").
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from benchkit.core.errors import BenchkitError
from benchkit.results.frame import cell as _clean
from benchkit.core.units import fmt_ms, fmt_tps
from benchkit.results.frame import ENGINE_SETTINGS
from benchkit.workloads.serve.workload import compare_figures

STATS = ("median", "mean")
TESTS = ("welch", "mannwhitney")
TEST_NAMES = {"welch": "Welch's t-test", "mannwhitney": "Mann-Whitney U test"}


@dataclass
class Side:
    """One side of a pair: the iterations of one case (none for a case that holds only
    a mean: `samples` false, `stdev` None)."""

    file: str
    case_index: int
    values: list[float]
    center: float
    stdev: float | None
    samples: bool = True

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass
class Pair:
    """A case measured in both results, and the verdict on the difference."""

    model: str
    test: str
    settings: dict[str, Any]  # the engine settings the pair was matched on
    base: Side
    new: Side
    ratio: float
    change_pct: float
    pvalue: float | None
    verdict: str              # slower | faster | no change | too few iterations | no samples
    differing: dict[str, list[Any]] = field(default_factory=dict)   # ignored settings
    serve: dict[str, Any] | None = None   # serve levels: output tok/s, p99 TTFT, both sides


@dataclass
class Unmatched:
    """A case of one side that has no counterpart on the other, and why."""

    side: str                 # base | new
    model: str
    test: str
    settings: str
    reason: str


@dataclass
class Comparison:
    base_file: str
    new_file: str
    stat: str
    test: str
    alpha: float
    min_change: float
    pairs: list[Pair]
    unmatched: list[Unmatched]
    notes: list[str]

    def regressions(self, fail_above: float) -> list[Pair]:
        """Significant slow-downs larger than `fail_above` percent (for --fail-above)."""
        return [p for p in self.pairs
                if p.pvalue is not None and p.pvalue < self.alpha
                and p.change_pct < -abs(fail_above)]


# --------------------------------------------------------------------------- matching

def _model_id(row: Any) -> str:
    """The model file's identity: sha256, else name and size."""
    sha = _clean(row.get("model_sha256"))
    return sha or f"{row['model_name']}:{_clean(row.get('model_size_bytes'))}"


def _settings(row: Any, keys: Sequence[str]) -> tuple:
    return tuple((k, _clean(row.get(k))) for k in keys)


def _settings_text(settings: tuple) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings if v is not None) or "default"


def _load(path: str | Path):
    """One result file as a DataFrame; errors name the file."""
    from benchkit import load_results

    p = Path(path)
    if p.is_dir():
        raise BenchkitError("compare takes one result file per side, not a directory",
                            file=str(p))
    df = load_results([str(p)])    # a bad file is refused in one line, naming it
    if df is None or len(df) == 0:
        raise BenchkitError("the result holds no cases", file=str(p), field="cases")
    return df


def _index(df, keys: Sequence[str]) -> dict[tuple, Any]:
    """(model id, test, settings) -> first row with that key."""
    out: dict[tuple, Any] = {}
    for _, row in df.iterrows():
        out.setdefault((_model_id(row), row["test"], _settings(row, keys)), row)
    return out


def _check_models(base, new, base_file: str, new_file: str) -> None:
    """Refuse results of entirely different models: there is no pair to make."""
    b = {_model_id(r): r["model_name"] for _, r in base.iterrows()}
    n = {_model_id(r): r["model_name"] for _, r in new.iterrows()}
    if not set(b) & set(n):
        raise BenchkitError(
            f"BASE measured {', '.join(sorted(set(b.values())))} and NEW measured "
            f"{', '.join(sorted(set(n.values())))}: different model files (sha256), "
            f"nothing to compare (BASE is {base_file})", file=new_file,
            field="cases.model.sha256")


# --------------------------------------------------------------------------- statistics

def _center(values: Sequence[float], stat: str) -> float:
    return statistics.median(values) if stat == "median" else statistics.fmean(values)


def pvalue(a: Sequence[float], b: Sequence[float], test: str = "welch") -> float | None:
    """Two-sided p-value that a and b come from the same distribution; None if untestable."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if test == "mannwhitney":
        return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def verdict(change_pct: float, p: float | None, alpha: float, min_change: float) -> str:
    """slower / faster only when the difference is both significant and large enough."""
    if p is None:
        return "too few iterations"
    if p < alpha and abs(change_pct) >= min_change:
        return "faster" if change_pct > 0 else "slower"
    return "no change"


def _side(row: Any, stat: str) -> Side:
    """The iterations' tok/s of a case; a case without any (a llama-bench csv / sql
    import) is its summary's centre alone, with no spread."""
    values = [float(v) for v in (_clean(row.get("tps_values")) or [])]
    common = {"file": str(row["file"]), "case_index": int(row["case_index"])}
    if not values:
        median = _clean(row.get("tps_median"))
        return Side(**common, values=[], center=float("nan") if median is None
                    else float(median), stdev=None, samples=False)
    return Side(**common, values=values, center=_center(values, stat),
                stdev=statistics.stdev(values) if len(values) > 1 else None)


# --------------------------------------------------------------------------- the comparison

def compare_results(base_path: str | Path, new_path: str | Path, *, stat: str = "median",
                    test: str = "welch", alpha: float = 0.05, min_change: float = 10.0,
                    ignore: Sequence[str] = ()) -> Comparison:
    """Pair the cases of two results and judge each pair; see the module docstring."""
    if stat not in STATS:
        raise BenchkitError(f"unknown statistic {stat!r} (use {' or '.join(STATS)})",
                            field="--stat")
    if test not in TESTS:
        raise BenchkitError(f"unknown test {test!r} (use {' or '.join(TESTS)})", field="--test")
    unknown = [k for k in ignore if k not in ENGINE_SETTINGS]
    if unknown:
        raise BenchkitError(f"unknown engine setting {unknown[0]!r} (one of "
                            f"{', '.join(ENGINE_SETTINGS)})", field="--ignore-setting")
    base_file, new_file = str(base_path), str(new_path)
    base, new = _load(base_path), _load(new_path)
    _check_models(base, new, base_file, new_file)
    keys = [k for k in ENGINE_SETTINGS if k not in ignore]
    b_idx, n_idx = _index(base, keys), _index(new, keys)
    pairs, unmatched = [], []
    for key, brow in b_idx.items():
        nrow = n_idx.get(key)
        if nrow is None:
            unmatched.append(_unmatched("base", brow, key, n_idx, keys))
            continue
        problem = _not_ok(brow, nrow)
        if problem:
            unmatched.append(Unmatched("base", brow["model_name"], brow["test"],
                                       _settings_text(key[2]), problem))
            continue
        pairs.append(_pair(brow, nrow, key, stat, test, alpha, min_change, ignore))
    for key, nrow in n_idx.items():
        if key not in b_idx:
            unmatched.append(_unmatched("new", nrow, key, b_idx, keys))
    return Comparison(base_file=base_file, new_file=new_file, stat=stat, test=test,
                      alpha=alpha, min_change=min_change, pairs=pairs, unmatched=unmatched,
                      notes=_notes(base, new, ignore) + _sample_notes(pairs))


def _not_ok(brow: Any, nrow: Any) -> str | None:
    for side, row in (("BASE", brow), ("NEW", nrow)):
        if row["status"] != "ok":
            return f"failed in {side}: {_clean(row.get('error')) or 'no error recorded'}"
    return None


def _pair(brow: Any, nrow: Any, key: tuple, stat: str, test: str, alpha: float,
          min_change: float, ignore: Sequence[str]) -> Pair:
    b, n = _side(brow, stat), _side(nrow, stat)
    ratio = n.center / b.center if b.center else float("nan")
    change = (ratio - 1) * 100
    sampled = b.samples and n.samples
    p = pvalue(b.values, n.values, test) if sampled else None
    differing = {k: [_clean(brow.get(k)), _clean(nrow.get(k))] for k in ignore
                 if str(_clean(brow.get(k))) != str(_clean(nrow.get(k)))}
    return Pair(model=brow["model_name"], test=brow["test"], settings=dict(key[2]),
                base=b, new=n, ratio=ratio, change_pct=change, pvalue=p,
                verdict=verdict(change, p, alpha, min_change) if sampled else "no samples",
                differing=differing,
                serve=compare_figures(brow, nrow))


def _unmatched(side: str, row: Any, key: tuple, other: dict[tuple, Any],
               keys: Sequence[str]) -> Unmatched:
    """Explain why a case has no counterpart: other model, other test or other settings."""
    model, test, settings = key
    other_name = "NEW" if side == "base" else "BASE"
    same_model = [k for k in other if k[0] == model]
    same_test = [k for k in same_model if k[1] == test]
    if not same_model:
        reason = f"model file not measured in {other_name} (other sha256)"
    elif not same_test:
        reason = f"test {test} not measured in {other_name}"
    else:
        mine = dict(settings)
        diffs = sorted({k for o in same_test for k, v in o[2] if str(mine.get(k)) != str(v)})
        shown = "; ".join(f"{k} {mine.get(k)} vs {', '.join(sorted({str(dict(o[2]).get(k)) for o in same_test}))}"
                          for k in diffs)
        reason = (f"engine settings differ ({shown}); to compare them anyway pass "
                  + " ".join(f"--ignore-setting {k}" for k in diffs))
    return Unmatched(side, row["model_name"], test, _settings_text(settings), reason)


def _notes(base, new, ignore: Sequence[str]) -> list[str]:
    """Facts a reader needs before trusting the ratios: other machine, ignored settings."""
    notes = []
    hw = [sorted({str(_clean(r.get("env_chip_name")) or _clean(r.get("env_cpu_model")))
                  for _, r in df.iterrows()}) for df in (base, new)]
    if hw[0] != hw[1]:
        notes.append(f"BASE ran on {', '.join(hw[0])}, NEW on {', '.join(hw[1])}: "
                     "the comparison includes the change of machine")
    if ignore:
        notes.append("settings ignored when matching cases: " + ", ".join(ignore))
    return notes


def _sample_notes(pairs: list[Pair]) -> list[str]:
    """What a pair without samples on a side means, said once."""
    if all(p.base.samples and p.new.samples for p in pairs):
        return []
    return ['a case marked "no samples" holds one mean per test and no repetitions '
            "(llama-bench's csv and sql output): its figure is that mean, its spread is "
            "unknown and no test can say whether a change is real; import llama-bench's "
            "-o json or jsonl output, or run benchkit, for per-iteration figures"]


# --------------------------------------------------------------------------- output

def _figure(side: Side) -> str:
    """centre ± stdev (n=N); what is unknown said as such, never as a spread of 0."""
    if not side.samples:
        return f"{fmt_tps(side.center)} (no samples, spread unknown)"
    if side.stdev is None:
        return f"{fmt_tps(side.center)} (n={side.n}, no spread)"
    return f"{fmt_tps(side.center)} ± {fmt_tps(side.stdev)} (n={side.n})"


def _csv_float(x: float | None, digits: int = 4) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _change_text(pair: Pair) -> str:
    return f"{pair.change_pct:+.1f}%"


def _varying(c: Comparison) -> list[str]:
    """Settings that tell apart two pairs of the same test: the only ones a row must show.

    (The runner sizes n_ctx to each workload, so it differs between tests without being
    a setting anyone chose.)
    """
    out = []
    for k in ENGINE_SETTINGS:
        for test in {p.test for p in c.pairs}:
            if len({str(p.settings.get(k)) for p in c.pairs if p.test == test}) > 1:
                out.append(k)
                break
    return out


def _common(c: Comparison) -> str:
    """Settings with one value across every pair, said once under the table."""
    common = [(k, c.pairs[0].settings.get(k)) for k in ENGINE_SETTINGS
              if c.pairs and k in c.pairs[0].settings
              and len({str(p.settings.get(k)) for p in c.pairs}) == 1]
    return _settings_text(tuple(common))


def _settings_cell(pair: Pair, keys: Sequence[str] | None = None) -> str:
    """The pair's settings (only `keys` when given), then any ignored setting that changed."""
    shown = tuple((k, v) for k, v in pair.settings.items() if keys is None or k in keys)
    text = _settings_text(shown) if shown else ""
    diff = ", ".join(f"{k} {a} → {b}" for k, (a, b) in pair.differing.items())
    return "; ".join(t for t in (text, diff) if t) or "—"


def regression_text(p: Pair, fail_above: float) -> str:
    """One stderr line per regression that fails a --fail-above check."""
    from benchkit.core.textsafe import terminal

    return terminal(
        f"regression: {p.model} {p.test} ({_settings_text(tuple(p.settings.items()))}) "
        f"{p.change_pct:+.1f}% on {len(p.new.values)} vs {len(p.base.values)} iterations "
        f"(p {_p_text(p.pvalue)}), beyond the allowed -{fail_above:g}%", one_line=True)


def legend(c: Comparison) -> str:
    """What the figures are, printed under every table."""
    return (f"tok/s: {c.stat} ± stdev over the timed iterations (n). Change: new ÷ base − 1 "
            f"on {c.stat}s. p: {TEST_NAMES[c.test]}, two-sided, over per-iteration tok/s; "
            f"a change is called slower/faster when p < {c.alpha:g} and it is at least "
            f"{c.min_change:g}%.")


def render(c: Comparison, fmt: str = "md") -> str:
    """The comparison as a Markdown table (with notes), CSV rows or a JSON document."""
    from benchkit.core.textsafe import terminal     # result text printed: no escape sequences

    if fmt == "json":
        return terminal(json.dumps(to_dict(c), indent=2, ensure_ascii=False) + "\n")
    if fmt == "csv":
        return terminal(_csv(c))
    if fmt != "md":
        raise BenchkitError(f"unknown format {fmt!r} (use md, csv or json)", field="--format")
    lines = [f"BASE: {c.base_file}", f"NEW:  {c.new_file}", ""]
    if c.pairs:
        lines += ["| Model | Test | Settings | Base tok/s | New tok/s | New/Base | Change "
                  "| p | Verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        varying = _varying(c)
        for p in c.pairs:
            lines.append(" | ".join([
                "", _md(p.model), p.test, _md(_settings_cell(p, varying)), _figure(p.base),
                _figure(p.new), f"{p.ratio:.3f}", _change_text(p), _p_text(p.pvalue),
                f"**{p.verdict}**" if p.verdict in ("slower", "faster") else p.verdict, ""
            ]).strip())
        lines += ["", f"Settings shared by every row: {_common(c)}.", legend(c)]
        lines += _serve_lines(c)
    else:
        lines.append("No case of BASE matches a case of NEW.")
    if c.unmatched:
        lines += ["", "Not compared:"]
        lines += [f"- {u.side.upper()} {u.model} {u.test} ({u.settings}): {u.reason}"
                  for u in c.unmatched]
    if c.notes:
        lines += [""] + [f"Note: {n}" for n in c.notes]
    return terminal("\n".join(lines) + "\n")


def _serve_lines(c: Comparison) -> list[str]:
    """Serve levels also compare on what a served user sees: output tok/s of the level
    and p99 time to first token (one figure per level each: changes, no test)."""
    rows = [p for p in c.pairs if p.serve]
    if not rows:
        return []
    lines = ["", "| Model | Test | Settings | Output tok/s base → new | Change | p99 TTFT "
             "base → new | Change |", "|---|---|---|---|---|---|---|"]
    for p in rows:
        s = p.serve
        lines.append(" | ".join([
            "", _md(p.model), p.test, _md(_settings_cell(p, _varying(c))),
            f"{fmt_tps(s['base']['output_tps'])} → {fmt_tps(s['new']['output_tps'])}",
            _pct(s["output_tps_change_pct"]),
            f"{fmt_ms(s['base']['ttft_p99_s'])} → {fmt_ms(s['new']['ttft_p99_s'])}",
            _pct(s["ttft_p99_s_change_pct"]), ""]).strip())
    lines += _serve_extra_lines(c, rows)
    return lines + ["", "Serve levels: output tok/s is every output token of the level over "
                    "its wall time, p99 TTFT the 99th percentile of time to first token; "
                    "one figure per level, so no significance test applies (the table "
                    "above tests per-request tok/s)."]


def _serve_extra_lines(c: Comparison, rows: list[Any]) -> list[str]:
    """Prefix-cache hit rate, draft acceptance, the SLO search's answer and speculative
    decoding's speedup, base → new,
    for the levels that have them (workloads.serve.workload.SHOWN)."""
    from benchkit.workloads.serve.workload import SHOWN

    have = [p for p in rows if any(p.serve[side].get(k) is not None
                                   for side in ("base", "new") for k in SHOWN)]
    if not have:
        return []

    def cell(v: Any) -> str:
        return "—" if v is None else f"{v:.3g}"

    out = ["", "| Model | Test | Cache hit rate base → new | Draft acceptance base → new | "
           "SLO max load base → new | Speculative speedup base → new |",
           "|---|---|---|---|---|---|"]
    for p in have:
        b, n = p.serve["base"], p.serve["new"]
        out.append(" | ".join(["", _md(p.model), p.test] + [
            f"{cell(b.get(k))} → {cell(n.get(k))}" for k in SHOWN] + [""]).strip())
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1f}%"


def _md(text: str) -> str:
    from benchkit.core.textsafe import md_cell

    return md_cell(text)


def _csv(c: Comparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "test", "settings", "stat", "base_tps", "base_stdev", "base_n",
                "new_tps", "new_stdev", "new_n", "ratio", "change_pct", "pvalue", "verdict",
                "reason"])
    for p in c.pairs:
        w.writerow([p.model, p.test, _settings_cell(p), c.stat, _csv_float(p.base.center),
                    _csv_float(p.base.stdev), p.base.n if p.base.samples else "",
                    _csv_float(p.new.center), _csv_float(p.new.stdev),
                    p.new.n if p.new.samples else "", f"{p.ratio:.5f}", f"{p.change_pct:.3f}",
                    "" if p.pvalue is None else f"{p.pvalue:.6g}", p.verdict, ""])
    for u in c.unmatched:
        w.writerow([u.model, u.test, u.settings, c.stat, "", "", "", "", "", "", "", "", "",
                    f"not compared ({u.side} only)", u.reason])
    return buf.getvalue()


def to_dict(c: Comparison) -> dict[str, Any]:
    """A JSON-ready document: settings of the comparison, pairs, unmatched cases, notes."""
    doc = asdict(c)
    doc["test_name"] = TEST_NAMES[c.test]
    for pair in doc["pairs"]:
        for side in ("base", "new"):
            pair[side]["n"] = len(pair[side]["values"])
            if isinstance(pair[side]["center"], float) and math.isnan(pair[side]["center"]):
                pair[side]["center"] = None
        for k in ("ratio", "change_pct"):
            if isinstance(pair[k], float) and math.isnan(pair[k]):
                pair[k] = None
    return doc

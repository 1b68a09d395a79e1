"""serve: a server under load, many streaming requests at once, timed on the client.

```yaml
- serve:
    concurrency: [1, 2, 4, 8]    # closed loop: this many in flight (a list sweeps); or
    # rate: [1, 2, 4]            # open loop: requests per second, Poisson arrivals (seeded)
    requests: 64                 # per level (or duration: 60s)
    prompt_tokens: 256           # synthetic prompts of this length, or prompts: FILE.jsonl
    max_tokens: 128
    slo: {ttft_ms: 500, tpot_ms: 50}   # optional: goodput counts requests meeting both
```

Each level is its own case (test `serve-c8`, `serve-r4`), run by `benchkit.workloads.serve.loadgen`
against the endpoint of an HTTP engine (`session.endpoint`). The case's iterations are its
requests, one per request, in the order they were sent: tokens = output tokens, seconds =
end-to-end latency, `ttft_s`, `token_latencies_s` = every inter-token gap, and in the
iteration's own fields the tokens in, the error kind (None when it succeeded), the send
time from the level's start, the level's wall time (`level_s`) and the API. The suite's
`warmup` is the number of warmup requests (discarded) before each level (`auto`: one per
request in flight); its `iterations` does not apply (a level's requests are its
iterations).

Summary figures (see `serve_summary`): percentiles of TTFT, TPOT, ITL and end-to-end
latency over the requests that succeeded, requests/s and output/input tok/s over the
level's wall time, the error rate and counts, and goodput where an SLO is set. A level
whose requests were not served alike gets a warning (see `level_warnings`), as pp / tg
cases do for a high spread of their iterations.

`prompts: FILE.jsonl` is read when the suite is: a relative path from the suite file's
folder, a regular file of at most 16 MiB (`benchkit.core.safeio.MAX_PROMPTS_BYTES`).

Prompt lengths: `prompt_tokens` is exact on llama-server (the prompts are token ids cut
from one text its /tokenize encoded); on OpenAI-compatible and Ollama servers it is a text
of that many common words (about one token each), and the tokens in recorded are the
server's own count where it reports one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from benchkit.core.errors import BenchkitError
from benchkit.core.stats import percentile
from benchkit.core.units import fmt_ms, fmt_tps
from benchkit.workloads.base import SuiteSpot, Workload

SUITE_KEYS = ("serve",)
DEFAULTS = {"requests": 64, "prompt_tokens": 256, "max_tokens": 128, "timeout": 300,
            "stall_timeout": 30, "ignore_eos": True, "temperature": 0.8, "seed": 42,
            "max_in_flight": 1024}
DURATION_POOL = 256        # distinct prompts cycled through in duration mode

_POS_INT = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_SECONDS = {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                      {"type": "string",
                       "pattern": r"^\s*(?=[\d.]*[1-9])\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"}],
            "x-error": "must be a duration: seconds (> 0) or a text like 90s, 2m, 1h"}


def _list_of(one: dict[str, Any], error: str) -> dict[str, Any]:
    one = {**one, "x-error": error}
    return {"anyOf": [one, {"type": "array", "minItems": 1, "items": one}],
            "x-error": f"{error} (or a non-empty list of them to sweep)"}


SCHEMA = {
    "serve": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "concurrency": _list_of(_POS_INT, "must be an integer >= 1: requests in flight"),
            "rate": _list_of({"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
                             "must be a number > 0: requests per second"),
            "requests": {**_POS_INT, "x-error": "must be an integer >= 1: requests per level"},
            "duration": _SECONDS,
            "prompt_tokens": {**_POS_INT, "x-error": "must be an integer >= 1: prompt length"},
            "prompts": {"type": "string", "minLength": 1,
                        "x-error": "must be the path of a JSON-lines file, one prompt a line"},
            "max_tokens": {**_POS_INT, "x-error": "must be an integer >= 1: tokens to generate"},
            "slo": {"type": "object", "additionalProperties": False, "minProperties": 1,
                    "properties": {
                        "ttft_ms": {"type": "number", "exclusiveMinimum": 0,
                                    "x-error": "must be a number > 0 (milliseconds)"},
                        "tpot_ms": {"type": "number", "exclusiveMinimum": 0,
                                    "x-error": "must be a number > 0 (milliseconds)"}},
                    "x-error": "must be a mapping with ttft_ms: and/or tpot_ms:"},
            "endpoint": {"enum": ["native", "completions", "chat"],
                         "x-error": "must be native (the server's own API), completions "
                                    "or chat (its OpenAI-compatible ones)"},
            "timeout": _SECONDS,
            "stall_timeout": _SECONDS,
            "ignore_eos": {"type": "boolean", "x-error": "must be true or false"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 100,
                            "x-error": "must be a number >= 0"},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1,
                     "x-error": "must be a non-negative integer"},
            "max_in_flight": {**_POS_INT,
                              "x-error": "must be an integer >= 1 (open loop's pool size)"},
        },
        "allOf": [
            {"not": {"required": ["concurrency", "rate"]},
             "x-error": "give concurrency (closed loop) or rate (open loop), not both"},
            {"anyOf": [{"required": ["concurrency"]}, {"required": ["rate"]}],
             "x-error": "needs concurrency: (requests in flight) or rate: (requests per "
                        "second)"},
            {"not": {"required": ["requests", "duration"]},
             "x-error": "give requests or duration per level, not both"},
            {"not": {"required": ["prompt_tokens", "prompts"]},
             "x-error": "give prompt_tokens (synthetic prompts) or prompts (a file), not both"},
        ],
        "x-error": "must be a mapping with concurrency: or rate:, requests:, max_tokens:",
    },
}


@dataclass(frozen=True)
class ServeWorkload(Workload):
    """One load level against an HTTP engine's server."""

    concurrency: int | None = None
    rate: float | None = None
    requests: int | None = 64
    duration_s: float | None = None
    prompt_tokens: int | None = 256
    prompts_file: str | None = None
    prompts: tuple[tuple[str, int | None], ...] = field(default=(), repr=False)
    prompts_sha256: str | None = None
    max_tokens: int = 128
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    endpoint: str = "native"
    timeout_s: float = 300.0
    stall_s: float = 30.0
    ignore_eos: bool = True
    temperature: float = 0.8
    seed: int = 42
    max_in_flight: int = 1024

    kind = "serve"

    @property
    def test(self) -> str:
        return f"serve-c{self.concurrency}" if self.concurrency else f"serve-r{self.rate:g}"

    @property
    def n_prompt(self) -> int:
        return self.prompt_tokens or 0

    @property
    def n_gen(self) -> int:
        return self.max_tokens

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            **super().to_dict(), "concurrency": self.concurrency, "rate": self.rate,
            "requests": self.requests, "duration_s": self.duration_s,
            "prompt_tokens": self.prompt_tokens, "max_tokens": self.max_tokens,
            "endpoint": self.endpoint, "timeout_s": self.timeout_s,
            "stall_timeout_s": self.stall_s, "ignore_eos": self.ignore_eos,
            "temperature": self.temperature, "seed": self.seed,
            "slo": self.slo(), "percentiles": PERCENTILE_METHOD,
        }
        if self.prompts_file:
            d["prompts"] = {"file": self.prompts_file, "count": len(self.prompts),
                            "sha256": self.prompts_sha256}
        return d

    def slo(self) -> dict[str, float] | None:
        slo = {k: v for k, v in (("ttft_ms", self.slo_ttft_ms), ("tpot_ms", self.slo_tpot_ms))
               if v is not None}
        return slo or None

    def load_spec(self, warmup: int) -> Any:
        from benchkit.workloads.serve.loadgen import LoadSpec

        return LoadSpec(concurrency=self.concurrency, rate=self.rate, requests=self.requests,
                        duration_s=self.duration_s, warmup=warmup, max_tokens=self.max_tokens,
                        ignore_eos=self.ignore_eos, temperature=self.temperature,
                        seed=self.seed, timeout_s=self.timeout_s, stall_s=self.stall_s,
                        max_in_flight=self.max_in_flight)

    def measure(self, session: Any, plan: Any) -> list[Any]:
        """Run this level against the session's server; one Iteration per timed request.

        The requests are handed to `plan.on_iteration` once the level has drained (not
        while it runs: the runner's recording must not compete with the streams for this
        process), then returned. When any request failed, a BenchkitError says how many,
        of which kind and the first reason: the case is recorded as failed and keeps every
        request it measured (the runner keeps the iterations it was told of).
        """
        from benchkit.workloads.serve import loadgen

        endpoint = getattr(session, "endpoint", None)
        if endpoint is None:
            raise BenchkitError("serve needs an HTTP engine (llama-server, openai, ollama): "
                                "this engine has no server endpoint")
        target = loadgen.target_of(endpoint, self.endpoint)
        spec = self.load_spec(self.warmup_requests(plan.warmup))
        if getattr(getattr(session, "options", None), "extensions", True) is False:
            spec = dataclasses.replace(spec, ignore_eos=False)  # a server refusing extra fields
        result = loadgen.run_level(target, self.build_prompts(target, spec), spec)
        api = f"{target.protocol} POST {urlsplit(target.url).path}"
        iterations = [iteration_of(rec, result.wall_s, api) for rec in result.records]
        warm = [iteration_of(rec, result.wall_s, api) for rec in result.warmup]
        session.warmups_used = len(warm)
        session.first_iteration = warm[0] if warm else (iterations[0] if iterations else None)
        for it in iterations:
            plan.on_iteration(it)
        _check_outcome(self, result)
        return iterations

    def warmup_requests(self, warmup: int | str) -> int:
        """The suite's warmup as a number of requests; `auto` is one round of the level
        (its concurrency; one request for a rate)."""
        if warmup == "auto":
            return self.concurrency or 1
        return int(warmup)

    def build_prompts(self, target: Any, spec: Any) -> list[Any]:
        """The prompts of the level and its warmups (distinct, so no request reuses
        another's cache); token ids where llama-server can tokenize them."""
        from benchkit.workloads.serve import loadgen

        if self.prompts:
            return [loadgen.Prompt(text=t, max_tokens=n) for t, n in self.prompts]
        count = (spec.requests or DURATION_POOL) + spec.warmup
        n = self.prompt_tokens or DEFAULTS["prompt_tokens"]
        if target.base_url and target.protocol in ("llama-server", "openai-completions"):
            return loadgen.token_prompts(target.base_url, n, count, self.seed)
        return [loadgen.Prompt(text=t) for t in loadgen.synthetic_texts(n, count, self.seed)]

    def summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        out = serve_summary(iterations, self.slo_ttft_ms, self.slo_tpot_ms)
        return {"concurrency": self.concurrency, "rate": self.rate, **out}

    # What the runner asks of a workload that has its own view of spread and progress.

    def spread_warnings(self, case: dict[str, Any]) -> list[str]:
        """The level's warnings (`level_warnings`), in place of the per-iteration tok/s
        checks: its iterations are concurrent requests, not repetitions of one test (a
        level of which some requests failed has them too)."""
        return level_warnings(case["summary"])

    def progress_total(self, warmup: int, iterations: int) -> int | None:  # noqa: ARG002
        """Steps of the progress bar: the level's requests (warmup requests are not
        reported one by one); None (unknown) for a `duration:` level."""
        return self.requests

    def progress_text(self, summary: dict[str, Any]) -> str:
        """The level in one line, for a run's progress without a bar."""
        return (f"output {fmt_tps(summary.get('output_tps'))} tok/s, TTFT p50 "
                f"{fmt_ms(summary.get('ttft_p50_s'))}, p99 {fmt_ms(summary.get('ttft_p99_s'))} "
                f"({summary.get('requests_ok') or 0} of {summary.get('requests') or 0} "
                "requests ok)")


def _check_outcome(w: ServeWorkload, result: Any) -> None:
    """One line naming how many requests failed, of which kind, and the first reason."""
    bad = [r for r in result.records if r.error]
    warm_bad = [r for r in result.warmup if r.error]
    if not bad:
        return
    counts = ", ".join(f"{k} {n}" for k, n in result.errors().items())
    first = bad[0]
    where = "every" if len(bad) == len(result.records) else f"{len(bad)} of"
    note = f" (and {len(warm_bad)} of {len(result.warmup)} warmups)" if warm_bad else ""
    raise BenchkitError(f"{w.test}: {where} {len(result.records)} requests failed{note}: "
                        f"{counts}; first: {first.detail or first.error}")


def iteration_of(rec: Any, wall_s: float, api: str | None = None) -> Any:
    """A request as the case's Iteration: its own figures, the level's wall time and the
    API it went to ("llama-server POST /completion")."""
    from benchkit.engines.base import CLOCK_CLIENT, Iteration

    return Iteration(
        tokens=rec.tokens_out, seconds=rec.e2e_s, clock=CLOCK_CLIENT, ttft_s=rec.ttft_s,
        token_latencies_s=rec.gaps_s(),
        extra={"request": rec.index, "tokens_in": rec.tokens_in,
               "tokens_source": rec.tokens_source, "error": rec.error,
               "error_detail": rec.detail, "status_code": rec.status_code,
               "retries": rec.retries,
               "start_s": rec.start_s, "scheduled_s": rec.scheduled_s, "level_s": wall_s,
               "api": api})


# --------------------------------------------------------------------------- summary

PERCENTILE_METHOD = ("linear interpolation between closest ranks (Hyndman-Fan type 7, "
                     "numpy's default)")


def tpot_of(it: dict[str, Any]) -> float | None:
    """Time per output token after the first: (e2e - ttft) / (output tokens - 1)."""
    ttft, n = it.get("ttft_s"), int(it.get("tokens") or 0)
    if ttft is None or n < 2:
        return None
    return (float(it["seconds"]) - float(ttft)) / (n - 1)


def level_seconds(iterations: list[dict[str, Any]]) -> float | None:
    """The level's wall time: recorded with each request, else first send to last end."""
    recorded = [float(it["level_s"]) for it in iterations if it.get("level_s")]
    if recorded:
        return max(recorded)
    spans = [(float(it.get("start_s") or 0.0), float(it.get("start_s") or 0.0)
              + float(it["seconds"])) for it in iterations]
    return (max(e for _, e in spans) - min(s for s, _ in spans)) if spans else None


def serve_summary(iterations: list[dict[str, Any]], slo_ttft_ms: float | None = None,
                  slo_tpot_ms: float | None = None) -> dict[str, Any]:
    """The level's figures from its recorded requests.

    Latency percentiles (see `percentile`) are over the requests that succeeded: TTFT
    (send -> first token), TPOT (per request, see `tpot_of`), ITL (every gap between two
    token events, all requests pooled), e2e (send -> last byte). Rates are over the
    level's wall time: requests_per_s and output_tps / input_tps count succeeded requests
    only (a failed request's tokens are not a service delivered). goodput_rps counts the
    succeeded requests meeting every SLO given (a one-token request has no TPOT and
    meets a TPOT SLO).
    """
    ok = [it for it in iterations if not it.get("error")]
    wall = level_seconds(iterations)
    ttft = [float(it["ttft_s"]) for it in ok if it.get("ttft_s") is not None]
    tpot = [t for t in (tpot_of(it) for it in ok) if t is not None]
    itl = [float(x) for it in ok for x in it.get("token_latencies_s") or []]
    e2e = [float(it["seconds"]) for it in ok]
    out_tokens = sum(int(it.get("tokens") or 0) for it in ok)
    known_in = [int(it["tokens_in"]) for it in ok if it.get("tokens_in") is not None]
    errors: dict[str, int] = {}
    for it in iterations:
        if it.get("error"):
            errors[it["error"]] = errors.get(it["error"], 0) + 1

    def rate(x: float | int | None) -> float | None:
        return x / wall if x is not None and wall else None

    out: dict[str, Any] = {
        "requests": len(iterations), "requests_ok": len(ok), "level_s": wall,
        "output_tokens": out_tokens, "input_tokens": sum(known_in) if known_in else None,
        "requests_per_s": rate(len(ok)), "output_tps": rate(out_tokens),
        "input_tps": rate(sum(known_in)) if known_in else None,
        "error_rate": (len(iterations) - len(ok)) / len(iterations) if iterations else None,
        "errors": dict(sorted(errors.items())),
        "ttft_median_s": percentile(ttft, 50), "ttft_mean_s": _mean(ttft),
    }
    for name, values, qs in (("ttft", ttft, (50, 90, 99)), ("tpot", tpot, (50, 99)),
                             ("itl", itl, (50, 99)), ("e2e", e2e, (50, 99))):
        for q in qs:
            out[f"{name}_p{q}_s"] = percentile(values, q)
    if slo_ttft_ms is not None or slo_tpot_ms is not None:
        met = [it for it in ok if _meets(it, slo_ttft_ms, slo_tpot_ms)]
        out.update(slo={k: v for k, v in (("ttft_ms", slo_ttft_ms), ("tpot_ms", slo_tpot_ms))
                        if v is not None},
                   slo_met=len(met), goodput_rps=rate(len(met)))
    return out


def _meets(it: dict[str, Any], ttft_ms: float | None, tpot_ms: float | None) -> bool:
    if ttft_ms is not None and (it.get("ttft_s") is None or it["ttft_s"] * 1e3 > ttft_ms):
        return False
    tpot = tpot_of(it)
    return tpot_ms is None or tpot is None or tpot * 1e3 <= tpot_ms


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


TTFT_TAIL_LIMIT = 10.0     # p99 / p50 time to first token above which a level is uneven


def level_warnings(summary: dict[str, Any]) -> list[str]:
    """'uneven requests' when a level's requests were not served alike, so that its
    figures describe no typical request. The rule, in full:

    - some of its requests failed, but not all (all failing is the case's error alone):
      its figures are over the ones that succeeded only;
    - its p99 time to first token is more than TTFT_TAIL_LIMIT (10) times the median,
      over at least two requests that succeeded: a tail of requests waited far longer for
      their first token than the typical one (queued behind a full server, or stalled),
      and the level's latency is that tail's, not the median's.

    Each warning prints the figures that tripped it, so it can be judged.
    """
    out = []
    n, ok = summary.get("requests") or 0, summary.get("requests_ok") or 0
    if 0 < ok < n:
        counts = ", ".join(f"{k} {v}" for k, v in (summary.get("errors") or {}).items())
        out.append(f"uneven requests: {n - ok} of {n} failed ({counts}); the level's "
                   f"figures are over the {ok} that succeeded")
    p50, p99 = summary.get("ttft_p50_s"), summary.get("ttft_p99_s")
    if ok >= 2 and p50 and p99 is not None and p99 / p50 > TTFT_TAIL_LIMIT:
        out.append(f"uneven requests: TTFT p99 {fmt_ms(p99)} is {p99 / p50:,.0f}x the median "
                   f"{fmt_ms(p50)} over {ok} requests (limit {TTFT_TAIL_LIMIT:g}x)")
    return out


# --------------------------------------------------------------------------- parsing

def parse(entry: dict[str, Any]) -> list[Workload]:
    """An entry outside a suite file: a prompts file relative to the working folder."""
    return parse_located(entry)


def parse_located(entry: dict[str, Any], *, file: str | None = None, field: str | None = None,
                  line: int | None = None) -> list[Workload]:
    """One `serve:` entry of the suite `file` as one workload per level (concurrency or
    rate); its prompts file, relative to the suite file's folder, is read now."""
    s = {**DEFAULTS, **entry["serve"]}
    prompts, sha, prompts_file = (), None, s.get("prompts")
    if prompts_file:
        at = SuiteSpot(file, f"{field}.serve.prompts" if field else "serve.prompts", line)
        prompts, sha = read_prompts(prompts_file, at)
    if "duration" in entry["serve"]:
        s["requests"] = None
    slo = s.get("slo") or {}
    common = dict(
        requests=s["requests"], duration_s=seconds(s.get("duration"), "serve.duration"),
        prompt_tokens=None if prompts_file else s["prompt_tokens"], prompts_file=prompts_file,
        prompts=prompts, prompts_sha256=sha, max_tokens=s["max_tokens"],
        slo_ttft_ms=_float(slo.get("ttft_ms")), slo_tpot_ms=_float(slo.get("tpot_ms")),
        endpoint=s.get("endpoint", "native"),
        timeout_s=seconds(s["timeout"], "serve.timeout"),
        stall_s=seconds(s["stall_timeout"], "serve.stall_timeout"),
        ignore_eos=s["ignore_eos"], temperature=float(s["temperature"]), seed=s["seed"],
        max_in_flight=s["max_in_flight"])
    if "concurrency" in s:
        return [ServeWorkload(concurrency=int(c), **common) for c in _as_list(s["concurrency"])]
    return [ServeWorkload(rate=float(r), **common) for r in _as_list(s["rate"])]


def read_prompts(value: str, at: SuiteSpot = SuiteSpot(field="serve.prompts")
                 ) -> tuple[tuple[tuple[str, int | None], ...], str]:
    """A JSON-lines prompts file: each line a JSON string, or an object with `prompt`
    (text) and optionally `max_tokens`. Blank lines are skipped. Returns the prompts and
    the file's sha256. A missing, unreadable or too large file is one error naming the
    suite file and the field; a bad line names the prompts file and its line."""
    from benchkit.core.safeio import MAX_PROMPTS_BYTES, read_bounded_bytes

    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = at.folder / path
    where = "the suite file's folder" if at.file else "the working folder"
    try:
        data = read_bounded_bytes(path, MAX_PROMPTS_BYTES, f"prompts file {value}",
                                  missing=f"prompts file not found: {value} (a relative "
                                          f"path is read from {where})")
    except BenchkitError as exc:
        raise at.error(exc.message) from None
    shown = _shown(path)
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if line.strip():
            out.append(_prompt_line(line, shown, n))
    if not out:
        raise at.error(f"the prompts file {value} holds no prompt")
    return tuple(out), hashlib.sha256(data).hexdigest()


def _shown(path: Path) -> str:
    """A path for an error line: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _prompt_line(line: str, path: str, n: int) -> tuple[str, int | None]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise BenchkitError(f"not JSON ({exc})", file=path, line=n, field="prompt") from None
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, dict) and isinstance(value.get("prompt"), str) and value["prompt"]:
        limit = value.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise BenchkitError("must be an integer >= 1", file=path, line=n,
                                field="max_tokens")
        return value["prompt"], limit
    raise BenchkitError('each line must be a JSON string or {"prompt": "...", '
                        '"max_tokens": N}', file=path, line=n, field="prompt")


_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def seconds(value: Any, where: str) -> float | None:
    """A duration of the suite (a number of seconds, or 90s / 2m / 1h / 500ms) in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not m or not float(m.group(1)) > 0:
        raise BenchkitError(f"{value!r} is not a duration > 0 (like 90s, 2m)", field=where)
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def main_keys() -> tuple[str, ...]:
    return ("serve",)


# --------------------------------------------------------------------------- compare

COMPARED = ("output_tps", "ttft_p99_s")


def compare_figures(brow: Any, nrow: Any) -> dict[str, Any] | None:
    """For `benchkit compare`: a serve level's output tok/s and p99 TTFT on both sides and
    their change in percent (None for other workloads), from the rows' `serve_` columns
    (benchkit.results.frame: `serve_` + the case summary's key). They are one figure per level,
    so no significance test applies to them; the rows' per-request tok/s carry the test."""
    if brow.get("workload_kind") != "serve":
        return None
    from benchkit.results.frame import cell

    out: dict[str, Any] = {name: {k: cell(row.get(f"serve_{k}"))
                                  for k in (*COMPARED, "requests_ok", "requests")}
                           for name, row in (("base", brow), ("new", nrow))}
    for name in ("base", "new"):
        for k in ("requests_ok", "requests"):
            if out[name][k] is not None:
                out[name][k] = int(out[name][k])
    for k in COMPARED:
        a, b = out["base"][k], out["new"][k]
        out[f"{k}_change_pct"] = (b / a - 1) * 100 if a and b is not None else None
    return out


# --------------------------------------------------------------------------- several clients

def merge_clients(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Serve levels that several benchkit clients ran at the same time against one server,
    merged per test (serve-c8 ...): the requests of every client pooled for the latency
    percentiles, and the rates (output_tps, input_tps, requests_per_s, goodput_rps) the sum
    of each client's own rate over its own wall time. Clients on different machines share
    no clock, so no request is placed on another client's timeline; run the clients with
    `duration:` levels started together, so that their levels overlap."""
    from benchkit.results.frame import expand_paths
    from benchkit.results.io import read_run
    from benchkit.results.model import Case, Summary

    cases: dict[str, list[Case]] = {}
    for path in expand_paths(paths):
        for case in read_run(path).cases:
            if case.workload_kind == "serve" and case.iterations:
                cases.setdefault(str(case.test), []).append(case)
    out = {}
    for test, group in cases.items():
        slo = (group[0].workload or {}).get("slo") or {}
        pooled = [{**it.to_json(), "level_s": None} for c in group for it in c.iterations]
        merged = serve_summary(pooled, slo.get("ttft_ms"), slo.get("tpot_ms"))
        for key in ("output_tps", "input_tps", "requests_per_s", "goodput_rps"):
            values = [(c.summary or Summary()).get(key) for c in group]
            merged[key] = sum(values) if all(v is not None for v in values) else None
        merged["level_s"] = max((c.summary or Summary()).get("level_s") or 0 for c in group)
        merged["clients"] = len(group)
        out[test] = merged
    return out

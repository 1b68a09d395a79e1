"""serve: a server under load, many streaming requests at once, timed on the client.

```yaml
- serve:
    concurrency: [1, 2, 4, 8]    # closed loop: this many in flight (a list sweeps); or
    # rate: [1, 2, 4]            # open loop: requests per second, Poisson arrivals (seeded)
    requests: 64                 # per level, and/or duration: 60s (whichever comes first)
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

Cold prompts: unless `seed` is pinned, each level's prompts are seeded from RUN_SEED (one
per run) and the level, so no run resends an earlier one's prompts; `cache: bust` (the
default) also tells llama-server not to reuse its cache. Conversations (`sessions:`), the
server's cache figures and the warning of a warm cache: `benchkit.workloads.serve.sessions`;
the SLO search (`search:`): `benchkit.workloads.serve.search`; the server's /metrics:
`benchkit.workloads.serve.metrics`; speculative decoding's speedup (a drafted level run
again without its draft): `benchkit.workloads.serve.speculative`. A level given both
`requests` and `duration` ends at whichever comes first; its summary says which
(`ended_by`, beside `bound_requests` and `bound_duration_s`).

Prompt lengths: `prompt_tokens` is exact on llama-server (the prompts are token ids cut
from one text its /tokenize encoded); on OpenAI-compatible and Ollama servers it is a text
of that many common words (about one token each), and the tokens in recorded are the
server's own count where it reports one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit

from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC
from benchkit.core.stats import percentile
from benchkit.core.units import fmt_ms, fmt_tps
from benchkit.workloads.base import SuiteSpot, Workload
from benchkit.workloads.serve import metrics as server_metrics
from benchkit.workloads.serve import search as slo_search
from benchkit.workloads.serve import sessions as conv
from benchkit.workloads.serve import speculative
from benchkit.workloads.serve import traffic

ORDER = 30                  # place among the workloads (benchkit.workloads.modules)
SUITE_KEYS = ("serve",)
DEFAULTS = {"requests": 64, "prompt_tokens": 256, "max_tokens": 128, "timeout": 300,
            "stall_timeout": 30, "ignore_eos": True, "temperature": 0.8, "seed": None,
            "max_in_flight": 1024, "cache": "bust"}
# Prompts differ from run to run unless the suite pins `seed`: each level's seed is drawn
# from this, chosen once per run (process), and recorded with every request.
RUN_SEED = secrets.randbelow(2**31)
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
            "prompt_tokens": {"anyOf": [_POS_INT, traffic.DIST_SCHEMA],
                              "x-error": "must be an integer >= 1 (prompt length) or a "
                                         "distribution {dist:, mean:, sd:, min:, max:}"},
            "prompts": {"type": "string", "minLength": 1,
                        "x-error": "must be the path of a JSON-lines file, one prompt a line"},
            "max_tokens": {"anyOf": [_POS_INT, traffic.DIST_SCHEMA],
                           "x-error": "must be an integer >= 1 (tokens to generate) or a "
                                      "distribution {dist:, mean:, sd:, min:, max:}"},
            "slo": {"type": "object", "additionalProperties": False, "minProperties": 1,
                    "properties": {
                        "ttft_ms": {"type": "number", "exclusiveMinimum": 0,
                                    "x-error": "must be a number > 0 (milliseconds)"},
                        "tpot_ms": {"type": "number", "exclusiveMinimum": 0,
                                    "x-error": "must be a number > 0 (milliseconds)"},
                        "error_rate": {"type": "number", "minimum": 0, "maximum": 1,
                                       "x-error": "must be a fraction from 0 to 1"}},
                    "x-error": "must be a mapping with ttft_ms:, tpot_ms:, error_rate:"},
            "arrival": {"anyOf": [{"enum": ["poisson", "constant", "ramp"]},
                                  {"type": "object", "additionalProperties": False,
                                   "required": ["gamma"],
                                   "properties": {"gamma": {"type": "object",
                                                            "additionalProperties": False,
                                                            "required": ["cv"],
                                                            "properties": {"cv": {
                                                                "type": "number",
                                                                "exclusiveMinimum": 0,
                                                                "maximum": 100}}}}}],
                        "x-error": "must be poisson, constant, ramp or {gamma: {cv: N}} "
                                   "(bursty arrivals, cv > 0)"},
            "sessions": conv.SCHEMA_SESSIONS,
            "cache": conv.SCHEMA_CACHE,
            "search": slo_search.SCHEMA,
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
            "speculative_baseline": {"type": "boolean", "x-error": "must be true or false"},
            "max_in_flight": {**_POS_INT,
                              "x-error": "must be an integer >= 1 (open loop's pool size)"},
        },
        "allOf": [
            {"not": {"required": ["concurrency", "rate"]},
             "x-error": "give concurrency (closed loop) or rate (open loop), not both"},
            {"anyOf": [{"required": ["concurrency"]}, {"required": ["rate"]},
                       {"required": ["search"]}],
             "x-error": "needs concurrency: (requests in flight), rate: (requests per "
                        "second) or search:"},
            {"not": {"required": ["search", "concurrency"]},
             "x-error": "give search: or concurrency:, not both (search picks the levels)"},
            {"not": {"required": ["search", "rate"]},
             "x-error": "give search: or rate:, not both (search picks the levels)"},
            {"anyOf": [{"not": {"required": ["search"]}}, {"required": ["slo"]}],
             "x-error": "search: needs an slo: to meet"},
            {"not": {"required": ["sessions", "rate"]},
             "x-error": "sessions: run in a closed loop: give concurrency:, not rate:"},
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
    seed: int | None = None
    max_in_flight: int = 1024
    cache: str = "bust"
    turns: int | None = None
    think_time_s: float = 0.0
    shared_prefix_tokens: int = 0
    slo_error_rate: float | None = None
    search_over: str | None = None
    search_max: float | None = None
    search_start: float = 1.0
    search_levels: int = slo_search.DEFAULT_LEVELS
    arrival: str = "poisson"
    arrival_cv: float = 1.0
    prompt_lengths: traffic.Lengths | None = None     # prompt_tokens as a distribution
    max_lengths: traffic.Lengths | None = None        # max_tokens as a distribution
    speculative_baseline: bool = True     # a drafted level also runs without its draft

    kind = "serve"

    @property
    def test(self) -> str:
        if self.search_over:
            return f"serve-search-{self.search_over[0]}{self.search_max:g}"
        base = f"serve-c{self.concurrency}" if self.concurrency else f"serve-r{self.rate:g}"
        return (base + (f"-t{self.turns}" if self.turns else "")
                + ("-reuse" if self.cache == "reuse" else ""))

    def prompt_seed(self) -> int:
        """The seed of this level's prompts: the suite's `seed`, else one drawn from the
        run's own (RUN_SEED) and the level's name, so that no two runs or levels send
        the same prompts."""
        if self.seed is not None:
            return self.seed
        digest = hashlib.sha256(f"{RUN_SEED}:{self.test}:{self.concurrency}:{self.rate}"
                                .encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

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
            "slo": self.slo(), "percentiles": PERCENTILE_METHOD, "cache": self.cache,
        }
        for key, dist in (("prompt_tokens", self.prompt_lengths),
                          ("max_tokens", self.max_lengths)):
            if dist is not None:
                d[key] = dist.to_dict()
        if self.rate is not None:
            d["arrival"] = ({"gamma": {"cv": self.arrival_cv}} if self.arrival == "gamma"
                            else self.arrival)
        if self.turns:
            d["sessions"] = {"turns": self.turns, "think_time_s": self.think_time_s,
                             "shared_prefix_tokens": self.shared_prefix_tokens}
        if self.search_over:
            d["search"] = {"over": self.search_over, "max": self.search_max,
                           "start": self.search_start, "levels": self.search_levels}
        if not self.speculative_baseline:
            d["speculative_baseline"] = False
        if self.prompts_file:
            d["prompts"] = {"file": self.prompts_file, "count": len(self.prompts),
                            "sha256": self.prompts_sha256}
        return d

    def slo(self) -> dict[str, float] | None:
        slo = {k: v for k, v in (("ttft_ms", self.slo_ttft_ms), ("tpot_ms", self.slo_tpot_ms),
                                 ("error_rate", self.slo_error_rate)) if v is not None}
        return slo or None

    def load_spec(self, warmup: int) -> Any:
        from benchkit.workloads.serve.loadgen import LoadSpec

        return LoadSpec(concurrency=self.concurrency, rate=self.rate, requests=self.requests,
                        duration_s=self.duration_s, warmup=warmup, max_tokens=self.max_tokens,
                        ignore_eos=self.ignore_eos, temperature=self.temperature,
                        seed=self.prompt_seed(), timeout_s=self.timeout_s, stall_s=self.stall_s,
                        max_in_flight=self.max_in_flight, cache=self.cache,
                        turns=self.turns or 1, think_time_s=self.think_time_s,
                        arrival=self.arrival, arrival_cv=self.arrival_cv)

    def measure(self, session: Any, plan: Any) -> list[Any]:
        """Run this level against the session's server; one Iteration per timed request.

        The requests are handed to `plan.on_iteration` once the level has drained (not
        while it runs: the runner's recording must not compete with the streams for this
        process), then returned. When any request failed, a BenchkitError says how many,
        of which kind and the first reason: the case is recorded as failed and keeps every
        request it measured (the runner keeps the iterations it was told of).
        """
        if self.search_over:
            return self._search(session, plan)
        result, iterations, warm = self.run_once(session, plan.warmup)
        session.warmups_used = len(warm)
        session.first_iteration = warm[0] if warm else (iterations[0] if iterations else None)
        for it in iterations:
            plan.on_iteration(it)
        CtrlC.check()        # stopped (Ctrl-C, a time limit): its finished requests are kept
        _check_outcome(self, result)
        base = speculative.baseline(self, session, plan.warmup) if (
            self.speculative_baseline and iterations) else None
        if base is not None:
            iterations[0].extra["speculative_baseline"] = base
        CtrlC.check()        # stopped during the twin level: no baseline of part of one
        return iterations

    def run_once(self, session: Any, warmup: int | str,
                 extra: dict[str, Any] | None = None) -> tuple[Any, list[Any], list[Any]]:
        """Run this level: its LevelResult, its requests' and its warmups' Iterations."""
        from benchkit.workloads.serve import loadgen

        endpoint = getattr(session, "endpoint", None)
        if endpoint is None:
            raise BenchkitError("serve needs an HTTP engine (llama-server, openai, ollama): "
                                "this engine has no server endpoint")
        target = loadgen.target_of(endpoint, self.endpoint)
        spec = self.load_spec(self.warmup_requests(warmup))
        if getattr(getattr(session, "options", None), "extensions", True) is False:
            spec = dataclasses.replace(spec, ignore_eos=False)  # a server refusing extra fields
        talks = ()
        if self.turns:
            sessions = -(-(spec.requests or DURATION_POOL) // self.turns)
            talks = (conv.from_file(self.prompts, sessions, self.turns) if self.prompts else
                     conv.conversations(sessions, self.turns, self.n_prompt or 16,
                                        self.shared_prefix_tokens, spec.seed))
            spec = dataclasses.replace(spec, requests=None if spec.requests is None
                                       else sessions * self.turns)
        url, scraped = server_metrics.metrics_url(endpoint), []
        sampler = server_metrics.Sampler(url)
        prompts = self.build_prompts(target, spec)
        try:
            result = loadgen.run_level(target, prompts, spec, conversations=talks,
                                       before_level=lambda: scraped.append(
                                           (server_metrics.scrape(url), sampler.start())))
        finally:
            during = sampler.finish()     # the thread ends with the level, however it ends
        scraped = [s for s, _ in scraped] + [server_metrics.scrape(url)]
        api = f"{target.protocol} POST {urlsplit(target.url).path}"
        extra = {"prompt_seed": spec.seed, "cache": self.cache, **(extra or {})}
        if result.interrupted:         # the requests the stop cut off were not measured
            result = dataclasses.replace(result, records=[r for r in result.records
                                                          if not r.interrupted])
        iterations = [iteration_of(rec, result.wall_s, api, extra) for rec in result.records]
        if self.prompt_lengths or self.max_lengths:      # the lengths drawn, per request
            for rec, it in zip(result.records, iterations):
                sent = prompts[rec.index % len(prompts)]
                it.extra.update(prompt_tokens_planned=sent.tokens_planned,
                                max_tokens_planned=sent.max_tokens)
        if iterations:                          # the level's, once: on its first request
            iterations[0].extra["ended_by"] = result.ended_by
        if iterations and len(scraped) == 2:
            iterations[0].extra["server_metrics"] = {**server_metrics.level_figures(*scraped),
                                                     **during}
        warm = [iteration_of(rec, result.wall_s, api, extra) for rec in result.warmup]
        return result, iterations, warm

    def _search(self, session: Any, plan: Any) -> list[Any]:
        """The SLO search (benchkit.workloads.serve.search): levels one after another,
        each request recorded with its level's load (`load`)."""
        over, tried, out = self.search_over or "concurrency", [], []
        while True:
            load = slo_search.next_load(tried, over, self.search_start,
                                        float(self.search_max or 1), self.search_levels)
            if load is None:
                break
            level = dataclasses.replace(self, search_over=None, **(
                {"concurrency": int(load), "rate": None} if over == "concurrency"
                else {"rate": load, "concurrency": None}))
            _, its, warm = level.run_once(session, plan.warmup, {"load": load})
            if not out:
                session.warmups_used = len(warm)
                session.first_iteration = warm[0] if warm else (its[0] if its else None)
            for it in its:
                plan.on_iteration(it)
            CtrlC.check()
            out += its
            ok, _ = slo_search.verdict(level.level_summary([i.to_dict() for i in its]),
                                       self.slo() or {})
            tried.append((load, ok))
        return out

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

        if self.prompts and not self.turns:
            return [loadgen.Prompt(text=t, max_tokens=n) if isinstance(t, str) else
                    loadgen.Prompt(messages=t, max_tokens=n) for t, n in self.prompts]
        count = min((spec.requests or DURATION_POOL) + spec.warmup, loadgen.MAX_PROMPT_POOL)
        n = self.prompt_tokens or DEFAULTS["prompt_tokens"]
        if self.turns:         # conversations are their own; these are the warmups
            count = max(spec.warmup, 1)
        elif self.prompt_lengths or self.max_lengths:
            return self._drawn_prompts(target, spec, count)
        elif target.base_url and target.protocol in ("llama-server", "openai-completions"):
            return loadgen.token_prompts(target.base_url, n, count, spec.seed)
        return [loadgen.Prompt(text=t) for t in loadgen.synthetic_texts(n, count, spec.seed)]

    def _drawn_prompts(self, target: Any, spec: Any, count: int) -> list[Any]:
        """Prompts whose lengths (and limits) are drawn from the suite's distributions:
        cut from prompts of the longest length drawn."""
        from benchkit.workloads.serve import loadgen

        n = self.prompt_tokens or DEFAULTS["prompt_tokens"]
        lengths = (self.prompt_lengths.draw(count, spec.seed) if self.prompt_lengths
                   else [n] * count)
        limits = (self.max_lengths.draw(count, spec.seed + 1) if self.max_lengths
                  else [None] * count)
        longest = max(lengths)
        if target.base_url and target.protocol in ("llama-server", "openai-completions"):
            full = loadgen.token_prompts(target.base_url, longest, count, spec.seed)
            return [loadgen.Prompt(token_ids=p.token_ids[:k] if p.token_ids else None,
                                   max_tokens=m, tokens_planned=k)
                    for p, k, m in zip(full, lengths, limits)]
        texts = loadgen.synthetic_texts(longest, count, spec.seed)
        return [loadgen.Prompt(text=" ".join(t.split()[:k]), max_tokens=m, tokens_planned=k)
                for t, k, m in zip(texts, lengths, limits)]

    def level_summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        """One level's figures: serve_summary's, and the server's cache, speculative
        decoding and reasoning figures (benchkit.workloads.serve.sessions)."""
        out = serve_summary(iterations, self.slo_ttft_ms, self.slo_tpot_ms)
        out.update(conv.cache_figures([it for it in iterations if not it.get("error")]),
                   cache=self.cache)
        scraped = next((it["server_metrics"] for it in iterations
                        if isinstance(it.get("server_metrics"), dict)), None)
        if scraped:
            out.update(scraped)
            if out.get("cache_hit_rate") is None and "server_prefix_cache_hit_rate" in scraped:
                out["cache_hit_rate"] = scraped["server_prefix_cache_hit_rate"]
                out["cache_hit_rate_source"] = "server /metrics (prefix cache hits / queries)"
        first = iterations[0] if iterations else {}
        out.update(speculative.speedup_figures(out, first.get("speculative_baseline")),
                   ended_by=first.get("ended_by"), bound_requests=self.requests,
                   bound_duration_s=self.duration_s)
        seeds = {it.get("prompt_seed") for it in iterations} - {None}
        if seeds:
            out["prompt_seed"] = min(seeds)
        return out

    def summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.search_over:
            return {"concurrency": self.concurrency, "rate": self.rate,
                    **self.level_summary(iterations)}
        groups: dict[float, list[dict[str, Any]]] = {}
        for it in iterations:
            groups.setdefault(float(it.get("load") or 0), []).append(it)
        levels = [(load, self.level_summary(its)) for load, its in groups.items()]
        found = slo_search.search_summary(levels, self.slo() or {}, self.search_over)
        answer = found["slo_max_load"]
        head = next((s for load, s in levels if answer is not None and load == answer),
                    levels[-1][1] if levels else serve_summary([]))
        over = self.search_over
        return {"concurrency": answer if over == "concurrency" else None,
                "rate": answer if over == "rate" else None, **head, **found}

    # What the runner asks of a workload that has its own view of spread and progress.

    def spread_warnings(self, case: dict[str, Any]) -> list[str]:
        """The level's warnings (`level_warnings`), in place of the per-iteration tok/s
        checks: its iterations are concurrent requests, not repetitions of one test (a
        level of which some requests failed has them too)."""
        return level_warnings(case["summary"]) + conv.cache_warnings(case["summary"])

    def progress_total(self, warmup: int, iterations: int) -> int | None:  # noqa: ARG002
        """Steps of the progress bar: the level's requests (warmup requests are not
        reported one by one); None (unknown) for a `duration:` level or a search."""
        return None if self.search_over else self.requests

    def progress_of(self, done: int, iterations: int) -> str:  # noqa: ARG002
        """A level stopped early: its finished requests, of the level's own count."""
        if self.requests is not None and not self.search_over:
            return f"{done} of {self.requests} requests"
        level = f"{self.duration_s:g} s level" if self.duration_s else "search"
        return f"{done} requests of a {level}"

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


def iteration_of(rec: Any, wall_s: float, api: str | None = None,
                 extra: dict[str, Any] | None = None) -> Any:
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
               "api": api, **{k: getattr(rec, k) for k in _SERVER_FIELDS
                              if getattr(rec, k) is not None},
               **(extra or {})})


# a request's own figures recorded when known (benchkit.workloads.serve.loadgen.RequestRecord)
_SERVER_FIELDS = ("session", "turn", "think_s", "cache_n", "prompt_n", "draft_n",
                  "draft_accepted", "ttft_answer_s", "reasoning_tokens")


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
        prompts, sha = traffic.read_prompts(prompts_file, at)
    if "duration" in entry["serve"] and "requests" not in entry["serve"]:
        s["requests"] = None
    slo = s.get("slo") or {}
    where = f"{field}.serve" if field else "serve"
    try:
        prompt_lengths = traffic.lengths_of(s.get("prompt_tokens"), f"{where}.prompt_tokens")
        max_lengths = traffic.lengths_of(s.get("max_tokens"), f"{where}.max_tokens")
    except BenchkitError as exc:
        raise SuiteSpot(file, exc.field, line).error(exc.message) from None
    if prompt_lengths:
        s["prompt_tokens"] = prompt_lengths.typical
    if max_lengths:
        s["max_tokens"] = max_lengths.typical
    common = dict(
        prompt_lengths=prompt_lengths, max_lengths=max_lengths,
        requests=s["requests"], duration_s=seconds(s.get("duration"), "serve.duration"),
        prompt_tokens=None if prompts_file else s["prompt_tokens"], prompts_file=prompts_file,
        prompts=prompts, prompts_sha256=sha, max_tokens=s["max_tokens"],
        slo_ttft_ms=_float(slo.get("ttft_ms")), slo_tpot_ms=_float(slo.get("tpot_ms")),
        endpoint=s.get("endpoint", "native"),
        timeout_s=seconds(s["timeout"], "serve.timeout"),
        stall_s=seconds(s["stall_timeout"], "serve.stall_timeout"),
        ignore_eos=s["ignore_eos"], temperature=float(s["temperature"]), seed=s["seed"],
        max_in_flight=s["max_in_flight"], cache=s["cache"],
        speculative_baseline=bool(s.get("speculative_baseline", True)),
        slo_error_rate=_float(slo.get("error_rate")))
    arrival = s.get("arrival", "poisson")
    if isinstance(arrival, dict):
        common.update(arrival="gamma", arrival_cv=float(arrival["gamma"]["cv"]))
    else:
        common.update(arrival=arrival)
    talk = s.get("sessions")
    if talk:
        common.update(turns=int(talk["turns"]), think_time_s=float(talk.get("think_time_s", 0)),
                      shared_prefix_tokens=int(talk.get("shared_prefix_tokens", 0)))
    from benchkit.workloads.serve.loadgen import check_bounds

    check_bounds([float(r) for r in _as_list(s.get("rate") or [])], common["timeout_s"],
                 common.get("turns"), common.get("requests"), SuiteSpot(file, where, line))
    if s.get("search"):
        found = s["search"]
        return [ServeWorkload(search_over=found["over"], search_max=float(found["max"]),
                              search_start=float(found.get("start", 1)),
                              search_levels=int(found.get("levels",
                                                          slo_search.DEFAULT_LEVELS)),
                              concurrency=None, **common)]
    if "concurrency" in s:
        return [ServeWorkload(concurrency=int(c), **common) for c in _as_list(s["concurrency"])]
    return [ServeWorkload(rate=float(r), **common) for r in _as_list(s["rate"])]


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
# figures of some levels only (conversations, a draft model, an SLO search): shown base ->
# new where either side has them, without a change in percent (a rate, or a load found)
SHOWN = ("cache_hit_rate", "draft_acceptance", "slo_max_load", "speculative_speedup")


def compare_figures(brow: Any, nrow: Any) -> dict[str, Any] | None:
    """For `benchkit compare`: a serve level's output tok/s and p99 TTFT on both sides and
    their change in percent (None for other workloads), from the rows' `serve_` columns
    (benchkit.results.frame: `serve_` + the case summary's key). They are one figure per level,
    so no significance test applies to them; the rows' per-request tok/s carry the test."""
    if brow.get("workload_kind") != "serve":
        return None
    from benchkit.results.frame import cell

    out: dict[str, Any] = {name: {k: cell(row.get(f"serve_{k}"))
                                  for k in (*COMPARED, *SHOWN, "requests_ok", "requests")}
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

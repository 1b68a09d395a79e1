"""Serving like real users: cold prompts run after run, conversations and the prefix
cache, the SLO search, speculative decoding and reasoning streams.

Against the real llama-server (the build of `benchkit engines build`) on SmolLM2, 2 slots,
one thread, on loopback; request counts of a few, tokens of a few: the figures are
checked against what the server says and against each other, never against a time.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.engines.base import Endpoint, Plan
from benchkit.workloads.serve import search as slo_search
from benchkit.workloads.serve import workload as serve

from http_fakes import OpenAIFake

READY_S = 120.0


def _start(argv: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from benchkit.engines.http.client import free_port

    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([*argv, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + READY_S
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"llama-server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=2, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    proc.wait(30)
    pytest.fail(f"llama-server did not answer {url}/health within {READY_S:g} s")


@pytest.fixture(scope="module")
def server(smollm2_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama-server with 2 slots and /metrics on SmolLM2, kept up for the module."""
    from benchkit.engines.llama_cpp.build import find_tool

    binary = find_tool("llama-server")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc, url = _start([str(binary), "-m", str(smollm2_model), "-np", "2", "-c", "4096",
                        "-t", "1", "--metrics"], log)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _session(url: str, api: str = "llama-server", openai_url: str | None = None) -> Any:
    return SimpleNamespace(endpoint=Endpoint(url, api, None, openai_url))


def _level(text: str, session: Any) -> tuple[serve.ServeWorkload, dict[str, Any], list[dict]]:
    import yaml

    (w,) = serve.parse({"serve": yaml.safe_load(text)})
    its = [i.to_dict() for i in w.measure(session, Plan(warmup=0, iterations=0))]
    return w, w.summary(its), its


# --------------------------------------------------------------------------- cold prompts

def test_repeat_run_against_a_server_that_stays_up_is_cold(server: str,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The same suite run twice against one llama-server, through its OpenAI route as a
    server that cannot be told not to cache (benchkit sends no cache flag there): each
    run draws its own prompts, so the second is as cold as the first: no cached prompt
    tokens beyond a shared first token, and a TTFT within the first run's spread. Then
    the same with the seed pinned: the second run's prompts are the first's, the server
    reuses them, and the level says so."""
    openai = _session(server, api="openai", openai_url=server + "/v1")
    text = "{concurrency: 1, requests: 3, prompt_tokens: 96, max_tokens: 2}"
    runs = []
    for run_seed in (11, 12):          # two runs: two processes' RUN_SEED
        monkeypatch.setattr(serve, "RUN_SEED", run_seed)
        w, summary, its = _level(text, openai)
        runs.append((summary, its))
        assert summary["requests_ok"] == 3
        assert w.spread_warnings({"summary": summary}) == []
        assert summary["cached_prompt_tokens"] <= summary["requests_ok"]
    (first, its1), (second, its2) = runs
    assert its1[0]["prompt_seed"] != its2[0]["prompt_seed"]
    low = min(it["ttft_s"] for it in its1)
    high = max(it["ttft_s"] for it in its1)
    spread = high - low
    assert low - spread - 0.5 * low <= second["ttft_p50_s"] <= _slowest_plausible(low, high)

    pinned = "{concurrency: 1, requests: 3, prompt_tokens: 96, max_tokens: 2, seed: 5}"
    _level(pinned, openai)
    w, warm, _ = _level(pinned, openai)
    assert warm["cached_prompt_tokens"] > 3 * 48, warm
    (line,) = w.spread_warnings({"summary": warm})
    assert line.startswith(f"warm cache: the server took {warm['cached_prompt_tokens']:,} of ")
    assert "cache: bust" in line


def _slowest_plausible(low: float, high: float) -> float:
    """The upper bound on a cold second run's TTFT p50.

    A warm cache shows as a faster second run, which the lower bound catches (first run's
    fastest less its range and half again). A slower second run says only that the
    machine got busier between the runs: on two cores with another process spinning, a
    second run's p50 came out 1.6 times the first run's slowest request. The upper bound
    only catches a run that went wrong (timed something else, or waited on a timeout)."""
    return 2.0 * high + (high - low)


def _run_twice(suite: Path, tmp_path: Path, name: str) -> list[dict[str, Any]]:
    from conftest import run_benchkit

    cases = []
    for k in (1, 2):
        out = tmp_path / f"{name}-{k}"
        proc = run_benchkit("run", str(suite), "-o", str(out), "--no-progress")
        assert proc.returncode == 0, proc.stderr
        (case,) = json.loads(next(out.glob("*.json")).read_text())["cases"]
        cases.append(case)
    return cases


@pytest.mark.exclusive          # two runs' latencies, compared
def test_same_suite_twice_against_a_running_server_gives_the_same_ttft(
        server: str, smollm2_model: Path, tmp_path: Path) -> None:
    """`benchkit run` of one serve suite, twice, against one llama-server that stays up,
    through the openai engine (which cannot tell the server not to cache): each run draws
    its own prompts, so the second is as cold as the first. Its TTFT p50 is no faster than
    the first run's range of TTFTs widened by that range and by half (the run-to-run spread
    of a shared machine) and not implausibly slower, no run warns of a warm cache, and the server reused at most a first
    token per request. The same suite with its seed pinned is the control: its second run
    resends the first's prompts, the server reuses them, the run warns, and its TTFT p50
    falls below the first run's fastest request."""
    text = ("name: twice\nmodels: [{path: %s}]\nengines: [{kind: openai, url: \"%s/v1\"}]\n"
            "workloads:\n  - serve: {concurrency: 1, requests: 4, prompt_tokens: 160, "
            "max_tokens: 2%s}\nwarmup: 1\n")
    suite = tmp_path / "twice.yaml"
    suite.write_text(text % (smollm2_model, server, ""))
    first, second = _run_twice(suite, tmp_path, "cold")
    for case in (first, second):
        assert case["status"] == "ok" and case["warnings"] == [], case["warnings"]
        assert case["summary"]["cached_prompt_tokens"] <= case["summary"]["requests_ok"]
    assert first["summary"]["prompt_seed"] != second["summary"]["prompt_seed"]
    ttft = [it["ttft_s"] for it in first["iterations"]]
    low, high = min(ttft), max(ttft)
    spread = high - low
    assert low - spread - 0.5 * low <= second["summary"]["ttft_p50_s"] <= \
        _slowest_plausible(low, high), (ttft, second["summary"]["ttft_p50_s"])

    suite.write_text(text % (smollm2_model, server, ", seed: 11"))
    cold, warm = _run_twice(suite, tmp_path, "pinned")
    assert warm["summary"]["cached_prompt_tokens"] > 4 * 100
    assert any(w.startswith("warm cache: ") for w in warm["warnings"])
    assert warm["summary"]["ttft_p50_s"] < min(it["ttft_s"] for it in cold["iterations"])


def test_level_is_bounded_by_requests_and_time_whichever_comes_first() -> None:
    """requests and duration together: the level ends at the first bound reached, and the
    summary records both bounds and which one ended it (closed and open loop)."""
    with OpenAIFake("m") as fake:
        session = _session(fake.url, api="openai", openai_url=fake.url + "/v1")
        w, by_time, _ = _level("{concurrency: 1, requests: 5000, duration: 0.3s, "
                               "prompt_tokens: 4, max_tokens: 2}", session)
        _, by_count, _ = _level("{concurrency: 2, requests: 3, duration: 1h, prompt_tokens: 4, "
                                "max_tokens: 2}", session)
        _, open_loop, _ = _level("{rate: 40, requests: 5000, duration: 0.3s, prompt_tokens: 4, "
                                 "max_tokens: 2}", session)
    assert w.to_dict()["requests"] == 5000 and w.to_dict()["duration_s"] == 0.3
    assert by_time["ended_by"] == "duration" and 0 < by_time["requests"] < 5000
    assert (by_time["bound_requests"], by_time["bound_duration_s"]) == (5000, 0.3)
    assert by_count["ended_by"] == "requests" and by_count["requests"] == 3
    assert open_loop["ended_by"] == "duration" and 0 < open_loop["requests"] < 5000


def test_llama_server_is_told_not_to_cache(server: str) -> None:
    """On llama-server's own routes the cold intent is sent (cache_prompt: false): the same
    pinned prompts twice are computed in full both times."""
    text = ("{concurrency: 1, requests: 2, prompt_tokens: 64, max_tokens: 2, seed: 9, "
            "endpoint: completions}")
    for _ in range(2):
        w, summary, its = _level(text, _session(server, openai_url=server + "/v1"))
        assert summary["cached_prompt_tokens"] == 0, summary
        assert all(it["prompt_n"] >= 64 for it in its)


def test_run_seed_draws_new_prompts_unless_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    def seed(text: str) -> int:
        import yaml

        return serve.parse({"serve": yaml.safe_load(text)})[0].prompt_seed()

    monkeypatch.setattr(serve, "RUN_SEED", 1)
    a = [seed("{concurrency: 1}"), seed("{concurrency: 2}"), seed("{concurrency: 1, seed: 3}")]
    monkeypatch.setattr(serve, "RUN_SEED", 2)
    b = [seed("{concurrency: 1}"), seed("{concurrency: 2}"), seed("{concurrency: 1, seed: 3}")]
    assert a[0] != a[1] and a[0] != b[0] and a[1] != b[1]
    assert a[2] == b[2] == 3


# --------------------------------------------------------------------------- conversations

def test_conversations_reuse_and_bust_the_prefix_cache(server: str) -> None:
    """2 sessions of 2 turns behind a shared 24-word system prompt: with cache: reuse the
    server reuses more than half of every later turn's prompt; with cache: bust nothing."""
    base = ("{concurrency: 1, requests: 4, prompt_tokens: 12, max_tokens: 4, "
            "sessions: {turns: 2, think_time_s: 0.05, shared_prefix_tokens: 24}")
    w, reuse, its = _level(base + ", cache: reuse}", _session(server))
    assert w.test == "serve-c1-t2-reuse"
    assert [(it["session"], it["turn"]) for it in its] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert reuse["sessions"] == 2 and reuse["requests_later_turns"] == 2
    assert reuse["cache_hit_rate_later_turns"] > 0.5, reuse
    assert reuse["ttft_p50_first_turn_s"] is not None
    assert reuse["ttft_p50_later_turns_s"] is not None
    # a later turn carries the earlier turn: its prompt is longer than the first turn's
    by = {(it["session"], it["turn"]): it for it in its}
    assert by[(0, 2)]["cache_n"] + by[(0, 2)]["prompt_n"] > \
        by[(0, 1)]["cache_n"] + by[(0, 1)]["prompt_n"] + 12
    _, bust, _ = _level(base + "}", _session(server))
    assert bust["cache_hit_rate"] < 0.05, bust
    assert bust["cache"] == "bust"


def test_sessions_refuse_a_rate(tmp_path: Path) -> None:
    from benchkit.run.suite import load_suite

    for extra, words in (("rate: 1", "closed loop"),):
        suite = tmp_path / "s.yaml"
        suite.write_text("name: s\nmodels: [{path: m.gguf}]\nengines: [{kind: llama-server}]\n"
                         f"workloads:\n  - serve: {{{extra}, sessions: {{turns: 2}}}}\n")
        with pytest.raises(BenchkitError) as err:
            load_suite(suite)
        assert words in err.value.message


# --------------------------------------------------------------------------- SLO search

def test_search_plan_brackets_then_bisects() -> None:
    """Against a server that passes up to concurrency 5: 1, 2, 4, 8 (fails), then 6
    (fails), 5 (passes); the answer in 6 levels."""
    tried: list[tuple[float, bool]] = []
    while (load := slo_search.next_load(tried, "concurrency", 1, 16, 8)) is not None:
        tried.append((load, load <= 5))
    assert [int(x) for x, _ in tried] == [1, 2, 4, 8, 6, 5]
    tried = []
    while (load := slo_search.next_load(tried, "concurrency", 1, 16, 3)) is not None:
        tried.append((load, load <= 5))
    assert [int(x) for x, _ in tried] == [1, 2, 4]          # the level budget holds
    assert slo_search.next_load([(1, False)], "concurrency", 1, 16, 8) is None
    assert slo_search.next_load([(4, True)], "concurrency", 4, 4, 8) is None   # max passed


def test_search_finds_the_largest_passing_concurrency(server: str) -> None:
    """The SLO is set between a lone request's TTFT and the time a request waits for a
    busy slot (2 slots, 24 tokens each): every level at or below the answer passed,
    every one above it failed, and the headline figures are the answer's level's."""
    _, alone, _ = _level("{concurrency: 1, requests: 2, prompt_tokens: 16, max_tokens: 24}",
                         _session(server))
    slo_ms = (alone["ttft_p99_s"] + alone["e2e_p50_s"]) / 2 * 1e3
    w, found, its = _level("{search: {over: concurrency, max: 4, levels: 3}, requests: 4, "
                           f"prompt_tokens: 16, max_tokens: 24, slo: {{ttft_ms: {slo_ms:.1f}}}}}",
                           _session(server))
    assert w.test == "serve-search-c4"
    levels = found["search"]
    assert 1 <= len(levels) <= 3 and found["search_levels"] == len(levels)
    answer = found["slo_max_load"]
    assert answer is not None, found
    for level in levels:
        assert level["passed"] == (level["concurrency"] <= answer), levels
        assert "TTFT p99" in level["why"] and "error rate" in level["why"]
    assert found["concurrency"] == answer
    assert found["requests"] == sum(1 for it in its if it["load"] == answer)


def test_search_no_level_meets_the_slo(server: str) -> None:
    _, found, _ = _level("{search: {over: concurrency, max: 4}, requests: 1, prompt_tokens: 8, "
                         "max_tokens: 2, slo: {ttft_ms: 0.001}}", _session(server))
    assert found["slo_max_load"] is None
    assert len(found["search"]) == 1
    assert found["slo_max_load_note"].startswith("no level tried met the SLO: TTFT p99 ")


# --------------------------------------------------------------------------- reasoning

class _Reasoning(OpenAIFake):
    """Streams `think` reasoning_content deltas, a pause, then answer content."""

    def __init__(self, think: int, pause_s: float) -> None:
        super().__init__("reasoner")
        self.think, self.pause_s = think, pause_s

    def _stream(self, h: Any, body: dict[str, Any], *, chat: bool) -> None:
        n = int(body.get("max_tokens", 8))
        h.start_stream("text/event-stream")
        for i in range(n):
            if i == self.think:
                time.sleep(self.pause_s)
            delta = {"reasoning_content": f" r{i}"} if i < self.think else {"content": f" a{i}"}
            done = "length" if i == n - 1 else None
            h.chunk(b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta,
                                                          "finish_reason": done}]}).encode()
                    + b"\n\n")
        h.chunk(b"data: [DONE]\n\n")
        h.end_stream()


def test_reasoning_stream_times_first_token_and_first_answer_apart() -> None:
    with _Reasoning(think=3, pause_s=0.3) as fake:
        _, summary, its = _level("{concurrency: 1, requests: 2, prompt_tokens: 4, "
                                 "max_tokens: 6, endpoint: chat}",
                                 _session(fake.url, api="openai", openai_url=fake.url + "/v1"))
    assert summary["requests_ok"] == 2 and summary["reasoning_tokens"] == 6
    for it in its:    # the pause (0.3 s) lies between the first token and the first answer
        assert it["ttft_answer_s"] - it["ttft_s"] > 0.25
        assert it["ttft_answer_s"] == pytest.approx(it["ttft_s"] + sum(
            it["token_latencies_s"][:3]))
    assert summary["ttft_answer_p50_s"] > summary["ttft_p50_s"]
    assert summary["ttft_is"].startswith("first token of any kind")


# --------------------------------------------------------------------------- lengths

def test_lengths_from_distributions_are_drawn_seeded_and_recorded(server: str) -> None:
    text = ("{concurrency: 2, requests: 6, seed: 4, prompt_tokens: {dist: lognormal, mean: 24, "
            "sd: 12, min: 4, max: 64}, max_tokens: {dist: uniform, min: 2, max: 6}}")
    w, summary, its = _level(text, _session(server))
    assert summary["requests_ok"] == 6
    planned = [it["prompt_tokens_planned"] for it in its]
    assert all(4 <= k <= 64 for k in planned) and len(set(planned)) > 1
    for it in its:    # llama-server computed exactly the drawn prompt, made the drawn tokens
        assert it["prompt_n"] == it["prompt_tokens_planned"]
        assert it["tokens"] == it["max_tokens_planned"] and 2 <= it["tokens"] <= 6
    again = [p.tokens_planned for p in w.build_prompts(
        SimpleNamespace(base_url=None, protocol="ollama"),
        w.load_spec(0))][:6]
    assert again == planned          # seeded: the same draws for the same seed


@pytest.mark.parametrize("dist, message", [
    ("{dist: normal, mean: 10, sd: -1}", "[workloads.0.serve.prompt_tokens.sd]"),
    ("{dist: uniform, min: 9, max: 3}", "min 9 is above max 3"),
    ("{dist: normal, sd: 3}", "needs mean:")])
def test_bad_distribution_is_one_line(tmp_path: Path, dist: str, message: str) -> None:
    from benchkit.run.suite import load_suite

    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [{path: m.gguf}]\nengines: [{kind: llama-server}]\n"
                     f"workloads:\n  - serve: {{concurrency: 1, prompt_tokens: {dist}}}\n")
    with pytest.raises(BenchkitError) as err:
        load_suite(suite)
    assert message in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- arrivals

@pytest.mark.parametrize("arrival, cv", [("constant", 0.0), ("poisson", 1.0),
                                         ("gamma", 3.0)])
def test_arrival_gaps_have_the_stated_rate_and_spread(arrival: str, cv: float) -> None:
    import random
    import statistics

    from benchkit.workloads.serve import loadgen

    spec = loadgen.LoadSpec(rate=4.0, requests=4000, arrival=arrival, arrival_cv=cv or 1.0)
    rng = random.Random(1)
    gaps = [loadgen.next_gap(spec, rng, i) for i in range(4000)]
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.25, rel=0.1)
    assert statistics.pstdev(gaps) / mean == pytest.approx(cv, abs=0.15 * max(cv, 1))


def test_ramp_arrivals_speed_up() -> None:
    import random
    import statistics

    from benchkit.workloads.serve import loadgen

    spec = loadgen.LoadSpec(rate=10.0, requests=2000, arrival="ramp")
    rng = random.Random(2)
    gaps = [loadgen.next_gap(spec, rng, i) for i in range(2000)]
    assert statistics.fmean(gaps[:200]) > 3 * statistics.fmean(gaps[-200:])


def test_open_loop_level_with_bursty_arrivals_records_its_schedule() -> None:
    with OpenAIFake("m") as fake:
        w, summary, its = _level("{rate: 20, requests: 6, prompt_tokens: 4, max_tokens: 2, "
                                 "arrival: {gamma: {cv: 2}}}",
                                 _session(fake.url, api="openai", openai_url=fake.url + "/v1"))
    assert summary["requests_ok"] == 6
    assert w.to_dict()["arrival"] == {"gamma": {"cv": 2.0}}
    scheduled = [it["scheduled_s"] for it in its]
    assert scheduled == sorted(scheduled) and scheduled[0] > 0


# --------------------------------------------------------------------------- datasets

def test_shipped_conversations_run_as_sessions(server: str) -> None:
    """The shipped set (dialogue of Persuasion): each conversation's user messages are the
    turns, its system message the system prompt; the server reuses the earlier turns."""
    w, summary, its = _level("{concurrency: 1, requests: 4, max_tokens: 4, cache: reuse, "
                             "prompts: persuasion-dialogue, sessions: {turns: 2}}",
                             _session(server))
    assert w.to_dict()["prompts"]["count"] >= 20
    assert [(it["session"], it["turn"]) for it in its] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert summary["cache_hit_rate_later_turns"] > 0.5, summary


def test_conversation_line_is_sent_as_messages(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps([{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hello there"}]) + "\n"
                 + json.dumps({"messages": [{"role": "user", "content": "Hi"}],
                               "max_tokens": 3}) + "\n")
    with OpenAIFake("m") as fake:
        w, summary, _ = _level(f"{{concurrency: 1, requests: 2, prompts: {f}, endpoint: chat}}",
                               _session(fake.url, api="openai", openai_url=fake.url + "/v1"))
        bodies = [b for m, p, b in fake.requests if p.endswith("/chat/completions")]
    assert summary["requests_ok"] == 2
    assert bodies[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Hello there"}]
    assert bodies[1]["max_tokens"] == 3


@pytest.mark.parametrize("content, message", [
    (None, "prompts file not found: p.jsonl"),
    (b"", "holds no prompt"),
    (b"\x00\x01\x02\xff\xfe", "not JSON"),
    (b"prompt one\n", "not JSON"),
    (b'[{"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}]\n',
     "the conversation has no user message"),
    (b'[{"role": "bot", "content": "x"}]\n', "[messages.0]")])
def test_bad_prompts_file_is_one_line(tmp_path: Path, content: bytes | None,
                                      message: str) -> None:
    from benchkit.run.suite import load_suite

    if content is not None:
        (tmp_path / "p.jsonl").write_bytes(content)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [{path: m.gguf}]\nengines: [{kind: llama-server}]\n"
                     "workloads:\n  - serve: {concurrency: 1, prompts: p.jsonl}\n")
    with pytest.raises(BenchkitError) as err:
        load_suite(suite)
    assert message in str(err.value) and "\n" not in str(err.value)

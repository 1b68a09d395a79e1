"""The HTTP engines on real servers on loopback: the openai engine against llama-cpp-python's
own server (`python -m llama_cpp.server`), the ollama engine against a loopback server that
speaks Ollama's documented API (tests/http_fakes.py; Ollama is not installable here), the
shared client's failures against misbehaving loopback servers, and one end-to-end
`benchkit run` of llama-cpp-python, llama-server and an openai engine in one result.

No timing is asserted: the figures are whatever this machine does; the tests check what
was measured, which clock, the counts, and every failure's one line.
"""

from __future__ import annotations



import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchkit.engines.base import ModelFile, Plan
from benchkit.engines.http.client import HttpClient, ManagedServer, Stream, free_port
from benchkit.engines.http.ollama import Ollama, OllamaOptions
from benchkit.engines.http.openai import PP_UNSUPPORTED, OpenAICompatible, OpenAIOptions
from benchkit.core.errors import BenchkitError
from benchkit.workloads.chat import ChatWorkload
from benchkit.workloads.tokens import TokensWorkload

from conftest import run_benchkit  # noqa: E402
from http_fakes import OllamaFake, OpenAIFake, ollama_show  # noqa: E402

TG8 = TokensWorkload("tg", 0, 8)
PP32 = TokensWorkload("pp", 32, 0)
CHAT8 = ChatWorkload(max_tokens=8)
SMOLLM2_ALIAS = "SmolLM2-135M-Instruct.Q4_1"      # the file's stem: "same name"
OTHER_ALIAS = "gemma-3-270m-it"                     # what a wrongly pointed engine serves


def model_file(path: Path, *, sha256: str | None = None, name: str | None = None) -> ModelFile:
    return ModelFile(path=str(path), label="suite.yaml:3 [models.0]", sha256=sha256,
                     name=name or path.name)


# --- llama-cpp-python's server, two aliases of SmolLM2 ---------------------------------------


@pytest.fixture(scope="module")
def lcp_server(smollm2_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """`python -m llama_cpp.server` with SmolLM2 under two aliases: its own name, and
    another model's (a server pointed at the wrong model, for the identity test)."""
    cfg = tmp_path_factory.mktemp("lcp") / "config.json"

    def argv(port: int) -> list[str]:
        models = [{"model": str(smollm2_model), "model_alias": alias, "n_ctx": 512,
                   "n_threads": 1, "verbose": False} for alias in (SMOLLM2_ALIAS, OTHER_ALIAS)]
        cfg.write_text(json.dumps({"host": "127.0.0.1", "port": port,
                                   "interrupt_requests": False, "models": models}))
        return [sys.executable, "-m", "llama_cpp.server", "--config_file", str(cfg)]

    server = ManagedServer("llama_cpp.server", argv, health_path="/v1/models")
    server.start(ready_timeout_s=180)
    yield server
    server.stop()
    assert server.proc is not None and server.proc.poll() is not None


def openai_engine(url: str, **kw) -> OpenAICompatible:
    return OpenAICompatible(OpenAIOptions(url=url, **kw))


def test_openai_tg_and_chat_on_llama_cpp_python_server(lcp_server: ManagedServer,
                                                       smollm2_model: Path) -> None:
    engine = openai_engine(lcp_server.base_url + "/v1", model=SMOLLM2_ALIAS)
    with engine.open(model_file(smollm2_model)) as s:
        facts = s.facts()
        assert facts["model_match"] == "same name"
        assert set(facts["served_models"]) == {SMOLLM2_ALIAS, OTHER_ALIAS}
        assert s.endpoint.api == "openai" and s.endpoint.model == SMOLLM2_ALIAS
        assert s.endpoint.openai_url == lcp_server.base_url + "/v1"
        tg = s.measure(TG8, Plan(warmup=1, iterations=2))
        chat = s.measure(CHAT8, Plan(warmup=0, iterations=2))
        warnings = s.take_warnings()
    assert len(tg) == 2 and len(chat) == 2
    for it in tg:
        # max_tokens 9 with min_tokens: first -> last token spans the 8 decodes asked for
        assert it.clock == "client" and it.extra["n_asked"] == 9
        assert it.extra["n_generated"] == 9 and it.tokens == 8 and it.seconds > 0
        assert it.ttft_s is not None and it.ttft_s > 0
    for it in chat:
        assert it.clock == "client" and it.extra["n_generated"] == 8 and it.tokens == 7
        assert len(it.token_latencies_s) == it.extra["n_events"] - 1
        assert all(x >= 0 for x in it.token_latencies_s)
        assert 0 < it.ttft_s < it.extra["total_s"]
    assert warnings == []


def test_openai_fails_on_another_model(lcp_server: ManagedServer, smollm2_model: Path) -> None:
    engine = openai_engine(lcp_server.base_url + "/v1", model=OTHER_ALIAS)
    with pytest.raises(BenchkitError) as err:
        engine.open(model_file(smollm2_model))
    msg = str(err.value)
    assert f"serves {OTHER_ALIAS!r}, not the suite's model {smollm2_model.name}" in msg
    assert "\n" not in msg


def test_openai_needs_a_served_model_and_a_choice(lcp_server: ManagedServer,
                                                  smollm2_model: Path) -> None:
    url = lcp_server.base_url + "/v1"
    with pytest.raises(BenchkitError, match="does not serve model 'tinyllama'"):
        openai_engine(url, model="tinyllama").open(model_file(smollm2_model))
    with pytest.raises(BenchkitError, match="serves 2 models .* say which with model:"):
        openai_engine(url).open(model_file(smollm2_model))


def test_openai_workloads_and_settings() -> None:
    engine = openai_engine("http://127.0.0.1:9/v1")
    assert engine.unsupported(PP32) == PP_UNSUPPORTED
    assert engine.unsupported(TokensWorkload("pp+tg", 32, 8)) == PP_UNSUPPORTED
    assert "depth" in engine.unsupported(TokensWorkload("tg", 0, 8, 256))
    assert engine.unsupported(TG8) is None and engine.unsupported(CHAT8) is None
    assert "serve" in engine.workloads
    with pytest.raises(BenchkitError, match=r"needs url:"):
        OpenAICompatible(OpenAIOptions()).open(None)


def test_openai_api_key_comes_from_the_environment_and_is_never_recorded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIFake("smollm2") as fake:
        engine = openai_engine(fake.url + "/v1", api_key_env="BENCHKIT_TEST_KEY")
        monkeypatch.delenv("BENCHKIT_TEST_KEY", raising=False)
        with pytest.raises(BenchkitError, match="BENCHKIT_TEST_KEY .* is not set"):
            engine.open(None)
        monkeypatch.setenv("BENCHKIT_TEST_KEY", "sk-secret-123")
        with engine.open(None) as s:
            s.measure(TG8, Plan(0, 1))
            recorded = json.dumps([s.facts(), engine.settings()])
        assert all(h.get("authorization") == "Bearer sk-secret-123" for h in fake.headers)
    assert "sk-secret" not in recorded and "BENCHKIT_TEST_KEY" in recorded


def test_openai_early_stop_counts_the_real_tokens_and_warns() -> None:
    with OpenAIFake("smollm2", stop_after=5) as fake:
        with openai_engine(fake.url + "/v1").open(None) as s:
            it = s.iteration(TG8)
            warnings = s.take_warnings()
    assert it.extra["n_generated"] == 5 and it.tokens == 4
    assert warnings == ["the server stopped after 5 of 9 tokens (finish_reason stop): "
                        "iterations count the real tokens"]


# --- failures of an HTTP server: one line each -----------------------------------------------


@pytest.mark.parametrize("mode, expected", [
    ("http500", r"/v1/completions answered HTTP 500: model crashed \(test\)"),
    ("malformed", r"/v1/completions answered malformed JSON in its event stream"),
    ("stall", r"the stream stalled, no data for 1 s \(POST /completions"),
    ("drop", r"the server closed the connection mid-response"),
])
def test_openai_server_failures_are_one_line(mode: str, expected: str) -> None:
    with OpenAIFake("smollm2", mode) as fake:
        with openai_engine(fake.url + "/v1", timeout_s=1).open(None) as s:
            with pytest.raises(BenchkitError, match=expected) as err:
                s.iteration(TG8)
    assert "\n" not in str(err.value)


def test_connection_refused_is_one_line() -> None:
    port = free_port()
    with pytest.raises(BenchkitError) as err:
        openai_engine(f"http://127.0.0.1:{port}/v1").open(None)
    assert str(err.value) == (f"openai server at http://127.0.0.1:{port}/v1: cannot connect "
                              f"(connection refused); is the server running there?")


def test_a_non_openai_server_is_named() -> None:
    with OllamaFake("x", {}) as fake:       # answers 404 to /v1/models
        with pytest.raises(BenchkitError, match=r"/v1/models answered HTTP 404"):
            openai_engine(fake.url + "/v1").open(None)


def test_sse_events_are_stamped_with_the_chunk_that_completes_them() -> None:
    chunks = [(1.0, b'data: {"a"'), (2.0, b': 1}\r\n\r\n: ping\n\ndata: {"b": 2}\n'),
              (3.0, b'\ndata: [DONE]\n\n')]
    events = Stream(0.5, chunks, "http://x").sse()
    assert events == [(2.0, '{"a": 1}'), (3.0, '{"b": 2}'), (3.0, "[DONE]")]
    with pytest.raises(BenchkitError, match="sent an error event: boom"):
        Stream(0.0, [(1.0, b"event: error\ndata: boom\n\n")], "http://x").sse()


def test_status_error_excerpts_the_body() -> None:
    with OpenAIFake("m", "http500") as fake:
        client = HttpClient(fake.url, "test", timeout_s=5)
        with pytest.raises(BenchkitError) as err:
            client.post_json("/v1/completions", {})
        client.close()
    assert str(err.value) == (f"test: {fake.url}/v1/completions answered HTTP 500: "
                              f"model crashed (test)")


# --- ollama, through its documented API ------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_header(smollm2_model: Path):
    from benchkit.models.gguf import read_gguf_info, sha256_file

    info = read_gguf_info(smollm2_model)
    return info, sha256_file(smollm2_model)


def _show(header, *, sha: str | None, quant: str | None = None) -> dict:
    info, _ = header
    return ollama_show(family=info.architecture, n_params=info.n_params,
                       quant=quant or info.file_type, sha256=sha)


def test_ollama_native_api_figures_and_requests(smollm2_model: Path, smollm2_header) -> None:
    _, digest = smollm2_header
    with OllamaFake("smollm2", _show(smollm2_header, sha=digest)) as fake:
        engine = Ollama(OllamaOptions(url=fake.url, model="smollm2", keep_alive="10m",
                                      options={"num_ctx": 2048, "num_thread": 2}))
        with engine.open(model_file(smollm2_model, sha256=digest)) as s:
            facts = s.facts()
            assert s.prepare(TG8) == []
            pp = s.iteration(PP32)
            tg = s.iteration(TG8)
            both = s.iteration(TokensWorkload("pp+tg", 16, 4))
            chat = s.iteration(CHAT8)
            assert s.endpoint.openai_url == fake.url + "/v1" and s.endpoint.api == "ollama"
            warnings = s.take_warnings()
        generate = [b for m, p, b in fake.requests if p == "/api/generate"]
    assert facts["model_match"] == "same file (sha256)" and facts["version"] == "0.0.0-test"
    assert facts["quantization_level"] == smollm2_header[0].file_type
    assert pp.clock == "server" and pp.tokens == 32 and pp.extra["client_seconds"] > 0
    srv = tg.extra["server_timings"]
    assert tg.clock == "server" and tg.tokens == srv["eval_count"] == 9
    assert tg.seconds == srv["eval_duration"] / 1e9 and tg.extra["client_tokens"] == 8
    assert both.tokens == 16 + 5
    assert chat.clock == "client" and chat.extra["n_generated"] == 8 and chat.tokens == 7
    assert warnings == []
    for body in generate:
        assert body["raw"] is True and body["model"] == "smollm2" and body["keep_alive"] == "10m"
        assert body["options"]["num_ctx"] == 2048 and body["options"]["num_thread"] == 2
    assert [b["options"]["num_predict"] for b in generate] == [1, 9, 5, 8]
    assert generate[0]["stream"] is False and all(b["stream"] for b in generate[1:])
    assert len(generate[0]["prompt"].split()) == 31    # + BOS = 32 tokens


def test_ollama_same_header_other_blob_warns(smollm2_model: Path, smollm2_header) -> None:
    with OllamaFake("smollm2", _show(smollm2_header, sha="0" * 64)) as fake:
        engine = Ollama(OllamaOptions(url=fake.url, model="smollm2"))
        with engine.open(model_file(smollm2_model, sha256=smollm2_header[1])) as s:
            assert s.facts()["model_match"] == "same architecture, parameter count and " \
                                                "quantization"
            first, second = s.prepare(TG8), s.prepare(TG8)
    assert len(first) == 1 and "is not the suite's" in first[0] and second == []


def test_ollama_another_model_fails(smollm2_model: Path, smollm2_header) -> None:
    with OllamaFake("smollm2", _show(smollm2_header, sha=None, quant="Q8_0")) as fake:
        with pytest.raises(BenchkitError) as err:
            Ollama(OllamaOptions(url=fake.url, model="smollm2")).open(
                model_file(smollm2_model, sha256=smollm2_header[1]))
    assert str(err.value) == (f"Ollama serves another model than the suite's "
                              f"{smollm2_model.name}: quantization Q8_0 vs "
                              f"{smollm2_header[0].file_type}")


def test_ollama_missing_tag_says_how_to_get_it(smollm2_header) -> None:
    with OllamaFake("smollm2", _show(smollm2_header, sha=None)) as fake:
        with pytest.raises(BenchkitError) as err:
            Ollama(OllamaOptions(url=fake.url, model="tinyllama")).open(None)
    assert str(err.value) == (f"[model]: Ollama at {fake.url} has no model 'tinyllama' "
                              f"(ollama pull tinyllama)")


def test_ollama_early_stop_warns(smollm2_header) -> None:
    with OllamaFake("smollm2", _show(smollm2_header, sha=None), stop_after=4) as fake:
        with Ollama(OllamaOptions(url=fake.url, model="smollm2")).open(None) as s:
            it = s.iteration(TG8)
            warnings = s.take_warnings()
    assert it.tokens == 4
    assert len(warnings) == 1 and warnings[0].startswith("Ollama stopped after 4 of 9 tokens")


@pytest.mark.parametrize("mode, workload, expected", [
    ("http500", PP32, r"answered HTTP 500"),
    ("malformed", PP32, r"/api/generate answered malformed JSON"),
    ("malformed", TG8, r"/api/generate answered malformed JSON in its stream line"),
    ("stall", TG8, r"the stream stalled, no data for 1 s"),
    ("drop", TG8, r"closed the connection mid-response"),
])
def test_ollama_failures_are_one_line(smollm2_header, mode: str, workload, expected: str) -> None:
    show = _show(smollm2_header, sha=None)
    with OllamaFake("smollm2", show) as good_for_open, OllamaFake("smollm2", show, mode) as bad:
        engine = Ollama(OllamaOptions(url=good_for_open.url, model="smollm2", timeout_s=1))
        with engine.open(None) as s:
            s.client.close()
            s.client = HttpClient(bad.url, "ollama", timeout_s=1)   # now it misbehaves
            with pytest.raises(BenchkitError, match=expected) as err:
                s.iteration(workload)
    assert "\n" not in str(err.value)


def test_ollama_needs_a_model_tag() -> None:
    with pytest.raises(BenchkitError, match=r"needs model:"):
        Ollama(OllamaOptions()).open(None)


# --- a managed server process ---------------------------------------------------------------


def test_managed_server_runs_in_its_own_group_and_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "health").write_text("ok")

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                "--directory", str(tmp_path)]

    server = ManagedServer("http.server", argv, health_path="/health")
    server.start(ready_timeout_s=60)
    pid = server.proc.pid
    try:
        assert os.getpgid(pid) == pid != os.getpgid(0)
        assert server.base_url.startswith("http://127.0.0.1:")
    finally:
        server.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    server.stop()      # twice is fine


def test_managed_server_that_exits_fails_fast_with_its_log(tmp_path: Path) -> None:
    script = tmp_path / "bad-server"
    script.write_text("#!/bin/sh\necho 'loading...'\necho 'error: cannot open the model' >&2\n"
                      "exit 3\n")
    script.chmod(0o755)
    server = ManagedServer("bad-server", lambda port: [str(script)])
    with pytest.raises(BenchkitError) as err:
        server.start(ready_timeout_s=60)
    assert str(err.value) == ("bad-server exited before it was ready (exit code 3): log: "
                              "loading... | error: cannot open the model")
    assert server.proc.poll() == 3 and not server.log_path.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_benchkit_leaves_no_server(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM (how the runner stops a worker process) stops the server, then ends the
    process by SIGTERM; SIGKILL gives no chance to clean up: the kernel's parent-death
    signal stops the server (Linux)."""
    if sig == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    (tmp_path / "health").write_text("ok")
    code = (
        "import os, signal, sys\n"
        "from benchkit.core import lifetime\n"
        "from benchkit.engines.http.client import ManagedServer\n"
        # SIGTERM: without the parent-death signal, so that only the handler can stop it
        f"if {int(sig)} == signal.SIGTERM: lifetime.parent_death_signal = lambda sig: False\n"
        f"argv = lambda p: [sys.executable, '-m', 'http.server', str(p), '--bind', "
        f"'127.0.0.1', '--directory', {str(tmp_path)!r}]\n"
        "s = ManagedServer('http.server', argv, health_path='/health')\n"
        "s.start(60)\n"
        "print(s.proc.pid, flush=True)\n"
        f"os.kill(os.getpid(), {int(sig)})\n"
        "signal.pause()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -sig, proc.stderr
    pid = int(proc.stdout.strip())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"server {pid} outlived benchkit"
        time.sleep(0.1)


# --- one run, three engines -----------------------------------------------------------------


def test_benchkit_run_with_three_engines(lcp_server: ManagedServer, smollm2_model: Path,
                                         tmp_path: Path) -> None:
    suite = tmp_path / "three.yaml"
    suite.write_text(f"""\
name: three-engines
models:
  - path: {smollm2_model}
engine:
  n_gpu_layers: 0
  n_threads: 1
engines:
  - llama-cpp-python
  - {{kind: llama-server, n_ctx: 1024}}
  - {{kind: openai, url: "{lcp_server.base_url}/v1", model: {SMOLLM2_ALIAS}}}
workloads:
  - pp: 32
  - tg: 8
  - chat: {{max_tokens: 8}}
warmup: 1
iterations: 2
""")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    cases = {(c["engine"]["kind"], c["test"]): c for c in doc["cases"]}
    assert set(cases) == {(k, t) for k in ("llama-cpp-python", "llama-server", "openai")
                          for t in ("pp32", "tg8", "chat")}
    assert cases[("openai", "pp32")]["status"] == "unsupported"
    assert cases[("openai", "pp32")]["error"] == PP_UNSUPPORTED
    ok = [c for c in doc["cases"] if c["status"] == "ok"]
    assert len(ok) == 8 and all(len(c["iterations"]) == 2 for c in ok)
    server_tg = cases[("llama-server", "tg8")]
    assert server_tg["engine_info"]["layer"] == "HTTP/JSON server layer (llama.cpp's llama-server)"
    assert server_tg["engine"]["n_ctx"] == 1024 and server_tg["engine_info"]["model_match"]
    assert all(it["clock"] == "server" and it["tokens"] == 8 and it["client_tps"] > 0
               for it in server_tg["iterations"])
    assert all(it["clock"] == "client" for it in cases[("openai", "tg8")]["iterations"])
    assert cases[("openai", "chat")]["summary"]["ttft_median_s"] > 0

"""The llama-server engine on the real llama-server (built by `benchkit engines build` from
the vendored llama.cpp) and the real SmolLM2 model, on loopback; and every way a server
can fail: a binary that is not a server, bad arguments, a bad model, a server that is
never ready, one killed between requests or in the middle of a stream. Each fails with one
line, leaves no process behind, and the run goes on.

No timing is asserted: figures are what this machine does.
"""

from __future__ import annotations



import json
import signal
import sys
import threading
import uuid
from pathlib import Path

import psutil
import pytest

from benchkit.engines.base import ModelFile, Plan
from benchkit.engines.llama_cpp.server import ALL_LAYERS, LlamaServer, Options, server_argv
from benchkit.core.errors import BenchkitError
from benchkit.workloads.chat import ChatWorkload
from benchkit.workloads.tokens import TokensWorkload

from conftest import run_benchkit  # noqa: E402

PP32 = TokensWorkload("pp", 32, 0)
TG8 = TokensWorkload("tg", 0, 8)
PP16_TG4 = TokensWorkload("pp+tg", 16, 4)
CHAT8 = ChatWorkload(max_tokens=8)
CPU = {"n_gpu_layers": 0, "n_threads": 1}


@pytest.fixture(scope="module")
def binary() -> Path:
    from benchkit.engines.llama_cpp.build import find_tool

    try:
        return find_tool("llama-server")
    except BenchkitError as exc:
        pytest.fail(f"{exc} (the tests run the real llama-server)")


def model_file(path: Path) -> ModelFile:
    return ModelFile(path=str(path), label="suite.yaml:3 [models.0.path]", name=path.name)


def engine(binary: Path, **kw) -> LlamaServer:
    return LlamaServer(Options(binary=str(binary), **{**CPU, **kw}))


def servers_running(marker: str) -> list[psutil.Process]:
    """llama-server processes whose command line carries `marker`."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in (p.info.get("cmdline") or []) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue           # gone meanwhile
    return found


@pytest.fixture(scope="module")
def session(binary: Path, smollm2_model: Path):
    with engine(binary, n_ctx=1024).open(model_file(smollm2_model)) as s:
        yield s
    assert not s.server.alive()


def test_pp_is_the_servers_own_prompt_timing(session) -> None:
    assert session.prepare(PP32) == []
    its = session.measure(PP32, Plan(warmup=1, iterations=2))
    for it in its:
        t = it.extra["server_timings"]
        assert it.clock == "server" and it.tokens == t["prompt_n"] == 32
        assert it.seconds == t["prompt_ms"] / 1000
        assert it.extra["client_seconds"] > 0 and it.extra["client_tps"] > 0


def test_tg_times_n_decodes_on_both_clocks(session) -> None:
    its = session.measure(TG8, Plan(warmup=0, iterations=2))
    for it in its:
        t = it.extra["server_timings"]
        # n_predict 9: the first token comes from the prompt, predicted_ms spans 8 decodes
        assert it.clock == "server" and t["predicted_n"] == 9 and it.tokens == 8
        assert it.seconds == t["predicted_ms"] / 1000
        assert it.extra["client_tokens"] == 8 and it.extra["client_seconds"] > 0
        assert it.extra["client_tps"] > 0


def test_pp_plus_tg_in_one_request(session) -> None:
    it = session.iteration(PP16_TG4)
    t = it.extra["server_timings"]
    assert it.tokens == 16 + 4 and t["prompt_n"] == 16 and t["predicted_n"] == 5
    assert it.extra["client_tokens"] == 20


def test_chat_streams_and_times_every_token(session) -> None:
    assert session.prepare(CHAT8) == []
    it = session.iteration(CHAT8)
    assert it.clock == "client" and it.extra["n_generated"] == 8 and it.tokens == 7
    assert it.extra["server_timings"]["predicted_n"] == 8    # end of sequence ignored
    assert len(it.token_latencies_s) == 7 and 0 < it.ttft_s < it.extra["total_s"]
    assert it.extra["n_prompt"] > 1


def test_facts_endpoint_and_identity(session, smollm2_model: Path) -> None:
    f = session.facts()
    assert f["model_match"] == "same file" and f["model_file"] == smollm2_model.name
    assert f["n_ctx"] == 1024 and session.n_ctx == 1024 and f["n_vocab"] > 1000
    assert f["version"]["build_commit"] and f["build_info"]
    assert f["url"].startswith("http://127.0.0.1:") and f["total_slots"] >= 1
    ep = session.endpoint
    assert ep.api == "llama-server" and ep.base_url == f["url"]
    assert ep.openai_url == f["url"] + "/v1"
    json.dumps(f)


def test_a_workload_larger_than_the_context_is_refused(session) -> None:
    with pytest.raises(BenchkitError) as err:
        session.prepare(TokensWorkload("pp", 2000, 0))
    assert str(err.value) == ("[engine.n_ctx]: pp2000 needs a context of 2001 tokens; "
                              "llama-server was started with -c 1024")


def test_depth_is_unsupported_with_a_reason(binary: Path) -> None:
    reason = engine(binary).unsupported(TokensWorkload("tg", 0, 8, 512))
    assert reason and "depth" in reason
    assert engine(binary).unsupported(TG8) is None
    assert {"pp", "tg", "pp+tg", "chat", "serve"} <= LlamaServer.workloads


def test_settings_become_the_vendored_flags(binary: Path, smollm2_model: Path) -> None:
    """Every non-default setting on the command line, accepted by the real binary."""
    o = Options(binary=str(binary), n_gpu_layers=0, n_threads=2, n_ctx=512, n_batch=256,
                n_ubatch=128, flash_attn="off", type_k="q8_0", use_mmap=False,
                op_offload=False, args=["--alias", "benchkit-flags-test"]).resolved()
    argv = server_argv(binary, str(smollm2_model), o, 512, 8080)
    assert argv[1:] == ["-m", str(smollm2_model), "--host", "127.0.0.1", "--port", "8080",
                        "-ngl", "0", "-c", "512", "-b", "256", "-ub", "128", "-t", "2",
                        "-fa", "off", "-ctk", "q8_0", "-ctv", "f16", "-lm", "none",
                        "--no-op-offload", "--metrics", "--alias", "benchkit-flags-test"]
    every = server_argv(binary, "m.gguf", Options(n_gpu_layers=-1).resolved(), 0, 1)
    assert every[every.index("-ngl") + 1] == ALL_LAYERS
    with LlamaServer(o).open(model_file(smollm2_model)) as s:
        assert s.endpoint.model == "benchkit-flags-test"
        assert s.iteration(TG8).tokens == 8


# --- failures ---------------------------------------------------------------------------------


def test_a_binary_that_is_not_a_server(tmp_path: Path, smollm2_model: Path) -> None:
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho 'error: this is not llama-server' >&2\nexit 7\n")
    fake.chmod(0o755)
    with pytest.raises(BenchkitError) as err:
        engine(fake).open(model_file(smollm2_model))
    assert str(err.value) == ("llama-server exited before it was ready (exit code 7): log: "
                              "error: this is not llama-server")


def test_a_missing_binary_is_named(tmp_path: Path, smollm2_model: Path) -> None:
    with pytest.raises(BenchkitError, match=r"\[binary\]: llama-server binary not found: "):
        engine(tmp_path / "nope").open(model_file(smollm2_model))


def test_bad_arguments(binary: Path, smollm2_model: Path) -> None:
    marker = f"benchkit-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BenchkitError) as err:
        engine(binary, args=["--alias", marker, "--no-such-flag"]).open(
            model_file(smollm2_model))
    msg = str(err.value)
    assert msg.startswith("llama-server exited before it was ready (exit code 1): log: ")
    assert "--no-such-flag" in msg and "\n" not in msg
    assert servers_running(marker) == []


def test_a_bad_model(binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BenchkitError) as err:
        engine(binary).open(model_file(bad))
    assert str(err.value).startswith("llama-server exited before it was ready (exit code 1)")


def test_not_ready_in_time_is_stopped(binary: Path, smollm2_model: Path) -> None:
    marker = f"benchkit-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BenchkitError) as err:
        engine(binary, ready_timeout_s=0.001, args=["--alias", marker]).open(
            model_file(smollm2_model))
    assert "llama-server was not ready within 0.001 s" in str(err.value)
    assert servers_running(marker) == []


def test_killed_between_requests_then_restarted(binary: Path, smollm2_model: Path) -> None:
    with engine(binary, n_ctx=512).open(model_file(smollm2_model)) as s:
        first_pid = s.server.proc.pid

        def kill_after_first(tps: float | None) -> None:
            if tps is not None and s.server.alive():
                s.server.proc.send_signal(signal.SIGKILL)

        with pytest.raises(BenchkitError) as err:
            s.measure(TG8, Plan(warmup=0, iterations=3, on_iteration=kill_after_first))
        assert str(err.value).startswith("llama-server exited during POST /completion "
                                         "(streaming) (killed by SIGKILL)")
        assert not s.server.alive()
        # the next test restarts it: the run goes on
        warnings = s.prepare(TG8)
        assert warnings == ["llama-server had exited (killed by SIGKILL); restarted it for "
                            "this test"]
        assert s.server.proc.pid != first_pid and s.iteration(TG8).tokens == 8
    assert not s.server.alive()


def test_killed_mid_stream(binary: Path, smollm2_model: Path) -> None:
    long_tg = TokensWorkload("tg", 0, 3000)
    with engine(binary, n_ctx=4096).open(model_file(smollm2_model)) as s:
        proc = s.server.proc
        timer = threading.Timer(1.0, proc.send_signal, (signal.SIGKILL,))
        timer.start()
        try:
            with pytest.raises(BenchkitError) as err:
                s.iteration(long_tg)
        finally:
            timer.cancel()
        assert proc.poll() == -signal.SIGKILL
    assert str(err.value).startswith("llama-server exited during POST /completion (streaming) "
                                     "(killed by SIGKILL)")


def test_an_exception_in_a_session_stops_the_server(binary: Path, smollm2_model: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with engine(binary, n_ctx=512).open(model_file(smollm2_model)) as s:
            proc = s.server.proc
            raise KeyboardInterrupt
    assert proc.poll() is not None


def test_run_goes_on_after_a_server_that_does_not_start(binary: Path, smollm2_model: Path,
                                                       tmp_path: Path) -> None:
    marker = f"benchkit-test-{uuid.uuid4().hex[:8]}"
    suite = tmp_path / "servers.yaml"
    suite.write_text(f"""\
name: servers
models:
  - path: {smollm2_model}
engine: {{n_gpu_layers: 0, n_threads: 1, n_ctx: 512, binary: {binary}}}
engines:
  - {{kind: llama-server, args: ["--no-such-flag"]}}
  - {{kind: llama-server, args: ["--alias", "{marker}"]}}
workloads:
  - tg: 8
warmup: 0
iterations: 2
""")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    bad, good = doc["cases"]
    assert bad["status"] == "failed" and bad["engine"]["args"] == ["--no-such-flag"]
    assert bad["error"].startswith("llama-server exited before it was ready (exit code 1)")
    assert good["status"] == "ok" and len(good["iterations"]) == 2
    assert doc["status"] == "complete"
    assert servers_running(marker) == []


def test_ctrl_c_stops_the_server(binary: Path, smollm2_model: Path, tmp_path: Path) -> None:
    """SIGINT to `benchkit run` while a long case runs: exit 130, the server is gone."""
    import subprocess
    import time

    from conftest import benchkit_cmd

    marker = f"benchkit-test-{uuid.uuid4().hex[:8]}"
    suite = tmp_path / "long.yaml"
    suite.write_text(f"""\
name: long
models:
  - path: {smollm2_model}
engines:
  - {{kind: llama-server, n_gpu_layers: 0, n_threads: 1, n_ctx: 4096, binary: {binary},
     args: ["--alias", "{marker}"]}}
workloads:
  - tg: 3000
warmup: 0
iterations: 50
""")
    run = subprocess.Popen([*benchkit_cmd(), "run", str(suite), "-o", str(tmp_path / "out"),
                            "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 300
        while not servers_running(marker):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "llama-server never started"
            time.sleep(0.2)
        time.sleep(1.0)                   # let a request start
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, err
    assert "Traceback" not in err
    assert servers_running(marker) == []
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert doc["status"] == "interrupted"

"""The catalogue's engines part (tests/catalogue/engines.py): figures from servers and from
llama-bench that no reader would accept fail their own case in one line, and the file stays
readable by every reader; a server serving another model fails in `benchkit run`; HTTP
answers have a total deadline and a decoded size cap; URL credentials are never recorded.

Real processes and servers: `benchkit run` in a subprocess with its worker; llama-server
and llama-bench played by tests/tool_fakes.py, OpenAI and Ollama servers on loopback
(tests/http_fakes.py and the small ones here).
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from benchkit.results.io import read_result
from catalogue_support import part
from conftest import run_benchkit
from http_fakes import FakeServer, OllamaFake, OpenAIFake, ollama_show
from readable import every_reader_reads
from tool_fakes import make_tool

ENGINES = part("engines")
ENTRY = {e.id: e for e in ENGINES.ENTRIES}


def _run(tmp_path: Path, model: Path, engines: str, workloads: str, *extra: str,
         warmup: str = "0") -> tuple[Any, Path]:
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: hostile-servers\nmodels:\n  - path: {model}\nengines:\n{engines}"
                     f"workloads:\n{workloads}warmup: {warmup}\niterations: 2\n",
                     encoding="utf-8")
    out = tmp_path / "out"
    proc = run_benchkit("run", str(suite), "-o", str(out), "--no-progress", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, out


def _one_error(proc: Any, code: int) -> str:
    assert proc.returncode == code, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _tool(tmp_path: Path, kind: str, mode: str) -> str:
    binary = make_tool(tmp_path / "bin", kind)
    return f'  - {{kind: {kind}, binary: "{binary}", args: ["--fake", "{mode}"]}}\n'


# --- figures no reader would accept ---------------------------------------------------------


@pytest.mark.parametrize("mode, what, expect", ENGINES.SERVER_TIMINGS,
                         ids=[m for m, _, _ in ENGINES.SERVER_TIMINGS])
def test_lying_server_timings_fail_their_cases_and_the_file_stays_readable(
        tmp_path: Path, smollm2_model: Path, mode: str, what: str, expect: str) -> None:
    proc, out = _run(tmp_path, smollm2_model, _tool(tmp_path, "llama-server", "ok")
                     + _tool(tmp_path, "llama-server", mode), "  - pp: 8\n  - tg: 4\n")
    assert expect in _one_error(proc, 1)
    path = next(out.glob("*.json"))
    cases = read_result(path)["cases"]
    assert [c["status"] for c in cases] == ["ok", "ok", "failed", "failed"]
    for bad in cases[2:]:
        assert expect in bad["error"] and "\n" not in bad["error"]
        assert bad["iterations"] == [] and bad["summary"]["n"] == 0
    every_reader_reads(path)


@pytest.mark.parametrize("mode, what, expect", ENGINES.BENCH_SAMPLES,
                         ids=[m for m, _, _ in ENGINES.BENCH_SAMPLES])
def test_lying_llama_bench_samples_fail_their_case_and_the_file_stays_readable(
        tmp_path: Path, smollm2_model: Path, mode: str, what: str, expect: str) -> None:
    proc, out = _run(tmp_path, smollm2_model, _tool(tmp_path, "llama-bench", "ok")
                     + _tool(tmp_path, "llama-bench", mode), "  - tg: 4\n")
    assert expect in _one_error(proc, 1)
    path = next(out.glob("*.json"))
    good, bad = read_result(path)["cases"]
    assert good["status"] == "ok" and len(good["iterations"]) == 2
    assert bad["status"] == "failed" and expect in bad["error"]
    every_reader_reads(path)


# --- the served model, checked in benchkit run ----------------------------------------------


def test_an_openai_server_serving_another_model_fails_in_a_run(
        tmp_path: Path, smollm2_model: Path) -> None:
    with OpenAIFake(smollm2_model.name) as same, OpenAIFake("gemma-3-270m-it") as other:
        proc, out = _run(tmp_path, smollm2_model,
                         f'  - {{kind: openai, url: "{same.url}/v1"}}\n'
                         f'  - {{kind: openai, url: "{other.url}/v1"}}\n', "  - tg: 4\n")
    assert ENTRY["openai-other-model"].expect in _one_error(proc, 1)
    good, bad = read_result(next(out.glob("*.json")))["cases"]
    assert good["status"] == "ok" and good["engine_info"]["model_match"] == "same file name"
    assert bad["status"] == "failed" and "gemma-3-270m-it" in bad["error"]


def test_ollama_serving_another_model_fails_in_a_run(tmp_path: Path,
                                                     smollm2_model: Path) -> None:
    show = ollama_show(family="gemma3", n_params=268_098_176, quant="Q8_0", sha256=None)
    with OllamaFake("gemma3:270m", show) as fake:
        proc, out = _run(tmp_path, smollm2_model,
                         f'  - {{kind: ollama, url: "{fake.url}", model: "gemma3:270m"}}\n',
                         "  - tg: 4\n")
    assert ENTRY["ollama-other-model"].expect in _one_error(proc, 1)
    (case,) = read_result(next(out.glob("*.json")))["cases"]
    assert case["status"] == "failed" and "architecture gemma3 vs llama" in case["error"]


# --- counts from HTTP servers ---------------------------------------------------------------


class _AbsurdUsage(OpenAIFake):
    """An OpenAI server whose usage says it generated 10^12 tokens."""

    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        if method == "POST":
            h.start_stream("text/event-stream")
            for i in range(5):
                h.chunk(f'data: {{"choices": [{{"text": " w{i}", "index": 0}}]}}\n\n'.encode())
            h.chunk(b'data: {"choices": [], "usage": {"prompt_tokens": 4, '
                    b'"completion_tokens": 1000000000000}}\n\ndata: [DONE]\n\n')
            return h.end_stream()
        super().route(h, method, path, body)


class _ZeroDuration(OllamaFake):
    """Ollama whose final line says every token took 0 ns."""

    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        if method == "POST" and path == "/api/generate":
            n = int((body.get("options") or {}).get("num_predict", 4))
            h.start_stream("application/x-ndjson")
            for i in range(n):
                h.chunk(json.dumps({"response": f" w{i}", "done": False}).encode() + b"\n")
            h.chunk(json.dumps({"response": "", "done": True, "prompt_eval_count": 4,
                                "prompt_eval_duration": 1000, "eval_count": n,
                                "eval_duration": 0}).encode() + b"\n")
            return h.end_stream()
        super().route(h, method, path, body)


def test_absurd_token_counts_from_openai_and_ollama_fail_their_cases(
        tmp_path: Path, smollm2_model: Path) -> None:
    from benchkit.models.gguf import read_gguf_info

    header = read_gguf_info(smollm2_model)
    show = ollama_show(family="llama", n_params=header.n_params, quant=header.file_type,
                       sha256=None)
    with _AbsurdUsage(smollm2_model.name) as openai, _ZeroDuration("smollm2", show) as ollama, \
            OpenAIFake(smollm2_model.name) as honest:
        proc, out = _run(tmp_path, smollm2_model,
                         f'  - {{kind: openai, url: "{openai.url}/v1"}}\n'
                         f'  - {{kind: ollama, url: "{ollama.url}", model: smollm2}}\n'
                         f'  - {{kind: openai, url: "{honest.url}/v1"}}\n', "  - tg: 4\n")
    assert ENTRY["openai-usage-absurd"].expect in _one_error(proc, 1)
    path = next(out.glob("*.json"))
    big, zero, good = read_result(path)["cases"]
    assert good["status"] == "ok"
    assert big["status"] == "failed" and ENTRY["openai-usage-absurd"].expect in big["error"]
    assert zero["status"] == "failed"
    assert ENTRY["ollama-zero-duration"].expect in zero["error"]
    every_reader_reads(path)


# --- bounds on every answer -----------------------------------------------------------------


class _Trickle(FakeServer):
    """An OpenAI server that streams its answer a byte every 0.3 s, for ever."""

    def __init__(self, model_id: str) -> None:
        super().__init__("ok")
        self.model_id = model_id

    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        if method == "GET":
            return h.send_json({"data": [{"id": self.model_id}]})
        h.start_stream("text/event-stream")
        while not self.stop_event.is_set():
            try:
                h.chunk(b":")
            except OSError:
                return
            time.sleep(0.3)


GZIP_EXPANDED = 256 << 20


def _gzip_bomb() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(16 << 20)
    return b"".join([*(z.compress(block) for _ in range(GZIP_EXPANDED // len(block))),
                     z.flush()])


class _GzipBomb(FakeServer):
    """A server whose every answer is a small gzip body that expands to 256 MiB."""

    def __init__(self) -> None:
        super().__init__("ok")
        self.body = _gzip_bomb()

    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(self.body)))
        h.end_headers()
        h.wfile.write(self.body)


def test_a_trickling_server_is_stopped_at_the_request_deadline(
        tmp_path: Path, smollm2_model: Path) -> None:
    with _Trickle(smollm2_model.name) as fake:
        proc, out = _run(tmp_path, smollm2_model,
                         f'  - {{kind: openai, url: "{fake.url}/v1", timeout_s: 2}}\n',
                         "  - tg: 4\n")
    assert ENTRY["trickle"].expect in _one_error(proc, 1)


def test_a_gzip_bomb_is_refused_not_expanded(tmp_path: Path, smollm2_model: Path) -> None:
    with _GzipBomb() as fake:
        assert len(fake.body) < GZIP_EXPANDED // 500
        proc, out = _run(tmp_path, smollm2_model,
                         f'  - {{kind: openai, url: "{fake.url}/v1"}}\n', "  - tg: 4\n")
    assert ENTRY["gzip-bomb"].expect in _one_error(proc, 1)


def test_url_credentials_authenticate_and_are_never_recorded(
        tmp_path: Path, smollm2_model: Path) -> None:
    with OpenAIFake(smollm2_model.name) as fake:
        url = fake.url.replace("http://", "http://bench:s3cret-pw@") + "/v1"
        proc, out = _run(tmp_path, smollm2_model, f'  - {{kind: openai, url: "{url}"}}\n',
                         "  - tg: 4\n")
        sent = {h.get("authorization") for h in fake.headers}
    assert proc.returncode == 0, proc.stderr
    assert sent == {"Basic " + base64.b64encode(b"bench:s3cret-pw").decode()}
    path = next(out.glob("*.json"))
    assert "s3cret" not in path.read_text() + proc.stdout + proc.stderr
    (case,) = read_result(path)["cases"]
    assert case["engine"]["url"] == fake.url + "/v1"


def test_every_entry_of_this_part_has_a_test() -> None:
    tested = {f"server-{m}-timings" for m, _, _ in ENGINES.SERVER_TIMINGS} | {
        f"bench-{m}-samples" for m, _, _ in ENGINES.BENCH_SAMPLES} | {
        "openai-other-model", "ollama-other-model",
        "openai-usage-absurd", "ollama-zero-duration", "trickle", "gzip-bomb",
        "url-credentials"}
    assert set(ENTRY) == tested

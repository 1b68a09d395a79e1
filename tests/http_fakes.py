"""Small real HTTP servers on loopback for the HTTP engines' tests.

- `OllamaFake` speaks Ollama's documented wire format (GET /api/version, POST /api/show,
  POST /api/generate streaming newline-delimited JSON, with the figures Ollama reports).
  Ollama itself is not installable here; this is its API contract, not its performance:
  tokens are words and the durations are this server's own clock.
- `OpenAIFake` speaks the OpenAI API's streaming subset (GET /v1/models, POST
  /v1/completions and /v1/chat/completions as server-sent events).

Both misbehave on request (`mode`), for the failure tests: "http500" (every POST answers
500), "malformed" (broken JSON where JSON is due), "stall" (the stream starts, then nothing
comes), "drop" (the connection closes in the middle of a stream).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "http500", "malformed", "stall", "drop")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeServer:
    """A loopback HTTP server in a thread; `with FakeServer(...) as f: f.url`."""

    def __init__(self, mode: str = "ok") -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.requests: list[tuple[str, str, Any]] = []   # (method, path, JSON body)
        self.headers: list[dict[str, str]] = []          # each request's, lower-case names
        self.stop_event = threading.Event()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # small writes go out at once, as real servers do

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET", None)

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._dispatch("POST", body)

    def _dispatch(self, method: str, body: Any) -> None:
        fake = self.fake
        fake.requests.append((method, self.path, body))
        fake.headers.append({k.lower(): v for k, v in self.headers.items()})
        if method == "POST" and fake.mode == "http500":
            return self.send_json({"error": {"message": "model crashed (test)"}}, 500)
        fake.route(self, method, self.path, body)

    # --- responses

    def send_json(self, doc: Any, status: int = 200, *, generation: bool = False) -> None:
        """`doc` as JSON; broken JSON instead for a generation in "malformed" mode."""
        broken = generation and self.fake.mode == "malformed"
        raw = ('{"broken": ' if broken else json.dumps(doc)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def misbehave_mid_stream(self, i: int) -> bool:
        """After two pieces: stall until the test ends, or drop the connection."""
        if i < 2:
            return False
        if self.fake.mode == "stall":
            self.fake.stop_event.wait(60)
            return True
        if self.fake.mode == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        return False


# --- Ollama ----------------------------------------------------------------------------------


class OllamaFake(FakeServer):
    """Ollama's API for one model tag, whose /api/show facts the test gives."""

    def __init__(self, tag: str, show: dict[str, Any], mode: str = "ok", *,
                 stop_after: int | None = None) -> None:
        super().__init__(mode)
        self.tag, self.show, self.stop_after = tag, show, stop_after

    def route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        if method == "GET" and path == "/api/version":
            return h.send_json({"version": "0.0.0-test"})
        if method == "POST" and path == "/api/show":
            if (body or {}).get("model") != self.tag:
                return h.send_json({"error": f"model '{(body or {}).get('model')}' not found"},
                                   404)
            return h.send_json(self.show)
        if method == "POST" and path == "/api/generate":
            return self._generate(h, body or {})
        h.send_json({"error": "404 page not found"}, 404)

    def _generate(self, h: _Handler, body: dict[str, Any]) -> None:
        t0 = time.perf_counter_ns()
        opts = body.get("options") or {}
        n_prompt = len(str(body.get("prompt", "")).split()) + 1
        time.sleep(0.001)
        t1 = time.perf_counter_ns()
        n = int(opts.get("num_predict", 16))
        if self.stop_after is not None:
            n = min(n, self.stop_after)
        words = [f" w{i}" for i in range(n)]
        created = "2024-01-01T00:00:00Z"

        def final(t2: int) -> dict[str, Any]:
            return {"model": self.tag, "created_at": created, "response": "", "done": True,
                    "done_reason": "length" if n == opts.get("num_predict") else "stop",
                    "context": [1, 2, 3], "total_duration": t2 - t0, "load_duration": 1000,
                    "prompt_eval_count": n_prompt, "prompt_eval_duration": t1 - t0,
                    "eval_count": n, "eval_duration": t2 - t1}

        if not body.get("stream", True):
            time.sleep(0.001 * n)
            doc = final(time.perf_counter_ns())
            doc["response"] = "".join(words)
            return h.send_json(doc, generation=True)
        h.start_stream("application/x-ndjson")
        for i, w in enumerate(words):
            if h.misbehave_mid_stream(i):
                return
            line = {"model": self.tag, "created_at": created, "response": w, "done": False}
            raw = (json.dumps(line) if self.mode != "malformed" else '{"response": "x", ')
            h.chunk(raw.encode() + b"\n")
            time.sleep(0.001)
        h.chunk(json.dumps(final(time.perf_counter_ns())).encode() + b"\n")
        h.end_stream()


def ollama_show(*, family: str, n_params: int, quant: str, sha256: str | None) -> dict[str, Any]:
    """An /api/show answer as Ollama writes it (details, model_info, the Modelfile)."""
    modelfile = "# Modelfile generated by \"ollama show\"\n"
    if sha256:
        modelfile += f"FROM /root/.ollama/models/blobs/sha256-{sha256}\n"
    return {"modelfile": modelfile, "parameters": "", "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": family,
                        "families": [family], "parameter_size": f"{n_params / 1e6:.2f}M",
                        "quantization_level": quant},
            "model_info": {"general.architecture": family,
                           "general.parameter_count": n_params},
            "capabilities": ["completion"]}


# --- OpenAI ----------------------------------------------------------------------------------


class OpenAIFake(FakeServer):
    """An OpenAI-compatible API serving `model_id`; tokens are words."""

    def __init__(self, model_id: str, mode: str = "ok", *,
                 stop_after: int | None = None) -> None:
        super().__init__(mode)
        self.model_id, self.stop_after = model_id, stop_after

    def route(self, h: _Handler, method: str, path: str, body: Any) -> None:
        if method == "GET" and path == "/v1/models":
            return h.send_json({"object": "list", "data": [
                {"id": self.model_id, "object": "model", "owned_by": "test"}]})
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            return self._stream(h, body or {}, chat=path.endswith("chat/completions"))
        h.send_json({"error": {"message": "not found"}}, 404)

    def _stream(self, h: _Handler, body: dict[str, Any], *, chat: bool) -> None:
        asked = int(body.get("max_tokens", 16))
        n = asked if self.stop_after is None else min(asked, self.stop_after)
        h.start_stream("text/event-stream")
        for i in range(n):
            if h.misbehave_mid_stream(i):
                return
            choice = ({"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}
                      if chat else {"index": 0, "text": f" w{i}", "finish_reason": None})
            if i == n - 1:
                choice["finish_reason"] = "length" if n == asked else "stop"
            event = json.dumps({"id": "x", "object": "chunk", "choices": [choice]})
            if self.mode == "malformed":
                event = '{"choices": [{"text": '
            h.chunk(f"data: {event}\n\n".encode())
            time.sleep(0.001)
        h.chunk(b"data: " + json.dumps({"choices": [], "usage": {
            "prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}}).encode()
            + b"\n\n")
        h.chunk(b"data: [DONE]\n\n")
        h.end_stream()

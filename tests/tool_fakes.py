"""Stand-ins for llama.cpp's tools that lie on request: real processes, run by benchkit the way
it runs the real tools (`binary:` in a suite), for the hostile-input tests.

`make_tool(folder, "llama-server")` writes an executable that runs this file as the tool:

- llama-server: a real HTTP server on the port it is given, speaking the routes benchkit
  uses (/health, /props, /v1/models, /tokenize, /completion streamed or not, /metrics,
  /slots). `args: ["--fake", MODE]` in the suite picks how it lies:
  ok | nan | inf | zero | negative | absurd (the timings of /completion), timings-list
  (a chat's timings are a list), tokenize-list (/tokenize answers a JSON list), kill-parent
  (/tokenize kills the process that started it: a worker dying before its case starts).
  `--fake-state DIR` writes `DIR/requests` with each /completion request begun, so that a
  test waits for a state, not a time; while `DIR/slow` exists, tokens come a second apart.
- llama-bench: prints one JSON row whose `samples_ns` are `--fake MODE`'s: ok | zero |
  negative | text | fraction | absurd.

Only the standard library: the tools start in a second.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

N_VOCAB = 1000
TIMINGS = {"ok": (8.0, 4.0), "nan": (float("nan"), 4.0), "inf": (float("inf"), 4.0),
           "zero": (0.0, 0.0), "negative": (-8.0, -4.0), "absurd": (1e-9, 1e-9)}


def make_tool(folder: Path, name: str) -> Path:
    """An executable `folder/name` that runs this file as the tool `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" '
                    f'{name} "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def _flag(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


# --- llama-server ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def llama_server(argv: list[str]) -> None:
    if "--version" in argv:
        print("version: 9999 (build 9999, commit fake)\nbuilt with fake for test")
        return
    model, port = _flag(argv, "-m"), int(_flag(argv, "--port") or 0)
    mode, state = _flag(argv, "--fake", "ok"), _flag(argv, "--fake-state")
    counter = {"n": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def send(self, doc: Any, status: int = 200) -> None:
            raw = json.dumps(doc).encode()          # NaN and Infinity as JSON's extensions
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                return self.send({"status": "ok"})
            if self.path == "/props":
                return self.send({"model_path": model, "total_slots": 1, "build_info": "fake",
                                  "default_generation_settings": {"n_ctx": 4096}})
            if self.path == "/v1/models":
                return self.send({"data": [{"id": Path(str(model)).name,
                                            "meta": {"n_vocab": N_VOCAB}}]})
            if self.path == "/slots":
                return self.send([{"id": 0, "is_processing": False}])
            if self.path == "/metrics":
                raw = b"llamacpp:tokens_predicted_total 1\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                return self.wfile.write(raw)
            self.send({"error": "not found"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                              or b"{}")
            if self.path == "/tokenize":
                if mode == "kill-parent":
                    os.kill(os.getppid(), signal.SIGKILL)
                words = str(body.get("content", "")).split()
                return self.send(list(range(len(words))) if mode == "tokenize-list"
                                 else {"tokens": list(range(len(words)))})
            if self.path == "/completion":
                with lock:
                    counter["n"] += 1
                    if state:
                        Path(state, "requests").write_text(str(counter["n"]))
                return self.completion(body)
            self.send({"error": "not found"}, 404)

        def completion(self, body: dict[str, Any]) -> None:
            n_prompt = len(body.get("prompt") or []) if isinstance(body.get("prompt"), list) \
                else len(str(body.get("prompt", "")).split())
            n = int(body.get("n_predict") or 1)
            prompt_ms, predicted_ms = TIMINGS.get(str(mode), TIMINGS["ok"])
            timings = {"prompt_n": n_prompt, "prompt_ms": prompt_ms, "predicted_n": n,
                       "predicted_ms": predicted_ms * n}
            final = {"content": "", "stop": True, "tokens_predicted": n,
                     "tokens_evaluated": n_prompt,
                     "timings": [timings] if mode == "timings-list" and isinstance(
                         body.get("prompt"), str) else timings}     # a list for a chat
            if not body.get("stream"):
                return self.send(final)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(n):
                self.chunk({"content": f" w{i}", "stop": False, "tokens_predicted": i + 1})
                time.sleep(1.0 if state and Path(state, "slow").exists() else 0.001)
            self.chunk(final)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def chunk(self, doc: dict[str, Any]) -> None:
            data = b"data: " + json.dumps(doc).encode() + b"\n\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    server = _Server(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    server.serve_forever()


# --- llama-bench ----------------------------------------------------------------------------

SAMPLES = {"ok": 1_000_000, "zero": 0, "negative": -1_000_000, "text": "fast",
           "fraction": 0.5, "absurd": 1}


def llama_bench(argv: list[str]) -> None:
    if "--help" in argv:
        print("usage: llama-bench [options]\n  -lm, --load-mode\n  --flash-attn <on|off|auto>\n"
              "  -d, --n-depth\n  -nopo, --no-op-offload\n  --no-warmup")
        return
    if "--list-devices" in argv:
        print("Available devices:")
        return
    if "--version" in argv:
        print("version: 9999 (build 9999, commit fake)\nbuilt with fake for test")
        return
    reps = int(_flag(argv, "-r") or 1)
    sample = SAMPLES[str(_flag(argv, "--fake", "ok"))]
    row = {"build_commit": "fake", "build_number": 9999, "model_type": "llama 135M Q4_1",
           "n_threads": 1, "samples_ns": [sample] * reps, "test_time": "2026-01-01T00:00:00Z"}
    print(json.dumps([row]))


if __name__ == "__main__":
    {"llama-server": llama_server, "llama-bench": llama_bench}[sys.argv[1]](sys.argv[2:])

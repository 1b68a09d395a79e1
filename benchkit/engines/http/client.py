"""What the HTTP engines share: a server process benchkit starts, and a small HTTP client.

`ManagedServer` runs a server benchkit starts itself (llama-server): on a free loopback
port, in its own process group, its output captured to a log file, ready when its
health URL answers 200, and always stopped (terminate, wait, kill), also on Ctrl-C or an
error: the engine session's `close()`, an `atexit` guard, a SIGTERM handler where nobody
else handles SIGTERM (a worker process being stopped) and, on Linux, a parent-death
signal, so that no server outlives the run.

`HttpClient` speaks JSON over HTTP with timeouts, and streams server-sent events (SSE) or
newline-delimited JSON, stamping every chunk with `time.perf_counter()` as it arrives and
doing nothing else per token: parsing happens after the stream ends, so that the client's
timestamps measure the server and the wire, not this client. Every transport problem
becomes one BenchkitError line that says what happened: connection refused, a timeout, an
HTTP error status with a short excerpt of its body, malformed JSON or SSE, a server that
died mid-request (with the tail of its log), a stream that stalled. Every request has
bounds: one deadline from its send to its last byte (`timeout_s`), at most
MAX_RESPONSE_BYTES of answer after decoding (a 13 MB gzip bomb is refused, not expanded),
lines cut in linear time; and no URL it records or says carries `user:password@`.

httpx is imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from benchkit.core import lifetime
from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC
from benchkit.core.streamlines import LineSplitter
from benchkit.core.urls import without_credentials

LOOPBACK = "127.0.0.1"
EXCERPT_CHARS = 200          # of an error response's body, in error lines
MAX_RESPONSE_BYTES = 64 << 20    # one answer, decoded: a stream of 100,000 tokens is ~30 MB
_IDENTITY = {"accept-encoding": "identity"}   # asked for; a server that compresses anyway
                                             # is read within MAX_RESPONSE_BYTES
TAIL_LINES = 3               # of a server's log, in error lines
STOP_GRACE_S = 10.0          # SIGTERM -> SIGKILL
DEATH_GRACE_S = 1.0          # a dropped connection: time for the process to be seen exiting
_BIND_FAILURES = ("couldn't bind", "address already in use", "failed to bind")

# Settings the engines that talk to a server share (JSON Schema of one value).
URL_SCHEMA = {"type": "string", "pattern": "^https?://[^\\s/]+", "minLength": 8,
              "x-error": "must be an http:// or https:// URL"}
SECONDS_SCHEMA = {"type": "number", "exclusiveMinimum": 0, "maximum": 86400,
                  "x-error": "must be a number of seconds > 0"}


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the OS picks it); the server binds it moments later.

    Another process could take it in between: `ManagedServer.start` retries on a bind
    failure with a new port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- a server process benchkit starts -------------------------------------------------------

_LIVE: set[ManagedServer] = set()


def _stop_all() -> None:
    """atexit: stop every server still running (an exception escaped every other guard)."""
    for server in list(_LIVE):
        server.stop()


atexit.register(_stop_all)
lifetime.at_parent_death(_stop_all)    # a watchdog that sees benchkit gone stops them too


def _stop_all_then_die(signum: int, frame: Any) -> None:  # noqa: ARG001
    """SIGTERM where nobody else handles it (a worker process being stopped): stop the
    servers, then end by the same signal, as the default action would have."""
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _guard_sigterm() -> None:
    """Make a SIGTERM that would kill this process silently stop its servers first
    (atexit does not run then). A handler someone installed is left alone."""
    import threading

    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop_all_then_die)


class ManagedServer:
    """One server process: started on a free loopback port, waited for, always stopped.

    `argv_for(port)` gives the command line for a port, so that a port taken between
    `free_port` and the server's bind can be retried with another one.
    """

    def __init__(self, name: str, argv_for: Callable[[int], list[str]], *,
                 health_path: str = "/health", env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv_for = argv_for
        self.health_path = health_path
        self.env = env
        self.port: int | None = None
        self.argv: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.start_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, ready_timeout_s: float, attempts: int = 3) -> None:
        """Start the process and wait until its health URL answers 200.

        Raises BenchkitError (the process stopped) if it exits first, or is not ready in
        `ready_timeout_s`; retries with a new port when the port was taken meanwhile."""
        for attempt in range(attempts):
            self._spawn(free_port())
            try:
                self._wait_ready(ready_timeout_s)
                return
            except BenchkitError:
                bind_failed = self.proc is not None and self.proc.poll() is not None and any(
                    m in self.log_tail(20).lower() for m in _BIND_FAILURES)
                self.stop()
                if not bind_failed or attempt == attempts - 1:
                    raise
            except BaseException:     # Ctrl-C while it loads
                self.stop()
                raise

    def _spawn(self, port: int) -> None:
        self.port = port
        self.argv = self.argv_for(port)
        fd, log = tempfile.mkstemp(prefix=f"benchkit-{self.name}-", suffix=".log")
        self.log_path = Path(log)
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                env=self.env, **_own_group())
        except OSError as exc:
            os.close(fd)
            self._remove_log()
            raise BenchkitError(f"cannot start {self.name} ({self.argv[0]}): "
                                f"{exc.strerror or exc}", field="binary") from None
        os.close(fd)       # the child holds its own copy
        _LIVE.add(self)
        _guard_sigterm()

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll the health URL with backoff; fail fast when the process exits."""
        import httpx

        start = time.perf_counter()
        deadline = start + timeout_s
        delay = 0.02
        url = self.base_url + self.health_path
        with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
            while True:
                CtrlC.check()
                if self.proc is not None and self.proc.poll() is not None:
                    raise BenchkitError(f"{self.name} exited before it was ready "
                                        f"({self.exit_description()}){self.tail_suffix()}")
                try:
                    if client.get(url).status_code == 200:
                        self.start_seconds = time.perf_counter() - start
                        return
                except httpx.HTTPError:
                    pass      # not listening yet, or still loading (503)
                now = time.perf_counter()
                if now >= deadline:
                    raise BenchkitError(f"{self.name} was not ready within {timeout_s:g} s "
                                        f"(GET {self.health_path} never answered 200; "
                                        f"ready_timeout_s){self.tail_suffix()}")
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 1.5, 0.5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self, grace_s: float = DEATH_GRACE_S) -> bool:
        """Whether the process has exited, waiting up to `grace_s` for it: a connection
        drops a moment before its process is seen gone."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_description(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        if rc is None:
            return "still running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit code {rc}"

    def died_error(self, during: str) -> BenchkitError:
        return BenchkitError(f"{self.name} exited during {during} "
                             f"({self.exit_description()}){self.tail_suffix()}")

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last `lines` non-empty lines of the server's output."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", errors="replace")
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return "\n".join(kept[-lines:])

    def tail_suffix(self) -> str:
        """`: last | log | lines` for an error line, or nothing."""
        tail = self.log_tail()
        if not tail:
            return ""
        return ": log: " + " | ".join(_clip(line, 160) for line in tail.splitlines())

    def stop(self) -> None:
        """Terminate the process group, wait, kill what is left; safe to call twice."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            # the group is signalled only while its leader is unreaped: its id is still ours
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                try:
                    proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass      # stuck in the kernel; SIGKILL is pending, nothing more to do
        _LIVE.discard(self)
        self._remove_log()

    def _remove_log(self) -> None:
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def _own_group() -> dict[str, Any]:
    """Popen arguments that put the child in its own process group (a terminal's Ctrl-C
    reaches benchkit only, which then stops the server itself) and, on Linux, make the
    kernel terminate it if benchkit dies without cleaning up."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = lifetime.preexec_die_with(os.getpid(), signal.SIGTERM)
    return kwargs


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if sys.platform == "win32":
            proc.kill() if sig != signal.SIGTERM else proc.terminate()
        else:
            os.killpg(proc.pid, sig)   # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError, OSError):
        pass


# --- the HTTP client ------------------------------------------------------------------------


@dataclass
class Stream:
    """A streamed response as it arrived: (perf_counter time, bytes) per network chunk."""

    t_submit: float
    chunks: list[tuple[float, bytes]]
    url: str
    t_end: float = 0.0

    def json_events(self, server: str = "the server") -> list[tuple[float, dict[str, Any]]]:
        """The server-sent events as JSON objects, up to OpenAI's `[DONE]`; an event that is
        not a JSON object, or one that carries an `error`, raises one line naming `server`."""
        out: list[tuple[float, dict[str, Any]]] = []
        for t, data in self.sse():
            if data.strip() == "[DONE]":
                break
            event = parse_json(data, self.url, "event stream")
            if not isinstance(event, dict):
                raise BenchkitError(f"{self.url} sent an event that is not a JSON object: "
                                    f"{data[:80]!r}")
            if "error" in event:
                err = event["error"]
                msg = err.get("message") if isinstance(err, dict) else err
                raise BenchkitError(f"{server} sent an error mid-stream ({self.url}): {msg}")
            out.append((t, event))
        return out

    def sse(self) -> list[tuple[float, str]]:
        """The `data` of each server-sent event, stamped with the arrival of its last byte.
        Comments (`:` pings) are dropped; an `event: error` event raises."""
        events: list[tuple[float, str]] = []
        data: list[str] = []
        kind = ""
        for t, line in self._lines():
            if not line:
                if data:
                    if kind == "error":
                        raise BenchkitError(f"{self.url} sent an error event: "
                                            f"{_clip(' '.join(data), EXCERPT_CHARS)}")
                    events.append((t, "\n".join(data)))
                data, kind = [], ""
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    kind = value
        if data:                       # the last event, when the stream ended without a blank line
            events.append((self.chunks[-1][0], "\n".join(data)))
        return events

    def ndjson(self) -> list[tuple[float, Any]]:
        """Each line as JSON (Ollama's streaming format), stamped as `sse` stamps events."""
        return [(t, parse_json(line, self.url, "stream line"))
                for t, line in self._lines() if line.strip()]

    def _lines(self) -> Iterable[tuple[float, str]]:
        """Each line with the arrival of the chunk that ended it, cut in linear time
        (benchkit.core.streamlines: one long line is not rescanned with every chunk)."""
        splitter = LineSplitter()
        for t, chunk in self.chunks:
            for line in splitter.feed(chunk):
                yield t, _decode(line.removesuffix(b"\r"), self.url)
        rest = splitter.rest()
        if rest:
            yield self.chunks[-1][0], _decode(rest.removesuffix(b"\r"), self.url)
            yield self.chunks[-1][0], ""

    def text(self) -> str:
        return b"".join(c for _, c in self.chunks).decode("utf-8", errors="replace")


class HttpClient:
    """JSON over HTTP to one server, with BenchkitError lines for every failure.

    `server` is the process behind the URL when benchkit started it: a dropped connection
    is then reported as that process's death, with its log's tail."""

    def __init__(self, base_url: str, name: str, *, timeout_s: float,
                 headers: dict[str, str] | None = None,
                 server: ManagedServer | None = None) -> None:
        import httpx

        self.request_base = base_url.rstrip("/")        # with any credentials: requests
        self.base_url = without_credentials(self.request_base)   # what is recorded, said
        self.name = name
        self.timeout_s = timeout_s
        self.server = server
        self._client = httpx.Client(
            base_url=self.request_base, headers={**_IDENTITY, **(headers or {})},
            trust_env=False, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))

    def close(self) -> None:
        self._client.close()

    def get_json(self, path: str) -> Any:
        return self._json("GET", path, None)[0]

    def post_json(self, path: str, body: Any) -> Any:
        return self._json("POST", path, body)[0]

    def timed_post(self, path: str, body: Any) -> tuple[Any, float]:
        """POST and parse JSON; also the request's wall time (submit -> whole response)."""
        return self._json("POST", path, body)

    def _json(self, method: str, path: str, body: Any) -> tuple[Any, float]:
        start, chunks, end = self._exchange(method, path, body, streaming=False)
        text = b"".join(c for _, c in chunks).decode("utf-8", errors="replace")
        return parse_json(text, self._url(path), "response"), end - start

    def stream(self, path: str, body: Any) -> Stream:
        """POST `body` and keep every chunk of the response with its arrival time."""
        start, chunks, end = self._exchange("POST", path, body, streaming=True)
        if not chunks:
            raise BenchkitError(f"{self._url(path)} answered an empty stream")
        return Stream(start, chunks, self._url(path), end)

    def _exchange(self, method: str, path: str, body: Any, *,
                  streaming: bool) -> tuple[float, list[tuple[float, bytes]], float]:
        """Send one request and read its whole answer, every chunk stamped on arrival:
        (send time, chunks, end time).

        `timeout_s` is one deadline for the whole request, send to last byte: a server
        that trickles a byte a second is stopped there, not held for as long as it keeps
        trickling (a silent one is stopped by the read timeout, the same `timeout_s`).
        At most MAX_RESPONSE_BYTES of the answer are taken, counted after decoding, so
        that a small compressed answer cannot expand into gigabytes. Per chunk this does
        a clock read, an append, two comparisons and a Ctrl-C check, nothing else."""
        import httpx

        what = f"{method} {path}" + (" (streaming)" if streaming else "")
        clock = time.perf_counter
        for attempt in range(2):
            chunks: list[tuple[float, bytes]] = []
            append = chunks.append
            answered, size = False, 0
            start = clock()
            deadline = start + self.timeout_s
            try:
                with self._client.stream(method, path, json=body) as r:
                    answered = True
                    if r.status_code >= 400:
                        raise status_error(self.name, self._url(path), r.status_code,
                                           _excerpt_of(r))
                    for chunk in r.iter_bytes():
                        t = clock()
                        append((t, chunk))
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES or t > deadline:
                            raise self._over(path, what, size)
                        if CtrlC.pending:
                            CtrlC.check()
                return start, chunks, clock()
            except httpx.HTTPError as exc:
                if attempt == 0 and self._stale(exc, answered=answered):
                    continue
                raise self._transport_error(exc, what, streaming=streaming) from None
        raise AssertionError("unreachable")   # the loop returns or raises

    def _over(self, path: str, what: str, size: int) -> BenchkitError:
        if size > MAX_RESPONSE_BYTES:
            return BenchkitError(f"{self._url(path)} answered more than "
                                 f"{MAX_RESPONSE_BYTES >> 20} MiB ({what}): not an answer "
                                 "benchkit reads")
        return BenchkitError(f"{self.name} at {self.base_url}: no complete answer within "
                             f"{self.timeout_s:g} s ({what}; timeout_s)")

    def _stale(self, exc: Exception, *, answered: bool) -> bool:
        """A kept-alive connection the server closed as the request went out: nothing was
        answered, the server is still there. Such a request is sent once more, on a new
        connection, with its timing restarted, as the OpenAI client libraries do
        (llama-server closes a connection after a stream longer than its 5 s keep-alive)."""
        import httpx

        if answered or not isinstance(exc, httpx.RemoteProtocolError):
            return False
        return self.server is None or self.server.alive()

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _transport_error(self, exc: Exception, what: str, *,
                         streaming: bool = False) -> BenchkitError:
        import httpx

        if self.server is not None and self.server.exited():
            return self.server.died_error(what)
        url = self.base_url
        if isinstance(exc, httpx.ConnectTimeout):
            return BenchkitError(f"{self.name} at {url}: connection timed out ({what})")
        if isinstance(exc, httpx.ConnectError):
            return BenchkitError(f"{self.name} at {url}: cannot connect ({_reason(exc)}); "
                                 f"is the server running there?")
        if isinstance(exc, httpx.ReadTimeout):
            if streaming:
                return BenchkitError(f"{self.name} at {url}: the stream stalled, no data for "
                                     f"{self.timeout_s:g} s ({what}; timeout_s)")
            return BenchkitError(f"{self.name} at {url}: no answer within {self.timeout_s:g} s "
                                 f"({what}; timeout_s)")
        if isinstance(exc, httpx.TimeoutException):
            return BenchkitError(f"{self.name} at {url}: timed out ({what}; timeout_s)")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return BenchkitError(f"{self.name} at {url}: the server closed the connection "
                                 f"mid-response ({what}: {_reason(exc)})")
        return BenchkitError(f"{self.name} at {url}: {type(exc).__name__}: {_reason(exc)} "
                             f"({what})")


def fetch(method: str, url: str, *, body: Any = None, timeout_s: float,
          limit: int = MAX_RESPONSE_BYTES) -> tuple[int, bytes]:
    """One request outside a client (a server's /metrics, /tokenize): its status and its
    decoded body, within the same bounds as `HttpClient`'s (one deadline, at most `limit`
    bytes); past them one BenchkitError line. httpx's own errors pass through."""
    import httpx

    end = time.perf_counter() + timeout_s
    shown = without_credentials(url)
    with httpx.stream(method, url, json=body, timeout=timeout_s, trust_env=False,
                      headers=_IDENTITY) as r:
        try:
            got = read_limited(r.iter_bytes(), limit, deadline=end)
        except TimeoutError:
            raise BenchkitError(f"{shown}: no complete answer within {timeout_s:g} s") from None
        if got is None:
            raise BenchkitError(f"{shown} answered more than {limit >> 20} MiB")
        return r.status_code, got


def read_limited(chunks: Iterable[bytes], limit: int, *,
                 deadline: float | None = None) -> bytes | None:
    """The decoded body from `chunks`, or None once it passes `limit` bytes (a compressed
    answer is never expanded without end); TimeoutError past `deadline` (perf_counter)."""
    got: list[bytes] = []
    size = 0
    for chunk in chunks:
        got.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError
    return b"".join(got)


def _excerpt_of(response: Any, limit: int = 1 << 16) -> str:
    """The first `limit` decoded bytes of an error answer's body, as text."""
    got: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        got.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(got)[:limit].decode("utf-8", errors="replace")


def status_error(name: str, url: str, status: int, body: str) -> BenchkitError:
    """`NAME: POST URL answered HTTP 500: <the error message or body excerpt>`."""
    return BenchkitError(f"{name}: {url} answered HTTP {status}: {error_excerpt(body)}")


def error_excerpt(body: str) -> str:
    """The error message of a JSON error body ({"error": {"message": ...}}), else the
    body's first characters, on one line."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail"))
        if isinstance(err, dict):
            err = err.get("message") or err
        if isinstance(err, str) and err:
            return _clip(err, EXCERPT_CHARS)
    return _clip(body, EXCERPT_CHARS) or "(empty body)"


def parse_json(text: str, url: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):      # RecursionError: nested past the parser
        raise BenchkitError(f"{url} answered malformed JSON in its {what}: "
                            f"{_clip(text, 80)!r}") from None


def api_key_headers(env_name: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>` from the environment variable `env_name`; the key
    itself is never recorded anywhere."""
    if not env_name:
        return {}
    key = os.environ.get(env_name)
    if not key:
        raise BenchkitError(f"the environment variable {env_name} (api_key_env) is not set",
                            field="api_key_env")
    return {"Authorization": f"Bearer {key}"}


def _decode(raw: bytes, url: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BenchkitError(f"{url} sent a stream that is not UTF-8: {raw[:60]!r}") from None


def _reason(exc: Exception) -> str:
    text = without_credentials(str(exc) or type(exc).__name__)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return _clip(text, 120)


def _clip(text: str, n: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[:n - 1] + "…"


@dataclass
class Timed:
    """Token events of a streamed generation, on the client's clock."""

    t_submit: float
    times: list[float] = field(default_factory=list)   # arrival of each token event
    counts: list[int] = field(default_factory=list)    # tokens in each event (usually 1)

    @property
    def n_tokens(self) -> int:
        return sum(self.counts)

    @property
    def ttft_s(self) -> float | None:
        return self.times[0] - self.t_submit if self.times else None

    @property
    def decode_s(self) -> float:
        """First token event -> last token event."""
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    @property
    def decode_tokens(self) -> int:
        """The tokens that arrived after the first event: the decode rate's numerator."""
        return self.n_tokens - (self.counts[0] if self.counts else 0)

    @property
    def total_s(self) -> float:
        return self.times[-1] - self.t_submit if self.times else 0.0

    def latencies(self) -> list[float]:
        """Each token event's gap to the previous one."""
        return [b - a for a, b in zip(self.times, self.times[1:])]

    def add(self, t: float, n: int) -> None:
        if n > 0:
            self.times.append(t)
            self.counts.append(n)

#!/usr/bin/env python3
"""How much load one benchkit process can drive: the load generator's own ceiling.

The serve workload's figures are the server's only while the client keeps up. This script
measures the client alone, against a trivial real streaming server on loopback that does
no inference (a child process speaking llama-server's streaming POST /completion, each
token its own chunked write on a TCP_NODELAY socket), so that every limit it hits is the
client's (or this machine's):

1. unpaced: the server writes tokens as fast as it can; the client's output tok/s at
   each number of concurrent streams is its throughput ceiling.
2. paced: each stream gets one token every --gap-ms (20 ms: 50 tok/s per stream, a fast
   decode); the client sustains N streams while the aggregate stays within 10% of N
   times the first (fewest-streams) row's rate per stream and its measured inter-token
   gap p99 stays within 5 ms of that row's (the server's own pacing jitter).

Output tok/s is every token over the level's wall time; steady tok/s counts the tokens
received in the middle 80% of the level (with a few requests per stream, the streams'
staggered starts and ends would otherwise read as a slower client), and the paced rule
uses it.

Each configuration runs --rounds times after one warmup round; figures are the median over
the rounds with their min-max range; time is perf_counter (monotonic) in this process, CPU
time is each process's user+system time (psutil) over the level's wall time. With --url, it
loads a real server instead (e.g. `llama-server -np 64` and --tokens 4), with the same
output and no server CPU figure.

    python scripts/loadgen_ceiling.py                          # both modes, defaults
    python scripts/loadgen_ceiling.py --streams 1,8,32,128 --rounds 3 --tokens 128
    python scripts/loadgen_ceiling.py --url http://127.0.0.1:8080 --tokens 4 --streams 16,64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit.workloads.serve import loadgen
from benchkit.core.stats import percentile  # noqa: E402

TOKEN = b'data: {"content": " tok", "stop": false}\n\n'


# --------------------------------------------------------------------------- the server

class _Stream(asyncio.Protocol):
    """One connection: HTTP/1.1 keep-alive, POST /completion streamed as chunked SSE."""

    def __init__(self, gap_s: float) -> None:
        self.gap_s, self.buf, self.transport = gap_s, b"", None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                           if h.lower().startswith(b"content-length:")), 0)
            if len(rest) < length:
                return
            body, self.buf = rest[:length], rest[length:]
            if not head.startswith(b"POST /completion"):
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            n = int(json.loads(body).get("n_predict", 16))
            asyncio.get_running_loop().create_task(self.respond(n))

    async def respond(self, n: int) -> None:
        t = self.transport
        t.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        frame = b"%x\r\n%s\r\n" % (len(TOKEN), TOKEN)
        for i in range(n):
            if t.is_closing():
                return
            t.write(frame)
            if self.gap_s:
                await asyncio.sleep(self.gap_s)
            elif i % 8 == 7:
                await asyncio.sleep(0)      # let the other streams write too
        final = (b'data: {"content": "", "stop": true, "tokens_predicted": %d, '
                 b'"tokens_evaluated": 4}\n\n' % n)
        t.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(final), final))


def serve(port: int, gap_ms: float) -> None:
    """The child process: serve until killed."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Stream(gap_ms / 1000), "127.0.0.1", port,
                                          backlog=4096)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


class Server:
    """The trivial server in a child process (its own core, where the machine has one)."""

    def __init__(self, gap_ms: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port),
                                      "--gap-ms", str(gap_ms)], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


# --------------------------------------------------------------------------- the client

def one_round(url: str, streams: int, tokens: int, per_stream: int,
              server: Server | None) -> dict[str, float]:
    """One closed-loop level of `streams` x `per_stream` requests; the client's figures."""
    import psutil

    me = psutil.Process()
    target = loadgen.Target(url=f"{url}/completion", protocol="llama-server", base_url=url)
    spec = loadgen.LoadSpec(concurrency=streams, requests=streams * per_stream, warmup=0,
                            max_tokens=tokens, timeout_s=120, stall_s=30)
    stamps: list[tuple[float, float, float]] = []

    def mark(rec: Any) -> None:      # CPU times at the first and last request's end
        stamps.append((time.perf_counter(), _cpu(me), server.cpu_s() if server else 0.0))

    c0, s0, t0 = _cpu(me), server.cpu_s() if server else 0.0, time.perf_counter()
    result = loadgen.run_level(target, [loadgen.Prompt(text="x")], spec, on_request=mark)
    t1, c1, s1 = stamps[-1]
    total = t1 - t0
    ok = [r for r in result.records if r.ok]
    out_tokens = sum(r.tokens_out for r in ok)
    gaps = [g for r in ok for g in r.gaps_s()]
    return {"tps": out_tokens / result.wall_s, "steady_tps": steady_tps(ok, result.wall_s),
            "rps": len(ok) / result.wall_s,
            "errors": len(result.records) - len(ok), "tokens": out_tokens,
            "client_cpu": (c1 - c0) / total, "server_cpu": (s1 - s0) / total,
            "client_us_per_token": 1e6 * (c1 - c0) / max(out_tokens, 1),
            "ttft_p50_ms": 1e3 * (percentile([r.ttft_s for r in ok], 50) or 0),
            "itl_p50_ms": 1e3 * (percentile(gaps, 50) or 0),
            "itl_p99_ms": 1e3 * (percentile(gaps, 99) or 0),
            "parse_us_per_token": 1e6 * result.parse_s / max(out_tokens, 1)}


def steady_tps(records: list[Any], wall_s: float) -> float:
    """Tokens received per second in the middle 80% of the level: the streams' staggered
    starts and ends (a few requests per stream) would otherwise read as a slower client."""
    lo, hi = 0.1 * wall_s, 0.9 * wall_s
    n = sum(1 for r in records for t in r.token_times_s if lo <= r.start_s + t <= hi)
    return n / (hi - lo) if hi > lo else 0.0


def _cpu(p: Any) -> float:
    t = p.cpu_times()
    return t.user + t.system


def measure(url: str, streams: int, tokens: int, per_stream: int, rounds: int,
            server: Server | None) -> dict[str, Any]:
    one_round(url, streams, tokens, 1, server)                       # warmup round
    runs = [one_round(url, streams, tokens, per_stream, server) for _ in range(rounds)]
    return {k: [r[k] for r in runs] for k in runs[0]}


def _fig(values: list[float], fmt: str = ",.0f") -> str:
    med = statistics.median(values)
    return f"{med:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def report(title: str, rows: list[tuple[int, dict[str, Any]]], gap_ms: float,
           has_server: bool) -> None:
    print(f"\n{title}")
    print("| streams | output tok/s | steady tok/s | requests/s | TTFT p50 ms | ITL p50 ms "
          "| ITL p99 ms "
          "| client CPU (cores) | client CPU µs/token |"
          + (" server CPU (cores) |" if has_server else "") + " parse µs/token | errors |")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if has_server else "") + "---|---|")
    for streams, m in rows:
        cells = [str(streams), _fig(m["tps"]), _fig(m["steady_tps"]), _fig(m["rps"], ",.1f"),
                 _fig(m["ttft_p50_ms"], ".2f"), _fig(m["itl_p50_ms"], ".2f"),
                 _fig(m["itl_p99_ms"], ".2f"),
                 _fig(m["client_cpu"], ".2f"), _fig(m["client_us_per_token"], ".1f")]
        if has_server:
            cells.append(_fig(m["server_cpu"], ".2f"))
        cells += [_fig(m["parse_us_per_token"], ".1f"), str(sum(m["errors"]))]
        print("| " + " | ".join(cells) + " |")
    if gap_ms:
        base_s, base = rows[0]
        per_stream = statistics.median(base["steady_tps"]) / base_s
        p99 = statistics.median(base["itl_p99_ms"])
        kept = [s for s, m in rows if statistics.median(m["steady_tps"]) >= 0.9 * s * per_stream
                and statistics.median(m["itl_p99_ms"]) <= p99 + 5 and not sum(m["errors"])]
        print(f"\nsustained with one token every {gap_ms:g} ms per stream (steady aggregate "
              f"within 10% of streams x the {base_s}-stream rate of {per_stream:,.1f} tok/s, "
              f"ITL p99 within 5 ms of its {p99:.2f} ms): "
              f"{max(kept) if kept else 'none'} concurrent streams of those tried")
    else:
        best = max(rows, key=lambda r: statistics.median(r[1]["tps"]))
        print(f"\nceiling: {statistics.median(best[1]['tps']):,.0f} output tok/s at "
              f"{best[0]} concurrent streams (median of the rounds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", default="1,8,32,128,256",
                    help="concurrent streams to try, comma-separated")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per request")
    ap.add_argument("--per-stream", type=int, default=4, help="requests per stream per round")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration")
    ap.add_argument("--gap-ms", type=float, default=None,
                    help="paced mode only, with this gap (default: unpaced, then 20 ms)")
    ap.add_argument("--url", help="a real llama-server to load instead of the trivial one")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.gap_ms or 0.0)
        return
    streams = [int(s) for s in args.streams.split(",")]
    print(f"loadgen ceiling: {args.tokens} tokens per request, {args.per_stream} requests per "
          f"stream per round, {args.rounds} rounds after 1 warmup round; figures: median "
          f"(min–max) over the rounds; clock: perf_counter; CPU: user+system seconds per "
          f"wall second (1.00 = one core busy); python {sys.version.split()[0]}, "
          f"{_cores()} logical cores")
    if args.url:
        rows = [(s, measure(args.url, s, args.tokens, args.per_stream, args.rounds, None))
                for s in streams]
        report(f"against {args.url}", rows, 0.0, False)
        return
    for gap in ([args.gap_ms] if args.gap_ms is not None else [0.0, 20.0]):
        server = Server(gap)
        try:
            rows = [(s, measure(server.url, s, args.tokens, args.per_stream, args.rounds,
                                server)) for s in streams]
        finally:
            server.stop()
        report("unpaced: the server writes tokens as fast as it can" if not gap else
               f"paced: one token every {gap:g} ms per stream", rows, gap, True)


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()

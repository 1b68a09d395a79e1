"""What parsing one long streamed line costs: CPU time against the line's length.

A server can stream one event of tens of megabytes (a token of 50 MB of text). The line
is parsed after the request, as a serve level and the HTTP engines parse every stream:
`benchkit.workloads.serve.streams.parse_record` (a serve request) and
`benchkit.engines.http.client.Stream.sse` (the HTTP engines), the line arriving in
64 KiB network pieces. Splitting lines used to copy the unfinished line with every piece
(32 s at 50 MB, minutes at 200 MB); it is linear now, so the time per MB stays flat as
the line grows.

Each size is parsed `--reps` times; the script prints the median and the range (min-max)
of the CPU seconds of this process (time.process_time), and the seconds per MB.

    python scripts/stream_parse_cost.py --sizes 10,50,200 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

PIECE = 64 << 10


def pieces(mb: int) -> list[bytes]:
    """One SSE token event of `mb` MB of text, then the end, in 64 KiB pieces."""
    event = (b'data: {"choices": [{"text": "' + b"x" * (mb << 20) + b'", "index": 0}]}\n\n'
             b'data: {"choices": [{"text": "", "index": 0, "finish_reason": "length"}]}\n\n'
             b"data: [DONE]\n\n")
    return [event[i:i + PIECE] for i in range(0, len(event), PIECE)]


def serve_parse(chunks: list[bytes]) -> Callable[[], None]:
    from benchkit.workloads.serve.loadgen import RequestRecord
    from benchkit.workloads.serve.streams import parse_record

    def run() -> None:
        rec = RequestRecord(index=0, stamps=[float(i) for i in range(len(chunks))],
                            chunks=list(chunks))
        parse_record("openai-completions", rec)
        assert rec.error is None and rec.tokens_out == 1, rec.detail

    return run


def engine_parse(chunks: list[bytes]) -> Callable[[], None]:
    from benchkit.engines.http.client import Stream

    def run() -> None:
        events = Stream(0.0, [(float(i), c) for i, c in enumerate(chunks)], "http://x").sse()
        assert len(events) == 3

    return run


def cpu_seconds(fn: Callable[[], None], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        out.append(time.process_time() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50,200", help="line lengths in MB")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU seconds (time.process_time) to parse one streamed line, median [min-max] of "
          f"{args.reps} runs, pieces of {PIECE >> 10} KiB")
    print(f"{'line':>8}  {'serve parse_record':>26}  {'s/MB':>7}  {'engine Stream.sse':>26}  "
          f"{'s/MB':>7}")
    for mb in (int(s) for s in args.sizes.split(",")):
        chunks = pieces(mb)
        row = [f"{mb:>5} MB"]
        for make in (serve_parse, engine_parse):
            t = cpu_seconds(make(chunks), args.reps)
            med = statistics.median(t)
            row += [f"{med:8.3f} s [{min(t):.3f}-{max(t):.3f}]", f"{med / mb:7.4f}"]
        print("  ".join(row))


if __name__ == "__main__":
    main()

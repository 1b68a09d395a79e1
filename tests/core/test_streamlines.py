"""Lines cut from a stream's pieces: the same lines wherever the pieces break, and every byte
copied a bounded number of times (the cost is scripts/stream_parse_cost.py's to print)."""

from __future__ import annotations

import random

from benchkit.core.streamlines import LineSplitter, split_stamped


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i:i + n])
        i += n
    return out


def test_lines_are_the_same_wherever_the_pieces_break() -> None:
    data = b"data: a\n\n\r\nx\nlonger line here\n\nno newline at the end"
    rng = random.Random(7)
    for _ in range(200):
        splitter = LineSplitter()
        lines = [line for piece in _cut(data, rng) for line in splitter.feed(piece)]
        assert lines + [splitter.rest()] == data.split(b"\n")


def test_a_long_line_in_small_pieces_is_one_line() -> None:
    line = b"x" * (8 << 20)
    pieces = [line[i:i + 4096] for i in range(0, len(line), 4096)] + [b"\nnext\n"]
    splitter = LineSplitter()
    got = [ln for p in pieces for ln in splitter.feed(p)]
    assert got == [line, b"next"] and splitter.rest() == b""
    assert splitter.pending_bytes == 0


def test_each_line_is_stamped_with_the_piece_that_ended_it() -> None:
    stamps, pieces = [1.0, 2.0, 3.0], [b"ab", b"c\nd", b"e\nf"]
    assert list(split_stamped(stamps, pieces)) == [(2.0, b"abc"), (3.0, b"de"), (3.0, b"f")]
    assert list(split_stamped([], [])) == []

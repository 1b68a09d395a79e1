"""Bytes that arrive in pieces, cut into lines in time linear in their length.

A stream (a server's events, a worker's JSON lines) comes in network-sized pieces. The
obvious `buf += piece; *lines, buf = buf.split(b"\\n")` copies and rescans the unfinished
line with every piece: a line of n bytes in pieces of k costs n^2 / k, and one 50 MB
streamed line took 32 s to parse (minutes at 200 MB). Here an unfinished line is a list
of pieces, joined once when its newline arrives: every byte is copied a bounded number of
times, whatever the length of the line.
"""

from __future__ import annotations

from typing import Iterator


class LineSplitter:
    """Feed pieces, get the complete lines (without their newline) as they finish."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self.pending_bytes = 0          # the unfinished line's length so far

    def feed(self, piece: bytes) -> list[bytes]:
        """The lines `piece` completes (none when it holds no newline)."""
        if b"\n" not in piece:
            if piece:
                self._pieces.append(piece)
                self.pending_bytes += len(piece)
            return []
        head, *middle = piece.split(b"\n")
        first = b"".join([*self._pieces, head]) if self._pieces else head
        tail = middle.pop()
        self._pieces = [tail] if tail else []
        self.pending_bytes = len(tail)
        return [first, *middle]

    def rest(self) -> bytes:
        """What came after the last newline (the end of a stream without one)."""
        out = b"".join(self._pieces)
        self._pieces, self.pending_bytes = [], 0
        return out


def split_stamped(stamps: list[float], pieces: list[bytes]) -> Iterator[tuple[float, bytes]]:
    """(arrival of the piece that ended it, line) for every line of a stamped stream; the
    end of the stream without a newline, if any, stamped with the last piece."""
    splitter = LineSplitter()
    for t, piece in zip(stamps, pieces):
        for line in splitter.feed(piece):
            yield t, line
    rest = splitter.rest()
    if rest and stamps:
        yield stamps[-1], rest

"""Which process writes a result file: a lock a run holds for its whole life.

A run rewrites its file after every case; `--resume` on the same file while that run is
still going would race it (two writers, each replacing the other's cases). So a run
takes an exclusive lock on a small file beside its result (`.NAME.json.lock`, with the
writer's pid in it) and holds it until it ends. The lock is the kernel's (`flock`, or
`msvcrt.locking` on Windows): it is released however the writer ends, a SIGKILL or a
power cut included, so a run killed hard is resumable at once, and a writer still alive
is never mistaken for a dead one (a pid alone can be reused).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from benchkit.core.errors import BenchkitError


def lock_path(result: str | os.PathLike[str]) -> Path:
    """The lock file beside `result`: hidden, so that folder listings of results skip it."""
    p = Path(result)
    return p.with_name(f".{p.name}.lock")


class WriterLock:
    """`with WriterLock(path):` while writing the result at `path`; raises one error line
    naming the file when another live process holds it."""

    def __init__(self, result: str | os.PathLike[str]) -> None:
        self.result = str(result)
        self.path = lock_path(result)
        self.fh: IO[str] | None = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip()[:20] or "unknown"
            fh.close()
            raise BenchkitError(f"another benchkit (pid {holder}) is still writing this run: "
                                "wait for it to end, or stop it, before resuming",
                                file=self.result)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self.fh = fh

    def release(self) -> None:
        if self.fh is None:
            return
        fh, self.fh = self.fh, None
        try:
            self.path.unlink(missing_ok=True)     # while still held: nobody locks a stale one
        finally:
            fh.close()                            # closing releases the lock


def _try_lock(fh: IO[str]) -> bool:
    """An exclusive lock on `fh` without waiting; whether it was taken."""
    try:
        import fcntl
    except ImportError:            # Windows
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:                # a file system without locks (some network mounts)
        return True

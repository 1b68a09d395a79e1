"""The lock of a result file's writer: another process cannot take it while the writer
lives, and it is free the moment the writer dies, SIGKILL included (the kernel releases
it). Real processes; the waits are for states."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.results.lock import WriterLock, lock_path

HOLDER = """\
import sys, threading
from pathlib import Path
from benchkit.results.lock import WriterLock
lock = WriterLock(sys.argv[1])
lock.acquire()
Path(sys.argv[2]).write_text("held")
threading.Event().wait()
"""


def test_a_live_writer_keeps_the_file_and_a_killed_one_frees_it(tmp_path: Path) -> None:
    result, held = tmp_path / "run.json", tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(result), str(held)])
    try:
        end = time.monotonic() + 60
        while not held.exists():
            assert time.monotonic() < end, "the holder never took the lock"
            time.sleep(0.02)
        with pytest.raises(BenchkitError) as err:
            WriterLock(result).acquire()
        assert str(err.value) == (f"{result}: another benchkit (pid {holder.pid}) is still "
                                  "writing this run: wait for it to end, or stop it, before "
                                  "resuming")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    with WriterLock(result) as lock:          # free at once: the kernel released it
        assert lock_path(result).read_text() == str(os.getpid())
    assert not lock_path(result).exists()     # the lock file goes with its writer
    assert lock_path(result).name == ".run.json.lock"

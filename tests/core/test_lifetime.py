"""A child that must die with benchkit dies with it, SIGKILL included: through the kernel's
parent-death signal (Linux), and through the watchdog where that is not available (forced
here on Linux, so that both ways are tried on real processes). Every wait is for a state
(a file written, a process gone), bounded by WAIT_S as a failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

WAIT_S = 60

CHILD = """\
import sys, threading
from pathlib import Path
from benchkit.core import lifetime
parent, mode, marks = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
if mode == "watchdog":
    lifetime.parent_death_signal = lambda sig: False      # as where prctl is not available
    lifetime.WATCH_INTERVAL_S = 0.05
lifetime.at_parent_death(lambda: (marks / "cleaned").write_text("yes"))
lifetime.die_with_parent(parent)
(marks / "ready").write_text("ready")
threading.Event().wait()
"""

PARENT = """\
import os, subprocess, sys, threading
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2],
                          sys.argv[3]])
print(child.pid, flush=True)
threading.Event().wait()
"""


def _wait(what: str, done) -> None:
    end = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("mode", ["kernel", "watchdog"])
def test_a_child_dies_with_a_parent_killed_by_sigkill(tmp_path: Path, mode: str) -> None:
    if mode == "kernel" and not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, mode, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        _wait("the child set itself up", lambda: (tmp_path / "ready").exists())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=WAIT_S)
        _wait(f"the child {child} ended with its parent", lambda: _gone(child))
    finally:
        if parent.poll() is None:
            parent.kill()
    # the watchdog runs the cleanups (the servers' stop); the kernel's signal ends at once
    assert (tmp_path / "cleaned").exists() == (mode == "watchdog")


def test_a_parent_gone_before_the_child_asked_ends_the_child_at_once(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(2**22 + 12345), "kernel",
                           str(tmp_path)], timeout=WAIT_S)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "ready").exists()

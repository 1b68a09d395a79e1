"""Child processes that die with benchkit, however benchkit ends.

benchkit starts processes of its own: a worker per engine configuration, and servers
(llama-server) inside the worker. A Ctrl-C or a SIGTERM is handled (the worker and its
servers are stopped); a SIGKILL of benchkit, or an out-of-memory kill, is not handled by
anyone, and without more the worker went on measuring and the server went on serving,
for as long as the level lasted (an hour for `duration: 1h`).

Two ways, the first where the kernel has it:

- Linux: the parent-death signal (`prctl(PR_SET_PDEATHSIG)`, through ctypes): the kernel
  sends it to the child the moment its parent ends. A parent that ended between the fork
  and the prctl call is caught by comparing `getppid()` with the parent's pid afterwards.
- elsewhere (or if prctl fails): a watchdog thread that looks at `getppid()` twice a
  second; when the parent is gone it runs the cleanups registered with
  `at_parent_death` (the HTTP engines stop the servers they started) and ends the
  process.

The standard library only, and nothing of benchkit: the worker's first lines call this.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

PR_SET_PDEATHSIG = 1          # linux/prctl.h
WATCH_INTERVAL_S = 0.5
_CLEANUPS: list[Callable[[], None]] = []


def at_parent_death(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` before the watchdog ends this process (where it is the watchdog that
    notices the parent's death; with the kernel's signal, children die by their own)."""
    if cleanup not in _CLEANUPS:
        _CLEANUPS.append(cleanup)


def parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent ends (Linux only).
    Whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int, sig: int = signal.SIGKILL if hasattr(signal, "SIGKILL")
                    else signal.SIGTERM, *, watchdog: bool | None = None) -> None:
    """End this process when `parent` (the pid that started it) ends: the kernel's signal
    `sig` where it has one, else (or when `watchdog` is true) a watchdog thread. A parent
    already gone ends this process now."""
    kernel = parent_death_signal(sig)
    if os.getppid() != parent:         # the parent ended before the signal was asked for
        _end(sig)
    if watchdog or (watchdog is None and not kernel):
        threading.Thread(target=watch_parent, args=(parent, sig), daemon=True,
                         name="benchkit-parent-watchdog").start()


def watch_parent(parent: int, sig: int, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Until `parent` is no longer this process's parent; then the cleanups, then the end."""
    stop = threading.Event()
    while os.getppid() == parent:
        stop.wait(interval_s)
    _end(sig)


def _end(sig: int) -> None:
    for cleanup in list(_CLEANUPS):
        try:
            cleanup()
        except Exception:  # noqa: BLE001 - the process ends either way
            pass
    try:
        os.kill(os.getpid(), sig)
    finally:
        os._exit(128 + int(sig))


def preexec_die_with(parent: int, sig: int) -> Callable[[], None]:
    """A `preexec_fn` for a native child (a server): the kernel's parent-death signal, set
    between fork and exec, and an immediate end when the parent is already gone."""

    def setup() -> None:
        parent_death_signal(sig)
        if os.getppid() != parent:
            os._exit(1)

    return setup

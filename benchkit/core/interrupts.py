"""Interruptions that are never lost inside a native library's callback.

Python runs signal handlers between bytecodes of the main thread, and that includes
llama.cpp's log callback while llama.cpp calls it; an exception raised there is printed
and dropped by ctypes, and the run would go on. Under `guard()` the handlers for SIGINT
(Ctrl-C), SIGTERM and SIGHUP only note the signal, and `CtrlC.check()` raises
`Interrupted` at the next safe point: after each decode, after each load or context
creation, and in the runner's loop while a worker process measures. `Interrupted` is a
KeyboardInterrupt, so every ending path treats the three signals alike, and it carries
the signal's name for the result file (`interrupted_by`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                if s is not None)
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal (`name`: SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, name: str = "SIGINT") -> None:
        super().__init__(name)
        self.name = name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.name, 130)


class CtrlC:
    """The noted signal, raised as Interrupted at the next safe point."""

    pending: str | None = None

    @staticmethod
    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def note(signum: int, frame: Any) -> None:  # noqa: ARG001
            CtrlC.pending = signal.Signals(signum).name

        previous = {s: signal.signal(s, note) for s in SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        CtrlC.check()

    @staticmethod
    def check() -> None:
        if CtrlC.pending:
            name, CtrlC.pending = CtrlC.pending, None
            raise Interrupted(name)


interrupt_guard = CtrlC.guard

"""The process source: RSS and CPU time of the benchmark process and its children
(psutil), and the exact peak RSS from the kernel's high-water mark on Linux."""

from __future__ import annotations

import time
from typing import Any

from benchkit.run.telemetry.span import Span

CHILDREN_EVERY_S = 1.0          # how often the process tree is re-listed


# --------------------------------------------------------------------------- process

class ProcessSource:
    """RSS and CPU time of the benchmark process and its children (psutil)."""

    def __init__(self, pid: int, *, reset_peak: bool = True) -> None:
        self.pid, self.reset_peak = pid, reset_peak
        self.proc: Any = None
        self.children: list[Any] = []
        self.listed_at = -1e9
        self.hwm_method: str | None = None
        self.hwm_error: str | None = None
        self.error: str | None = None

    def open(self) -> None:
        """Find the process and list its children (the NVIDIA source looks for them)."""
        import psutil

        try:
            self.proc = psutil.Process(self.pid)
        except psutil.Error as exc:
            self.error = f"process {self.pid}: {exc}"
            return
        self._children()

    def pids(self) -> set[int]:
        """The process and its children as last listed."""
        return {self.pid, *(c.pid for c in self.children)}

    def mark(self) -> None:
        """Reset the kernel's peak RSS (Linux >= 4.0: clear_refs 5) so the next high-water
        mark is this window's."""
        if not self.reset_peak or self.proc is None:
            return
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.hwm_method = "kernel high-water mark (VmHWM), reset at the window start"
        except OSError as exc:
            self.hwm_method = None
            self.hwm_error = f"cannot reset the peak RSS: {exc.strerror or exc}"

    def read(self) -> dict[str, Any] | None:
        import psutil

        if self.proc is None:
            return None
        try:
            with self.proc.oneshot():
                rss = self.proc.memory_info().rss
                t = self.proc.cpu_times()
            cpu = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return None
        tree_rss, tree_cpu = rss, cpu
        for child in self._children():
            try:
                ct = child.cpu_times()
                tree_rss += child.memory_info().rss
                tree_cpu += ct.user + ct.system
            except psutil.Error:
                continue
        return {"t": time.perf_counter(), "rss": rss, "tree_rss": tree_rss, "cpu_s": tree_cpu,
                "hwm": vm_hwm(self.pid), "children": len(self.children)}

    def _children(self) -> list[Any]:
        import psutil

        now = time.perf_counter()
        if now - self.listed_at >= CHILDREN_EVERY_S:
            self.listed_at = now
            try:
                self.children = self.proc.children(recursive=True)
            except psutil.Error:
                self.children = []
        return self.children

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        rows = span.of("process")
        if self.error or len(rows) < 2:
            why = self.error or "the process could not be read (it exited?)"
            return {"memory": {"unavailable": why}, "cpu": {"unavailable": why}}
        return {"memory": self._memory(rows), "cpu": self._cpu(rows)}

    def _memory(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Peak RSS over the window. The window's first reading is taken just before
        its peak is reset, so its high-water mark belongs to what came before."""
        sampled = max(r["rss"] for r in rows)
        marks = [r["hwm"] for r in rows[1:] if r["hwm"] is not None]
        hwm = max(marks) if self.hwm_method and marks else None
        out = {"pid": self.pid, "rss_start_bytes": rows[0]["rss"], "rss_end_bytes": rows[-1]["rss"],
               "peak_rss_bytes": max(sampled, hwm or 0),
               "peak_rss_method": self.hwm_method if hwm else
               "peak of the samples (a lower bound: a peak between samples is missed)",
               "peak_tree_rss_bytes": max(r["tree_rss"] for r in rows),
               "children": max(r["children"] for r in rows)}
        if not hwm and self.hwm_error:
            out["missing"] = {"kernel_peak": self.hwm_error}
        return out

    def _cpu(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """CPU seconds over wall seconds between the first and last reading that found
        the process (a process that exits early is measured while it lived).

        The sum of the rises between readings, not last minus first: a child that exits
        without being reaped by the process takes its CPU time out of the tree's total
        (llama-server between two readings, say), and the difference would go down, even
        below zero. What a child spent after its last reading is missed: a lower bound."""
        import psutil

        cpu_s = sum(max(b["cpu_s"] - a["cpu_s"], 0.0) for a, b in zip(rows, rows[1:]))
        wall = rows[-1]["t"] - rows[0]["t"]
        return {"cpu_seconds": cpu_s, "wall_seconds": wall,
                "percent": 100 * cpu_s / wall if wall > 0 else None,
                "logical_cores": psutil.cpu_count() or 1,
                "note": "process and its children (a child's time after its last reading is "
                        "missed); 100% = one logical core busy"}


def vm_hwm(pid: int) -> int | None:
    """VmHWM of /proc/PID/status in bytes (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None

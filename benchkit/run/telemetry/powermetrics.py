"""The powermetrics source: Apple Silicon CPU, GPU and ANE power (root only), its plist
stream and text output parsed, energy integrated over the window."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from benchkit.run.telemetry.span import Span


# --------------------------------------------------------------------------- powermetrics

class PowermetricsSource:
    """Apple Silicon power through `powermetrics` (root only), in plist format."""

    def __init__(self, interval_s: float) -> None:
        self.interval_ms = max(int(interval_s * 1000), 10)
        self.reason: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self._reader: threading.Thread | None = None

    def open(self) -> None:
        self.reason = powermetrics_unavailable()
        if self.reason:
            return
        cmd = ["powermetrics", "--samplers", "cpu_power,gpu_power", "-i",
               str(self.interval_ms), "-f", "plist"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read_stream, daemon=True)
        self._reader.start()

    def _read_stream(self) -> None:
        """powermetrics writes one plist per sample, separated by NUL bytes."""
        assert self.proc is not None and self.proc.stdout is not None
        pending = b""
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            docs, pending = split_plist_stream(pending + chunk)
            for doc in docs:
                sample = parse_powermetrics_plist(doc)
                if sample:
                    self.samples.append((time.perf_counter(), sample))

    def read(self) -> None:
        return None

    def close(self, t: float) -> None:
        """Wait (up to three intervals) for the sample that covers `t`, then stop."""
        if self.proc is None:
            return
        deadline = time.perf_counter() + 3 * self.interval_ms / 1000
        while time.perf_counter() < deadline and not any(ts >= t for ts, _ in self.samples):
            time.sleep(self.interval_ms / 4000)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def summarize(self, span: Span) -> dict[str, Any]:
        if self.reason:
            return {"unavailable": self.reason}
        joules = powermetrics_energy(self.samples, span.t0, span.t1)
        if joules is None:
            return {"unavailable": "powermetrics gave no sample covering the window"}
        out = {"energy_by_unit_j": joules, "counted": "combined (CPU + GPU + ANE)"}
        return {**out, **span.per_token(joules.get("combined"))}


def powermetrics_unavailable() -> str | None:
    """Why powermetrics cannot be run here, or None."""
    if sys.platform != "darwin":
        return f"not macOS ({sys.platform}): powermetrics is Apple's tool"
    if shutil.which("powermetrics") is None:
        return "powermetrics not found on PATH"
    if os.geteuid() != 0:
        return "powermetrics needs root: run benchkit with sudo to measure Apple Silicon power"
    return None


def split_plist_stream(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete plist documents of a powermetrics stream, and the unfinished rest."""
    *docs, rest = data.split(b"\x00")
    return [d.strip() for d in docs if d.strip()], rest


_POWER_KEYS = {"cpu": "cpu_power", "gpu": "gpu_power", "ane": "ane_power",
               "combined": "combined_power"}


def parse_powermetrics_plist(doc: bytes) -> dict[str, Any] | None:
    """One sample: its elapsed seconds and power in W per unit (CPU, GPU, ANE, combined).

    Apple Silicon's plist puts cpu_power / gpu_power / ane_power / combined_power (mW)
    in `processor`; gpu_power may also be in `gpu`. combined is summed when absent.
    """
    import plistlib

    try:
        d = plistlib.loads(doc)
    except Exception:  # noqa: BLE001 - plistlib raises several types on a broken document
        return None
    proc, gpu = d.get("processor") or {}, d.get("gpu") or {}
    watts = {}
    for unit, key in _POWER_KEYS.items():
        v = proc.get(key, gpu.get(key) if unit == "gpu" else None)
        if isinstance(v, (int, float)):
            watts[unit] = v / 1000
    if "combined" not in watts and watts:
        watts["combined"] = sum(watts.get(u, 0.0) for u in ("cpu", "gpu", "ane"))
    elapsed = d.get("elapsed_ns")
    if not watts or not isinstance(elapsed, int):
        return None
    return {"elapsed_s": elapsed / 1e9, "watts": watts}


_TEXT_SAMPLE = re.compile(r"\*\*\* Sampled system activity .*?\(([\d.]+)\s*ms elapsed\)")
_TEXT_POWER = re.compile(r"^(CPU|GPU|ANE|Combined) Power(?: \([^)]*\))?:\s*([\d.]+)\s*mW",
                         re.MULTILINE)


def parse_powermetrics_text(text: str) -> list[dict[str, Any]]:
    """Samples of powermetrics' default text output (same shape as the plist parser's);
    a unit's first power line in a sample counts (GPU Power is printed twice)."""
    heads = list(_TEXT_SAMPLE.finditer(text))
    out = []
    for i, head in enumerate(heads):
        body = text[head.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        watts: dict[str, float] = {}
        for unit, mw in _TEXT_POWER.findall(body):
            watts.setdefault(unit.lower(), float(mw) / 1000)
        if watts:
            out.append({"elapsed_s": float(head.group(1)) / 1000, "watts": watts})
    return out


def powermetrics_energy(samples: list[tuple[float, dict[str, Any]]], t0: float,
                        t1: float) -> dict[str, float] | None:
    """Joules per unit in [t0, t1]: each sample's power times the part of its interval
    (ending at its arrival time) that lies in the window."""
    joules: dict[str, float] = {}
    covered = 0.0
    for t, s in samples:
        overlap = min(t, t1) - max(t - s["elapsed_s"], t0)
        if overlap <= 0:
            continue
        covered += overlap
        for unit, w in s["watts"].items():
            joules[unit] = joules.get(unit, 0.0) + w * overlap
    return joules if covered > 0 else None

"""The RAPL source: Linux powercap energy counters of the CPU, wraparound handled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchkit.run.telemetry.span import Span

RAPL_ROOT = "/sys/class/powercap"


# --------------------------------------------------------------------------- RAPL

class RaplSource:
    """Linux powercap RAPL zones: cumulative energy counters, unwrapped at each reading."""

    def __init__(self, root: str | os.PathLike[str] = RAPL_ROOT) -> None:
        self.root = Path(root)
        self.zones: list[dict[str, Any]] = []
        self.reason: str | None = None
        self._last: dict[str, int] = {}
        self._offset: dict[str, int] = {}

    def open(self) -> None:
        self.zones, self.reason = rapl_zones(self.root)

    def read(self) -> dict[str, int] | None:
        if self.reason:
            return None
        out = {}
        for z in self.zones:
            try:
                raw = int((z["path"] / "energy_uj").read_text())
            except (OSError, ValueError):
                return None
            out[z["id"]] = self._unwrap(z, raw)
        return out

    def _unwrap(self, z: dict[str, Any], raw: int) -> int:
        """The counter made monotonic: a smaller value than the last one has wrapped at
        max_energy_range_uj (readings come far faster than a wrap: a 262 kJ range lasts
        over 40 minutes at 100 W)."""
        key = z["id"]
        last = self._last.get(key)
        if last is not None and raw < last and z["max_range_uj"]:
            self._offset[key] = self._offset.get(key, 0) + z["max_range_uj"]
        self._last[key] = raw
        return raw + self._offset.get(key, 0)

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        if self.reason:
            return {"unavailable": self.reason}
        rows = span.of("rapl")
        if len(rows) < 2:
            return {"unavailable": "fewer than two RAPL readings in the window"}
        zones = [{"zone": z["id"], "name": z["name"],
                  "energy_j": (rows[-1][z["id"]] - rows[0][z["id"]]) / 1e6}
                 for z in self.zones]
        packages = [z["energy_j"] for z, info in zip(zones, self.zones) if info["package"]]
        return {"zones": zones, "counted": "package zones (core and uncore are inside them; "
                "dram and psys are listed, not added)",
                **span.per_token(sum(packages) if packages else None)}


def rapl_zones(root: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The readable intel-rapl zones under `root` (a /sys/class/powercap tree), or why none."""
    dirs = sorted(p for p in root.glob("intel-rapl:*") if (p / "energy_uj").exists())
    if not dirs:
        return [], f"absent: no intel-rapl:* zone with energy_uj under {root}"
    zones = []
    for d in dirs:
        try:
            int((d / "energy_uj").read_text())
        except PermissionError:
            return [], (f"not readable: permission denied on {d / 'energy_uj'} (root only "
                        "on current kernels; run as root or make it readable)")
        except (OSError, ValueError) as exc:
            return [], f"not readable: {d / 'energy_uj'}: {exc}"
        name = _read_text(d / "name") or d.name
        zones.append({"id": d.name, "path": d, "name": name,
                      "package": d.name.count(":") == 1 and name.startswith("package"),
                      "max_range_uj": _read_int(d / "max_energy_range_uj")})
    return zones, None


def _read_text(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def _read_int(p: Path) -> int | None:
    text = _read_text(p)
    return int(text) if text and text.isdigit() else None

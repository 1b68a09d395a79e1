"""The chip database (`benchkit/data/chips.yaml`): specs of Apple Silicon chips and GPUs.

Projections need each chip's memory bandwidth, compute and memory sizes; the environment
module needs to turn what a machine reports ("Apple M4 Max" with 40 GPU cores, "NVIDIA
H100 80GB HBM3") into one stable id. Both read the same file, so a chip added there is
known everywhere. Every figure in the file names its source.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from benchkit.errors import BenchkitError

DATA_FILE = "benchkit/data/chips.yaml"
VENDORS = ("apple", "nvidia", "amd")
BACKENDS = ("metal", "cuda", "hip")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Chip:
    """One chip configuration; `gpu_cores` counts Apple GPU cores, NVIDIA SMs or AMD CUs."""

    id: str
    name: str
    vendor: str
    family: str
    gpu_cores: int
    bandwidth_gbs: float
    fp32_tflops: float | None
    gpu_clock_mhz: float | None
    memory_gb: tuple[float, ...]
    multi_die: bool
    sources: Mapping[str, str]
    backend: str = "metal"
    matrix_tflops: float | None = None
    names: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """Short display name: "M4 Max" for Apple parts, the full name for GPUs."""
        return self.name.removeprefix("Apple ")

    @property
    def core_unit(self) -> str:
        """What `gpu_cores` counts, for tables that mix vendors."""
        return {"apple": "GPU cores", "nvidia": "SMs", "amd": "CUs"}[self.vendor]

    def source(self, field_name: str) -> str:
        """Where a figure comes from (the field's own source, else the chip's general one)."""
        return self.sources.get(field_name) or self.sources.get("all", "")


def _data_text(path: str | Path | None) -> tuple[str, str]:
    """The database's text and the name errors should show."""
    if path is None:
        text = resources.files("benchkit").joinpath("data/chips.yaml").read_text(encoding="utf-8")
        return text, DATA_FILE
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8"), str(p)
    except OSError as exc:
        raise BenchkitError(f"cannot read chip database: {exc.strerror}", file=str(p)) from None


def _number(entry: dict[str, Any], key: str, where: str, file: str, *,
            optional: bool = False) -> float | None:
    """A positive number from an entry, or a BenchkitError naming the field."""
    value = entry.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BenchkitError(f"must be a positive number, got {value!r}", file=file,
                            field=f"{where}.{key}")
    return float(value)


def _parse_chip(entry: Any, index: int, file: str) -> Chip:
    """Check one entry of `chips:` and turn it into a Chip."""
    where = f"chips[{index}]"
    if not isinstance(entry, dict):
        raise BenchkitError("each chip must be a mapping", file=file, field=where)
    chip_id = entry.get("id")
    if not isinstance(chip_id, str) or not _ID_RE.match(chip_id):
        raise BenchkitError(f"id must be lowercase letters, digits and '-', got {chip_id!r}",
                            file=file, field=f"{where}.id")
    where = f"chips[{index}] ({chip_id})"
    for key, allowed in (("vendor", VENDORS), ("backend", BACKENDS)):
        if entry.get(key) not in allowed:
            raise BenchkitError(f"must be one of {', '.join(allowed)}, got {entry.get(key)!r}",
                                file=file, field=f"{where}.{key}")
    for key in ("name", "family"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise BenchkitError("must be a non-empty string", file=file, field=f"{where}.{key}")
    cores = entry.get("gpu_cores")
    if isinstance(cores, bool) or not isinstance(cores, int) or cores <= 0:
        raise BenchkitError(f"must be a positive integer, got {cores!r}", file=file,
                            field=f"{where}.gpu_cores")
    memory = entry.get("memory_gb")
    if not isinstance(memory, list) or not memory or not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in memory):
        raise BenchkitError("must be a non-empty list of sizes in GB", file=file,
                            field=f"{where}.memory_gb")
    if not isinstance(entry.get("multi_die"), bool):
        raise BenchkitError("must be true or false", file=file, field=f"{where}.multi_die")
    sources = entry.get("sources")
    if not isinstance(sources, dict) or not sources.get("all"):
        raise BenchkitError("needs a source for its figures (sources.all)", file=file,
                            field=f"{where}.sources")
    names = entry.get("names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BenchkitError("must be a list of names", file=file, field=f"{where}.names")
    return Chip(
        id=chip_id, name=entry["name"], vendor=entry["vendor"], family=entry["family"],
        gpu_cores=cores, bandwidth_gbs=_number(entry, "bandwidth_gbs", where, file),
        fp32_tflops=_number(entry, "fp32_tflops", where, file, optional=True),
        gpu_clock_mhz=_number(entry, "gpu_clock_mhz", where, file, optional=True),
        memory_gb=tuple(float(m) for m in sorted(memory)), multi_die=entry["multi_die"],
        sources=MappingProxyType({str(k): str(v) for k, v in sources.items()}),
        backend=entry["backend"],
        matrix_tflops=_number(entry, "matrix_tflops", where, file, optional=True),
        names=tuple(names))


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> dict[str, Chip]:
    text, file = _data_text(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise BenchkitError("not valid YAML", file=file,
                            line=line + 1 if line is not None else None) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("chips"), list):
        raise BenchkitError("expected a mapping with a `chips:` list", file=file, field="chips")
    chips: dict[str, Chip] = {}
    for index, entry in enumerate(doc["chips"]):
        chip = _parse_chip(entry, index, file)
        if chip.id in chips:
            raise BenchkitError(f"duplicate id {chip.id!r}", file=file, field=f"chips[{index}].id")
        chips[chip.id] = chip
    return chips


def load_chips(path: str | Path | None = None) -> dict[str, Chip]:
    """Every chip in the database, by id, in file order (cached: the file is read once)."""
    return dict(_load(str(path) if path is not None else None))


def normalize_id(text: str) -> str:
    """"M4 Max" -> "m4max", "H100-PCIe" -> "h100-pcie": what users type, made an id."""
    return re.sub(r"\s+", "", text.strip().lower())


def get_chip(chip_id: str, chips: Mapping[str, Chip] | None = None, *,
             field: str = "chip") -> Chip:
    """The chip with this id; an unknown id fails with the closest ids suggested."""
    chips = chips if chips is not None else load_chips()
    key = normalize_id(chip_id)
    if key in chips:
        return chips[key]
    close = difflib.get_close_matches(key, list(chips), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise BenchkitError(f"unknown chip {chip_id!r}{hint} (all ids: benchkit project --list-chips)",
                        field=field)


def _name_key(name: str) -> str:
    """Reported names compared without case, punctuation or spacing."""
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def identify(name: str, gpu_cores: int | None = None,
             chips: Mapping[str, Chip] | None = None) -> str | None:
    """The chip id for what a machine reports, or None when the database does not know it.

    Apple reports one name for every GPU-core variant ("Apple M4 Max"), so the core
    count picks the variant; without it the top configuration is assumed. A core count
    that no configuration has returns None rather than a guess.
    """
    chips = chips if chips is not None else load_chips()
    key = _name_key(name)
    candidates = [c for c in chips.values()
                  if key in {_name_key(c.name), *(_name_key(n) for n in c.names)}]
    if not candidates:
        return None
    if len(candidates) == 1 and candidates[0].vendor != "apple":
        return candidates[0].id
    if gpu_cores is None:
        return max(candidates, key=lambda c: c.gpu_cores).id
    for chip in candidates:
        if chip.gpu_cores == gpu_cores:
            return chip.id
    return None

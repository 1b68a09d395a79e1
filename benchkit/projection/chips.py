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
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from benchkit.core.errors import BenchkitError

DATA_FILE = "benchkit/data/chips.yaml"
VENDORS = ("apple", "nvidia", "amd", "intel", "cpu")
BACKENDS = ("metal", "cuda", "hip", "sycl", "vulkan", "cpu", "mlx")
# The backends a vendor's chips run besides their usual one (`backend`): llama.cpp's Vulkan
# backend on every discrete and integrated GPU maker's parts, MLX on Apple silicon.
OTHER_BACKENDS = {"nvidia": ("vulkan",), "amd": ("vulkan",), "intel": ("vulkan",),
                  "apple": ("mlx",), "cpu": ()}
# Memory type -> class: the projection's achieved-bandwidth share is one global value per
# backend and class (HBM stacks, GDDR, LPDDR, DDR), never per chip.
MEMORY_CLASSES = {"HBM": "hbm", "GDDR": "gddr", "LPDDR": "lpddr", "DDR": "ddr"}
CORE_UNITS = {"apple": "GPU cores", "nvidia": "SMs", "amd": "CUs", "intel": "Xe cores",
              "cpu": "CPU cores"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Chip:
    """One chip configuration; `gpu_cores` counts Apple GPU cores, NVIDIA SMs or AMD CUs.

    `board_power_w` is the maker's board power limit: prompt processing on a card with
    little power for its cores and clock runs below boost (projection.sustained_clock_share).
    """

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
    memory_type: str | None = None
    bf16_matrix_tflops: float | None = None
    int8_matrix_tops: float | None = None
    int8_unit: str = "matrix"
    memory_channels: int | None = None
    memory_mts: float | None = None
    example: str | None = None
    board_power_w: float | None = None

    @property
    def int8_matrix_units(self) -> bool:
        """Whether the INT8 figure is a matrix unit's (tensor cores, WMMA, MFMA, XMX), not
        4-way dot products on the vector lanes."""
        return bool(self.int8_matrix_tops) and self.int8_unit == "matrix"

    @property
    def memory_class(self) -> str:
        """hbm, gddr, lpddr or ddr; Apple's unified memory is LPDDR whatever the entry says."""
        kind = (self.memory_type or ("LPDDR" if self.vendor == "apple" else "GDDR")).upper()
        for prefix, name in MEMORY_CLASSES.items():
            if kind.startswith(prefix):
                return name
        return "gddr"

    @property
    def label(self) -> str:
        """Short display name: "M4 Max" for Apple parts, the full name for GPUs."""
        return self.name.removeprefix("Apple ")

    @property
    def core_unit(self) -> str:
        """What `gpu_cores` counts, for tables that mix vendors."""
        return CORE_UNITS[self.vendor]

    @property
    def backends(self) -> tuple[str, ...]:
        """Every backend the chip runs, its usual one first."""
        return (self.backend, *(b for b in OTHER_BACKENDS.get(self.vendor, ())
                                if b != self.backend))

    def on(self, backend: str | None) -> Chip:
        """The chip running another of its backends (itself when None or unsupported)."""
        if backend and backend != self.backend and backend in self.backends:
            return replace(self, backend=backend)
        return self

    def source(self, field_name: str) -> str:
        """Where a figure comes from (the field's own source, else the chip's general one)."""
        return self.sources.get(field_name) or self.sources.get("all", "")


def _read_yaml(path: str | Path | None, what: str) -> tuple[Any, str]:
    """The data of the database (no path) or of a user's file, and the name errors show.
    A user's file is read within bounds (a regular UTF-8 file of at most 1 MiB, nesting
    and aliases limited): a FIFO, UTF-16 or a document nested 100,000 deep is one line."""
    from benchkit.core.safeio import MAX_SUITE_BYTES, read_yaml_file

    if path is not None:
        return read_yaml_file(path, MAX_SUITE_BYTES, what, str(path)), str(path)
    text = resources.files("benchkit").joinpath("data/chips.yaml").read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), DATA_FILE
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise BenchkitError("not valid YAML", file=DATA_FILE,
                            line=line + 1 if line is not None else None) from None


def _number(entry: dict[str, Any], key: str, where: str, file: str, *,
            optional: bool = False) -> float | None:
    """A positive number from an entry, or a BenchkitError naming the field."""
    value = entry.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BenchkitError(f"must be a positive number, got {value!r}", file=file,
                            field=_f(where, key))
    return float(value)


def _f(where: str, key: str) -> str:
    """The field name an error shows: "chips[3] (h100).bandwidth_gbs", or the bare key."""
    return f"{where}.{key}" if where else key


def _parse_chip(entry: Any, index: int, file: str, *, spec: bool = False) -> Chip:
    """Check one entry of `chips:` (or a `--chip-spec` file) and turn it into a Chip."""
    where = "" if spec else f"chips[{index}]"
    if not isinstance(entry, dict):
        raise BenchkitError("each chip must be a mapping", file=file, field=where)
    chip_id = entry.get("id")
    if not isinstance(chip_id, str) or not _ID_RE.match(chip_id):
        raise BenchkitError(f"id must be lowercase letters, digits and '-', got {chip_id!r}",
                            file=file, field=_f(where, "id"))
    where = "" if spec else f"chips[{index}] ({chip_id})"
    for key, allowed in (("vendor", VENDORS), ("backend", BACKENDS)):
        if entry.get(key) not in allowed:
            raise BenchkitError(f"must be one of {', '.join(allowed)}, got {entry.get(key)!r}",
                                file=file, field=_f(where, key))
    for key in ("name", "family"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise BenchkitError("must be a non-empty string", file=file, field=_f(where, key))
    cores = entry.get("gpu_cores")
    if isinstance(cores, bool) or not isinstance(cores, int) or cores <= 0:
        raise BenchkitError(f"must be a positive integer, got {cores!r}", file=file,
                            field=_f(where, "gpu_cores"))
    memory = entry.get("memory_gb")
    if not isinstance(memory, list) or not memory or not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in memory):
        raise BenchkitError("must be a non-empty list of sizes in GB", file=file,
                            field=_f(where, "memory_gb"))
    if not isinstance(entry.get("multi_die"), bool):
        raise BenchkitError("must be true or false", file=file, field=_f(where, "multi_die"))
    sources = entry.get("sources")
    if not isinstance(sources, dict) or not sources.get("all"):
        raise BenchkitError("needs a source for its figures (sources.all)", file=file,
                            field=_f(where, "sources"))
    names = entry.get("names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BenchkitError("must be a list of names", file=file, field=_f(where, "names"))
    memory_type = entry.get("memory_type")
    if memory_type is not None and not (isinstance(memory_type, str) and any(
            memory_type.upper().startswith(p) for p in MEMORY_CLASSES)):
        raise BenchkitError(f"must name HBM*, GDDR*, LPDDR* or DDR* memory, got {memory_type!r}",
                            file=file, field=_f(where, "memory_type"))
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise BenchkitError(f"unknown field (known: {', '.join(sorted(_KNOWN_KEYS))})",
                            file=file, field=_f(where, unknown[0]))
    channels = _number(entry, "memory_channels", where, file, optional=True)
    return Chip(
        id=chip_id, name=entry["name"], vendor=entry["vendor"], family=entry["family"],
        gpu_cores=cores, bandwidth_gbs=_number(entry, "bandwidth_gbs", where, file),
        fp32_tflops=_number(entry, "fp32_tflops", where, file, optional=True),
        gpu_clock_mhz=_number(entry, "gpu_clock_mhz", where, file, optional=True),
        memory_gb=tuple(float(m) for m in sorted(memory)), multi_die=entry["multi_die"],
        sources=MappingProxyType({str(k): str(v) for k, v in sources.items()}),
        backend=entry["backend"],
        matrix_tflops=_number(entry, "matrix_tflops", where, file, optional=True),
        names=tuple(names), memory_type=memory_type,
        bf16_matrix_tflops=_number(entry, "bf16_matrix_tflops", where, file, optional=True),
        int8_matrix_tops=_number(entry, "int8_matrix_tops", where, file, optional=True),
        int8_unit=_int8_unit(entry, where, file),
        memory_channels=int(channels) if channels else None,
        memory_mts=_number(entry, "memory_mts", where, file, optional=True),
        example=str(entry["example"]) if entry.get("example") else None,
        board_power_w=_number(entry, "board_power_w", where, file, optional=True))


_KNOWN_KEYS = frozenset({
    "id", "name", "vendor", "family", "backend", "gpu_cores", "bandwidth_gbs", "fp32_tflops",
    "gpu_clock_mhz", "memory_gb", "multi_die", "sources", "names", "matrix_tflops",
    "memory_type", "bf16_matrix_tflops", "int8_matrix_tops", "memory_channels", "memory_mts",
    "example", "board_power_w", "int8_unit"})
INT8_UNITS = ("matrix", "dot4")


def _int8_unit(entry: dict[str, Any], where: str, file: str) -> str:
    """What executes the chip's INT8 figure: matrix units, or 4-way dot products (dp4a,
    v_dot4) on the vector lanes, which then also do the unpacking."""
    unit = entry.get("int8_unit", "matrix")
    if unit not in INT8_UNITS:
        raise BenchkitError(f"must be one of {', '.join(INT8_UNITS)}, got {unit!r}",
                            file=file, field=_f(where, "int8_unit"))
    if unit == "dot4" and entry.get("int8_matrix_tops") is None:
        raise BenchkitError("names the unit of an INT8 figure the entry does not give "
                            "(int8_matrix_tops)", file=file, field=_f(where, "int8_unit"))
    return unit


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> dict[str, Chip]:
    doc, file = _read_yaml(path, "chip database")
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


_VENDOR_OF_BACKEND = {"metal": "apple", "cuda": "nvidia", "hip": "amd", "sycl": "intel",
                      "vulkan": "amd", "cpu": "cpu"}


def load_chip_spec(path: str | Path, chips: Mapping[str, Chip] | None = None) -> Chip:
    """A chip that is not in the database, from a YAML file with the database's fields.

    Lets a user project onto hardware benchkit does not list (a new card, a cloud part)
    from its spec sheet. The file holds one mapping; `vendor` defaults from `backend`,
    `family` to "custom", `multi_die` to false and `sources.all` to the file itself, so the
    least a spec needs is id, name, backend, gpu_cores, bandwidth_gbs and memory_gb. Errors
    name the file and the field, as for the database.
    """
    entry, file = _read_yaml(path, "chip spec")
    if isinstance(entry, dict) and isinstance(entry.get("chips"), list) and len(entry["chips"]) == 1:
        entry = entry["chips"][0]
    if not isinstance(entry, dict):
        raise BenchkitError("expected one chip: a mapping with id, name, backend, gpu_cores, "
                            "bandwidth_gbs and memory_gb", file=file, field="chip")
    entry = dict(entry)
    if entry.get("backend") in _VENDOR_OF_BACKEND:
        entry.setdefault("vendor", _VENDOR_OF_BACKEND[entry["backend"]])
    entry.setdefault("family", "custom")
    entry.setdefault("multi_die", False)
    entry.setdefault("sources", {"all": f"chip spec {file}"})
    if isinstance(entry.get("memory_gb"), (int, float)) and not isinstance(entry["memory_gb"], bool):
        entry["memory_gb"] = [entry["memory_gb"]]
    chip = _parse_chip(entry, 0, file, spec=True)
    known = chips if chips is not None else load_chips()
    if chip.id in known:
        raise BenchkitError(f"id {chip.id!r} is already a chip in the database; give the spec "
                            "its own id", file=file, field="id")
    return chip

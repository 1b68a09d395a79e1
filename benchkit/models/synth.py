"""Shape-exact synthetic stand-ins: a well-known model's tensors, filled with random numbers.

A dense model's decode and prompt speed depend on its tensor shapes and quantization types,
not on the values of its weights: llama.cpp's kernels do the same work whatever the numbers
are. A GGUF with the shapes of TinyLlama-1.1B and random values therefore runs at the real
model's speed, and benchkit can measure a model it cannot download (CI, an offline GPU box,
a machine before buying it).

How a stand-in is made, so that nothing about its layout is our guess:
1. the preset (`data/presets.yaml`: the model's config.json figures) gives the tensors;
2. gguf-py's GGUFWriter (llama.cpp's own writer) writes an F16 source, a few MiB at a
   time, with random normal values (std 0.02; norm weights 1, biases 0);
3. the quantizer of the installed llama.cpp (`llama_model_quantize`) converts it, so
   llama.cpp's own rules pick each tensor's type, exactly as for a real model.

The source is first written sparse (header only) for a llama.cpp dry run: that tells the
exact output size before any data is written, so a full disk is refused up front with
figures. Both files live in a temporary folder next to the output and are renamed or
deleted at the end: no partial file is left, also on error or Ctrl-C (the quantizer runs
in a child process so that Ctrl-C can stop it at once).

The stand-in is marked in its metadata (`benchkit.synthetic = true`, `benchkit.preset`,
`benchkit.quant`) and cached: asking again for the same preset and type is instant.

Memory stays small whatever the model (one write chunk here, a 256 MiB slab in the
quantizer); disk is what a big model needs: the F16 source plus the output, e.g. 131 +
40 GiB for llama-3-70b Q4_K_M. Where only the output fits, `fill="zeros"` quantizes a
sparse, zero-filled source that takes no room: the same tensors and types, zero values
(dense kernels do the same work on zeros; the file says `benchkit.fill = zeros`).

The vocabulary is synthesized too (see `synthetic_vocab`): a sentencepiece-style one of
the preset's size for every architecture, since tokenizer values do not change speed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import difflib
import errno
import glob
import hashlib
import itertools
import math
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

from benchkit.core.errors import BenchkitError

CACHE_ENV = "BENCHKIT_CACHE"
# Pretend the output's filesystem has this many bytes free: lets a test (or a user who
# wants a dry check) exercise the "no room" refusal without filling a disk.
FREE_BYTES_ENV = "BENCHKIT_FREE_BYTES"
# Folder for the F16 source (default: a temp folder next to the output), e.g. /dev/shm.
WORK_ENV = "BENCHKIT_SYNTH_WORK"

SYNTH_VERSION = 1          # bump when the recipe changes: cached stand-ins are rebuilt
WEIGHT_STD = 0.02          # the usual initialisation scale of transformer weights
FILLS = ("normal", "zeros")
ALIGNMENT = 32             # GGUF default tensor data alignment
QUANT_BUF_BYTES = 256 << 20  # the quantizer's slab buffer: keeps its memory small (default 8 GiB)
_POOL = 1 << 22            # random normal values generated once, then sampled per segment
_SEGMENT = 1 << 14
_CHUNK = 1 << 22           # values written per write() call: one chunk in memory, not a tensor
_MIB = 1024 * 1024
_GIB = 1024 * _MIB

STANDIN_KEYS = {"preset", "quant", "token_embedding_type", "output_tensor_type", "seed",
                "fill", "signature", "model_buffer_mib", "tensor_types"}


# --------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class Preset:
    """One model's shapes, as its published config.json gives them."""

    key: str
    name: str
    source: str
    architecture: str
    n_layers: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    n_ctx_train: int
    rope_theta: float
    norm_eps: float
    tied_embeddings: bool
    chat_template: str | None = None
    # Optional figures, for the architectures that have them (None: the model has none).
    # presets.yaml calls this one `head_dim`; the property below is the effective size.
    head_dim_config: int | None = None
    n_expert: int | None = None
    n_expert_used: int | None = None
    n_ff_expert: int | None = None
    sliding_window: int | None = None
    sliding_window_pattern: int | None = None
    rope_theta_swa: float | None = None
    rope_scaling: str | None = None
    rope_scaling_factor: float | None = None
    rope_scaling_orig_ctx: int | None = None

    @property
    def head_dim(self) -> int:
        """Per-head size: config.json's head_dim where it gives one (Qwen3, Gemma 3 and
        Mistral Small are not n_embd / n_head), else n_embd / n_head."""
        return self.head_dim_config or self.n_embd // self.n_head

    @property
    def is_moe(self) -> bool:
        return bool(self.n_expert)

    @property
    def dims(self) -> dict[str, int]:
        """The names a tensor shape in presets.yaml may use (the expert ones only for a
        mixture of experts)."""
        dims = {"n_embd": self.n_embd, "n_ff": self.n_ff, "n_vocab": self.n_vocab,
                "n_head": self.n_head, "head_dim": self.head_dim,
                "n_embd_q": self.n_head * self.head_dim,
                "n_embd_kv": self.n_head_kv * self.head_dim}
        if self.n_expert and self.n_ff_expert:
            dims.update(n_expert=self.n_expert, n_ff_exp=self.n_ff_expert)
        return dims


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the source file: numpy-order shape, how to fill it."""

    name: str
    shape: tuple[int, ...]
    fill: str  # normal | ones | zeros
    dtype_override: str | None = None  # the layout's `dtype:` (F32 for routers, 2-D biases)

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> str:
        """F16 for matrices (what llama.cpp's converter writes), F32 for 1-D norms/biases
        and for what the layout marks F32 (the converter keeps routers and biases F32; the
        quantizer leaves both as they are)."""
        if self.dtype_override:
            return self.dtype_override
        return "F16" if len(self.shape) >= 2 else "F32"

    @property
    def nbytes(self) -> int:
        return self.n_elements * (2 if self.dtype == "F16" else 4)


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    import yaml

    text = resources.files("benchkit").joinpath("data/presets.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def preset_names() -> list[str]:
    """The preset keys, in the order presets.yaml lists them."""
    return list(_data()["presets"])


def quant_names() -> list[str]:
    """The quantization types `synth` accepts, in presets.yaml order."""
    return list(_data()["quant_types"])


def get_preset(name: str, *, file: str | None = None, field: str | None = None) -> Preset:
    """The preset called `name`; an unknown name fails with the closest names."""
    presets = _data()["presets"]
    if name not in presets:
        close = difflib.get_close_matches(name, presets, n=3, cutoff=0.4)
        hint = (f"did you mean {', '.join(close)}?" if close
                else f"known presets: {', '.join(presets)}")
        raise BenchkitError(f"unknown preset {name!r}; {hint}", file=file, field=field)
    return _make_preset(name, dict(presets[name]), file=file)


# presets.yaml's name for a field where the dataclass needs another (a property has it)
_YAML_FIELDS = {"head_dim": "head_dim_config"}
# Figures a reduced stand-in may change (see `reduce_preset`): shapes only.
REDUCIBLE = ("n_layers", "n_embd", "n_ff", "n_head", "n_head_kv", "n_vocab", "head_dim",
             "n_expert", "n_expert_used", "n_ff_expert")


def _make_preset(key: str, raw: dict[str, Any], *, file: str | None = None) -> Preset:
    """A Preset from presets.yaml's mapping, checked: unknown fields and figures the
    architecture's layout needs but the preset lacks are one error naming the field."""
    known = {f.name for f in dataclasses.fields(Preset)} - {"key", "head_dim_config"}
    known |= set(_YAML_FIELDS)
    for name in raw:
        if name not in known:
            raise BenchkitError(f"unknown preset field {name!r}", file=file,
                                field=f"presets.{key}.{name}")
    fields = {_YAML_FIELDS.get(k, k): v for k, v in raw.items()}
    required = [f.name for f in dataclasses.fields(Preset)
                if f.default is dataclasses.MISSING and f.name != "key"]
    for name in required:
        if name not in fields:
            raise BenchkitError(f"the preset lacks {name}", file=file,
                                field=f"presets.{key}.{name}")
    preset = Preset(key=key, **fields)
    _check_preset(preset, file=file)
    return preset


def _check_preset(p: Preset, *, file: str | None = None) -> None:
    """The figures the layout `requires` are there; a mixture of experts routes to no
    more experts than it has. Caught here, not as a llama.cpp abort at load time."""
    layout = _data()["architectures"].get(p.architecture)
    if layout is None:
        return  # plan_tensors names the missing layout
    for name in layout.get("requires", []):
        if not getattr(p, _YAML_FIELDS.get(name, name)):
            raise BenchkitError(f"a {p.architecture} preset needs {name} (a positive number, "
                                "from config.json)", file=file, field=f"presets.{p.key}.{name}")
    if p.n_expert_used and (not p.n_expert or p.n_expert_used > p.n_expert):
        raise BenchkitError(f"n_expert_used {p.n_expert_used} exceeds n_expert "
                            f"{p.n_expert}", file=file, field=f"presets.{p.key}.n_expert_used")


def reduce_preset(p: Preset, overrides: dict[str, int] | None) -> Preset:
    """The preset with some shape figures made smaller, for a *reduced* stand-in: the same
    architecture and tensor layout at a size that loads on a small machine (tests; a
    check that llama.cpp accepts the layout). Its file name and metadata say so
    (`benchkit.reduced`), so it is never mistaken for the model's shapes."""
    if not overrides:
        return p
    raw = {k: v for k, v in dataclasses.asdict(p).items() if k != "key"}
    raw["head_dim"] = raw.pop("head_dim_config")
    for name, value in overrides.items():
        if name not in REDUCIBLE:
            raise BenchkitError(f"{name!r} cannot be reduced; one of: {', '.join(REDUCIBLE)}",
                                field=f"reduce.{name}")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BenchkitError(f"must be a positive integer, not {value!r}",
                                field=f"reduce.{name}")
        raw[name] = value
    return _make_preset(p.key, {k: v for k, v in raw.items() if v is not None})


def parse_reduce(text: str | None) -> dict[str, int]:
    """`n_layers=2,n_expert=8` (the CLI's --reduce) as a mapping; bad input names it."""
    out: dict[str, int] = {}
    for part in filter(None, (text or "").split(",")):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise BenchkitError(f"expected NAME=INTEGER, got {part!r}", field="reduce")
        out[name.strip()] = int(value)
    return out


def check_quant(quant: str, *, file: str | None = None, field: str | None = None) -> str:
    """The llama.cpp ftype name (e.g. MOSTLY_Q4_K_M) for a quant type, or a clear refusal."""
    types = _data()["quant_types"]
    if quant not in types:
        upper = quant.upper()
        if upper in types:
            return types[upper]
        raise BenchkitError(
            f"unsupported quantization type {quant!r}; supported: {', '.join(types)}",
            file=file, field=field)
    return types[quant]


def _canonical_quant(quant: str) -> str:
    return quant if quant in _data()["quant_types"] else quant.upper()


def check_tensor_type(name: str | None, *, file: str | None = None,
                      field: str | None = None) -> str | None:
    """A ggml tensor type name (Q8_0, Q6_K, F16...) for the embedding/output overrides."""
    if name is None:
        return None
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    valid = [t.name for t in GGMLQuantizationType if t in GGML_QUANT_SIZES
             and not t.name.startswith(("I8", "I16", "I32", "I64", "F64"))]
    if name.upper() not in valid:
        raise BenchkitError(f"unknown tensor type {name!r}; one of: {', '.join(valid)}",
                            file=file, field=field)
    return name.upper()


def plan_tensors(preset: Preset) -> list[TensorPlan]:
    """The tensors of the preset's architecture, in llama.cpp's order (globals, then layers)."""
    layouts = _data()["architectures"]
    if preset.architecture not in layouts:
        raise BenchkitError(f"no tensor layout for architecture {preset.architecture!r} "
                            f"(known: {', '.join(layouts)})", field="architecture")
    layout = layouts[preset.architecture]
    dims = preset.dims
    plan: list[TensorPlan] = []

    def add(entry: dict[str, Any], prefix: str = "") -> None:
        if entry.get("unless") and getattr(preset, entry["unless"]):
            return
        missing = [d for d in entry["shape"] if d not in dims]
        if missing:
            raise BenchkitError(f"tensor {entry['name']} needs {missing[0]}, which preset "
                                f"{preset.key} does not give", field=f"presets.{preset.key}")
        shape = tuple(dims[d] for d in entry["shape"])
        plan.append(TensorPlan(prefix + entry["name"], shape, entry.get("fill", "normal"),
                               entry.get("dtype")))

    for entry in layout["global"]:
        add(entry)
    for i in range(preset.n_layers):
        for entry in layout["layer"]:
            add(entry, f"blk.{i}.")
    return plan


def n_params(preset: Preset) -> int:
    """Parameter count of the preset (every element of every tensor)."""
    return sum(t.n_elements for t in plan_tensors(preset))


def n_params_active(preset: Preset) -> int:
    """Parameters one token runs through: every tensor but the expert ones, and of each
    expert tensor the n_expert_used of n_expert experts the router picks (a dense preset:
    all of them). Embedding tables count in full; `benchkit.models.gguf.active_counts`
    applies the same rule to a real file and says how model cards differ on it."""
    from benchkit.models.gguf import is_expert_tensor

    n, k = preset.n_expert or 0, preset.n_expert_used or 0
    total = 0
    for t in plan_tensors(preset):
        total += t.n_elements // n * k if n and is_expert_tensor(t.name) else t.n_elements
    return total


# --------------------------------------------------------------------------- cache

def cache_dir() -> Path:
    """$BENCHKIT_CACHE, else $XDG_CACHE_HOME/benchkit/models, else ~/.cache/benchkit/models."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "benchkit" / "models"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a stand-in's content; two equal recipes give the same file."""

    preset: str
    quant: str
    seed: int = 0
    fill: str = "normal"
    token_embedding_type: str | None = None
    output_tensor_type: str | None = None
    reduced: tuple[tuple[str, int], ...] = ()  # shape figures made smaller (reduce_preset)

    @property
    def reduced_text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.reduced)

    def file_name(self) -> str:
        parts = [self.preset, self.quant]
        if self.reduced:
            parts.append("reduced-" + "-".join(f"{k}{v}" for k, v in self.reduced))
        if self.token_embedding_type:
            parts.append(f"embd-{self.token_embedding_type}")
        if self.output_tensor_type:
            parts.append(f"out-{self.output_tensor_type}")
        if self.fill != "normal":
            parts.append(self.fill)
        if self.seed:
            parts.append(f"seed{self.seed}")
        return ".".join(parts) + ".synthetic.gguf"

    def metadata(self) -> dict[str, Any]:
        """The benchkit.* keys written into the file; a cached file must carry the same."""
        meta: dict[str, Any] = {"benchkit.synthetic": True, "benchkit.preset": self.preset,
                                "benchkit.quant": self.quant,
                                "benchkit.synth_version": SYNTH_VERSION,
                                "benchkit.seed": self.seed, "benchkit.fill": self.fill}
        if self.token_embedding_type:
            meta["benchkit.token_embedding_type"] = self.token_embedding_type
        if self.output_tensor_type:
            meta["benchkit.output_tensor_type"] = self.output_tensor_type
        if self.reduced:
            meta["benchkit.reduced"] = self.reduced_text
        return meta


@dataclass(frozen=True)
class Synthesis:
    """What `synthesize` did: where the stand-in is, and whether it came from the cache."""

    path: Path
    recipe: Recipe
    cached: bool
    seconds: float
    size_bytes: int


def _matches(path: Path, recipe: Recipe) -> bool:
    """Whether `path` is a complete stand-in made from this recipe (header check only:
    milliseconds, so that a cached stand-in is found at once)."""
    try:
        header = read_header(path)
    except BenchkitError:
        return False
    want = recipe.metadata()
    have = {k: header.metadata.get(k) for k in want}
    extra = {k for k in ("benchkit.token_embedding_type", "benchkit.output_tensor_type",
                         "benchkit.reduced")
             if k in header.metadata and k not in want}
    return header.complete and have == want and not extra


# --------------------------------------------------------------------------- synthesize

def synthesize(preset: str, quant: str, *, output: str | os.PathLike[str] | None = None,
               seed: int = 0, fill: str = "normal", token_embedding_type: str | None = None,
               output_tensor_type: str | None = None, threads: int | None = None,
               free_bytes: int | None = None, force: bool = False,
               progress: bool = True, announce: bool = False, file: str | None = None,
               field: str | None = None, reduce: dict[str, int] | None = None) -> Synthesis:
    """Write (or find in the cache) the stand-in for `preset` quantized to `quant`.

    `reduce` makes a *reduced* stand-in (see `reduce_preset`): the preset's architecture
    at smaller shape figures, e.g. {"n_layers": 2, "n_expert": 8}; named as such in
    the file name and metadata.

    `free_bytes` overrides the free space measured on the output's filesystem (and the
    BENCHKIT_FREE_BYTES variable): the "no room" refusal can then be tested honestly.
    `announce` says on stderr that a build starts (it can take minutes; without a
    terminal there is no progress bar). `file`/`field` name where the request came from
    (a suite), for error messages.
    """
    start = time.perf_counter()
    p = reduce_preset(get_preset(preset, file=file, field=_sub(field, "preset")), reduce)
    ftype = check_quant(quant, file=file, field=_sub(field, "quant"))
    if fill not in FILLS:
        raise BenchkitError(f"unknown fill {fill!r}; one of: {', '.join(FILLS)}",
                            file=file, field=_sub(field, "fill"))
    recipe = Recipe(
        p.key, _canonical_quant(quant), int(seed), fill,
        check_tensor_type(token_embedding_type, file=file,
                          field=_sub(field, "token_embedding_type")),
        check_tensor_type(output_tensor_type, file=file, field=_sub(field, "output_tensor_type")),
        tuple(sorted((reduce or {}).items())))
    target = Path(output) if output else cache_dir() / recipe.file_name()
    if target.exists():
        if _matches(target, recipe):
            return Synthesis(target, recipe, True, time.perf_counter() - start,
                             target.stat().st_size)
        if output and not force:
            raise BenchkitError("exists and is not this stand-in; pass --force to replace it",
                                file=str(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchkitError(f"cannot create folder: {exc.strerror or exc}",
                            file=str(target.parent)) from None
    if announce:
        count = n_params(p)
        size = f"{count / 1e9:.2f} B" if count >= 1e9 else f"{count / 1e6:.0f} M"
        shapes = f"REDUCED {p.name} shapes ({recipe.reduced_text})" if recipe.reduced \
            else f"{p.name} shapes"
        print(f"synthesizing {target.name}: {shapes} ({size} parameters), quantized "
              f"to {recipe.quant} by llama.cpp; made once, then cached", file=sys.stderr,
              flush=True)
    _build(p, recipe, ftype, target, threads=threads, free_bytes=free_bytes, progress=progress)
    return Synthesis(target, recipe, False, time.perf_counter() - start, target.stat().st_size)


def _sub(field: str | None, key: str) -> str | None:
    return f"{field}.{key}" if field else None


def _build(p: Preset, recipe: Recipe, ftype: str, target: Path, *, threads: int | None,
           free_bytes: int | None, progress: bool) -> None:
    """Source, dry run, room check, data, quantize, rename: the temp folder always goes."""
    plan = plan_tensors(p)
    _remove_stale_work(target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial",
                                 dir=target.parent))
    src_work = _source_folder(target, work)
    source, out = src_work / "source-f16.gguf", work / "out.gguf"
    try:
        with _terminate_as_interrupt():
            offsets = _write_source_header(source, p, recipe, plan)
            out_bytes = _dry_run(source, out, recipe, ftype, threads, len(plan)) + offsets[0]
            if src_work == work:
                _check_room(target, p, recipe, plan, out_bytes, free_bytes)
            else:   # two filesystems: each must hold its own file
                _check_room(target, p, recipe, plan, out_bytes, free_bytes, source=False)
                _check_room(source, p, recipe, plan, 0, free_bytes)
            if recipe.fill == "normal":
                _write_source_data(source, plan, offsets, recipe.seed, progress)
            _quantize(source, out, recipe, ftype, threads, len(plan), progress, dry_run=False)
            source.unlink()
            _check_output(out, plan)
            os.replace(out, target)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # the disk filled up after all (another writer)
            raise _disk_full(target) from None
        raise BenchkitError(f"cannot write: {exc.strerror or exc}", file=str(target)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if src_work != work:
            shutil.rmtree(src_work, ignore_errors=True)


def _source_folder(target: Path, work: Path) -> Path:
    """Where the F16 source is written: the temp folder next to the output, or a fresh
    folder under $BENCHKIT_SYNTH_WORK (e.g. /dev/shm, when the output's disk cannot hold
    a 61 GB source next to the output). Only the quantizer reads it; it is deleted at the
    end like the rest."""
    base = os.environ.get(WORK_ENV)
    if not base:
        return work
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.",
                                     suffix=".partial", dir=base))
    except OSError as exc:
        raise BenchkitError(f"cannot use the source folder: {exc.strerror or exc}",
                            field=WORK_ENV, file=base) from None


def _disk_full(target: Path) -> BenchkitError:
    return BenchkitError("no space left on the device while writing (something else filled "
                         "it, or BENCHKIT_FREE_BYTES overstated it); the partial files were "
                         "removed", file=str(target))


def _remove_stale_work(target: Path) -> None:
    """Remove temp folders a killed run (SIGKILL, power loss) left for this target.

    The folder name carries the pid of its writer; a folder whose writer is gone is
    garbage, one whose writer still runs is another synth at work and is left alone.
    """
    for folder in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        m = re.match(rf"\.{re.escape(target.name)}\.(\d+)\.", folder.name)
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a synth like Ctrl-C does: child stopped, temp files removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- source file

def _write_source_header(path: Path, p: Preset, recipe: Recipe,
                         plan: list[TensorPlan]) -> list[int]:
    """Write the F16 source's header and a sparse data region; return each tensor's offset.

    The data region is a hole (truncate), so the file costs a few MiB until the data is
    written: enough for llama.cpp's dry run, which reads only the header.
    """
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType

    writer = GGUFWriter(path, p.architecture)
    _add_model_metadata(writer, p, recipe.reduced_text)
    writer.add_file_type(LlamaFileType.MOSTLY_F16)
    _add_tokenizer(writer, p)
    for key, value in recipe.metadata().items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, value)
    for t in plan:
        dtype = np.float16 if t.dtype == "F16" else np.float32
        writer.add_tensor_info(t.name, t.shape, np.dtype(dtype), t.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    assert writer.fout is not None
    fout = writer.fout[0]
    data_start = _pad(fout.tell())
    offsets, pos = [], data_start
    for t in plan:
        offsets.append(pos)
        pos += _pad(t.nbytes)
    fout.truncate(pos)
    writer.close()
    return offsets


def _add_model_metadata(writer: Any, p: Preset, reduced: str = "") -> None:
    writer.add_type("model")
    if reduced:
        writer.add_name(f"{p.name} (reduced synthetic stand-in: {reduced})")
        writer.add_description(f"benchkit reduced synthetic stand-in: the architecture of "
                               f"{p.name} ({p.source}) at smaller shapes ({reduced}), random "
                               "weights; for tests only, not the model's speed")
    else:
        writer.add_name(f"{p.name} (synthetic stand-in)")
        writer.add_description(f"benchkit synthetic stand-in: shapes of {p.name} "
                               f"({p.source}), random weights; for speed measurement only")
    writer.add_context_length(p.n_ctx_train)
    writer.add_embedding_length(p.n_embd)
    writer.add_block_count(p.n_layers)
    writer.add_feed_forward_length(p.n_ff)
    writer.add_head_count(p.n_head)
    writer.add_head_count_kv(p.n_head_kv)
    writer.add_rope_dimension_count(p.head_dim)
    writer.add_rope_freq_base(float(p.rope_theta))
    writer.add_layer_norm_rms_eps(float(p.norm_eps))
    writer.add_vocab_size(p.n_vocab)
    _add_optional_metadata(writer, p)


def _add_optional_metadata(writer: Any, p: Preset) -> None:
    """The keys only some architectures have, written only where the preset gives the
    figure (so the dense presets of before write the same header as before). llama.cpp's
    load_hparams requires expert_feed_forward_length and sliding_window for gpt-oss and
    reads the rest where present; the key names are gguf-py's (constants.py Keys)."""
    arch = p.architecture
    if p.head_dim_config:
        writer.add_key_length(p.head_dim)
        writer.add_value_length(p.head_dim)
    if p.is_moe:
        writer.add_expert_count(p.n_expert)
        writer.add_expert_used_count(p.n_expert_used)
        writer.add_expert_feed_forward_length(p.n_ff_expert)
    if p.sliding_window:
        writer.add_sliding_window(p.sliding_window)
    if p.sliding_window_pattern:
        writer.add_uint32(f"{arch}.attention.sliding_window_pattern", p.sliding_window_pattern)
    if p.rope_theta_swa:
        writer.add_float32(f"{arch}.rope.freq_base_swa", float(p.rope_theta_swa))
    if p.rope_scaling:
        writer.add_string(f"{arch}.rope.scaling.type", p.rope_scaling)
        writer.add_float32(f"{arch}.rope.scaling.factor", float(p.rope_scaling_factor or 1.0))
        if p.rope_scaling_orig_ctx:
            writer.add_uint32(f"{arch}.rope.scaling.original_context_length",
                              p.rope_scaling_orig_ctx)


def _add_tokenizer(writer: Any, p: Preset) -> None:
    """A sentencepiece ("llama") vocabulary of the preset's size; see `synthetic_vocab`."""
    tokens, scores, types = synthetic_vocab(p.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if p.chat_template:
        writer.add_chat_template(p.chat_template)


def synthetic_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """<unk>, <s>, </s>, the 256 byte tokens, then word pieces up to `n_vocab`.

    With byte fallback any text tokenizes; the pieces (printable characters, then letter
    pairs and triples with and without the word-start mark) make English split into a few
    characters per token, about as a real vocabulary does, so a chat prompt has a
    realistic token count. Scores favour earlier (shorter) pieces.
    """
    from gguf import TokenType

    if n_vocab < 259 + 1:
        raise BenchkitError(f"vocabulary of {n_vocab} is too small for a synthetic tokenizer "
                            "(needs at least 260)", field="n_vocab")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    seen = set(tokens)
    for piece in _pieces():
        if len(tokens) >= n_vocab:
            break
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(TokenType.NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def _pieces() -> Iterator[str]:
    singles = [chr(c) for c in range(33, 127)]
    yield "\u2581"
    yield from singles
    yield from ("\u2581" + c for c in singles)
    for n in itertools.count(2):
        for combo in itertools.product(string.ascii_lowercase, repeat=n):
            word = "".join(combo)
            yield "\u2581" + word
            yield word


def _write_source_data(path: Path, plan: list[TensorPlan], offsets: list[int], seed: int,
                       progress: bool) -> None:
    """Fill the source's tensors in place, one chunk at a time (memory: one chunk)."""
    import numpy as np

    pool = _normal_pool(seed)
    total = sum(t.nbytes for t in plan)
    with open(path, "r+b") as fh, _bar(total, "writing F16 source", progress, "B") as bar:
        for index, (t, offset) in enumerate(zip(plan, offsets)):
            fh.seek(offset)
            rng = np.random.default_rng([seed, index])
            for chunk in _tensor_chunks(t, pool, rng):
                fh.write(chunk.tobytes())
                bar(chunk.nbytes)


def _normal_pool(seed: int) -> Any:
    """Random normal values (std WEIGHT_STD, F16), generated once and reused by offset.

    Drawing 1e9 fresh normals costs ~20 s here; copying windows of a 4 M-value pool at
    random offsets costs memcpy time and still gives every quantization block its own
    values (the blocks are 32 or 256 values; the pool is 4 M).
    """
    import numpy as np

    rng = np.random.default_rng([seed, 0xB5])
    pool = (rng.standard_normal(_POOL, dtype=np.float32) * WEIGHT_STD).astype(np.float16)
    return np.concatenate([pool, pool[:_SEGMENT]])


def _tensor_chunks(t: TensorPlan, pool: Any, rng: Any) -> Iterator[Any]:
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    n = t.n_elements
    if t.fill != "normal":
        value = 1.0 if t.fill == "ones" else 0.0
        dtype = np.float16 if t.dtype == "F16" else np.float32
        for start in range(0, n, _CHUNK):
            yield np.full(min(_CHUNK, n - start), value, dtype=dtype)
        return
    windows = sliding_window_view(pool, _SEGMENT)
    for start in range(0, n, _CHUNK):
        size = min(_CHUNK, n - start)
        n_seg = -(-size // _SEGMENT)
        picks = rng.integers(0, _POOL, n_seg)
        chunk = windows[picks].reshape(-1)[:size]
        yield chunk if t.dtype == "F16" else chunk.astype(np.float32)


def _pad(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# --------------------------------------------------------------------------- room check

def _check_room(target: Path, p: Preset, recipe: Recipe, plan: list[TensorPlan],
                out_bytes: int, free_bytes: int | None, *, source: bool = True) -> None:
    """Refuse before writing data when the source plus the output would not fit in
    `target`'s folder (`source=False`: the source is written elsewhere)."""
    source_bytes = (sum(_pad(t.nbytes) for t in plan)
                    if recipe.fill == "normal" and source else 0)
    need = source_bytes + out_bytes + 16 * _MIB
    free = _free_bytes(target.parent, free_bytes)
    if need <= free:
        return
    msg = (f"not enough free space for the {p.key} {recipe.quant} stand-in: it needs "
           f"{_gib(need)} (output {_gib(out_bytes)}")
    if source_bytes:
        msg += f", plus {_gib(source_bytes)} for the F16 source, deleted at the end"
    msg += f"), {_gib(free)} free"
    if source_bytes and out_bytes + 16 * _MIB <= free:
        msg += ("; `--fill zeros` quantizes a zero-filled sparse source and needs only "
                "the output's space")
    raise BenchkitError(msg, file=str(target.parent))


def _free_bytes(folder: Path, override: int | None) -> int:
    if override is not None:
        return int(override)
    env = os.environ.get(FREE_BYTES_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise BenchkitError(f"not a number of bytes: {env!r}", field=FREE_BYTES_ENV) from None
    return shutil.disk_usage(folder).free


def _gib(n: int) -> str:
    from benchkit.core.units import fmt_bytes

    return fmt_bytes(n)


# --------------------------------------------------------------------------- quantize

def _dry_run(source: Path, out: Path, recipe: Recipe, ftype: str, threads: int | None,
             n_tensors: int) -> int:
    """llama.cpp's own figure for the output's tensor data (its dry run reads no data)."""
    log = _quantize(source, out, recipe, ftype, threads, n_tensors, False, dry_run=True)
    sizes = [float(m.group(1)) for line in log
             if (m := re.search(r"quant size\s*=\s*([\d.]+) MiB", line))]
    if not sizes:
        raise BenchkitError("llama.cpp's quantizer dry run gave no size: "
                            + (log[-1] if log else "no output"), file=str(source))
    return int(sizes[-1] * _MIB) + _MIB  # + rounding of the logged figure and padding


def _quantize(source: Path, out: Path, recipe: Recipe, ftype: str, threads: int | None,
              n_tensors: int, progress: bool, *, dry_run: bool) -> list[str]:
    """Run llama_model_quantize in a child process; return its log lines.

    A child, because llama.cpp's C loop does not return to Python for Ctrl-C (a 70B
    quantization would have to finish first) and an abort inside llama.cpp would take
    the cleanup with it. The child's log is parsed for progress and errors.
    """
    args = [sys.executable, "-m", "benchkit.models.synth", "quantize", str(source), str(out), ftype,
            str(threads or os.cpu_count() or 1), recipe.token_embedding_type or "-",
            recipe.output_tensor_type or "-", "1" if dry_run else "0"]
    lines: list[str] = []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    try:
        with _bar(n_tensors, f"quantizing to {recipe.quant}", progress, "tensors") as bar:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if re.match(r"\[\s*\d+/\s*\d+\]", line):
                    bar(1)
        rc = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    if rc != 0:
        if not dry_run and shutil.disk_usage(out.parent).free < 64 * _MIB:
            raise OSError(errno.ENOSPC, "no space left on the device", str(out))
        raise BenchkitError(f"llama.cpp could not quantize to {recipe.quant}: "
                            f"{_failure(lines, rc)}", field="quant")
    return lines


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _failure(lines: list[str], rc: int) -> str:
    """The line of the child's log that says why it failed."""
    for line in reversed(lines):
        if "failed to quantize" in line or "error" in line.lower():
            return line.split("failed to quantize:")[-1].strip() or line.strip()
    if rc < 0:
        return f"the quantizer was killed by signal {-rc} (out of memory?)"
    return lines[-1].strip() if lines else f"exit status {rc}"


def _check_output(out: Path, plan: list[TensorPlan]) -> None:
    header = read_header(out)
    want = {t.name: tuple(reversed(t.shape)) for t in plan}
    have = {name: shape for name, shape, _ in header.tensors}
    if have != want or not header.complete:
        raise BenchkitError("the quantized file's tensors differ from the plan", file=str(out))


def _quantize_child(argv: list[str]) -> int:
    """Child process: llama_model_quantize with its log on stdout, one line per line."""
    import ctypes

    import llama_cpp
    from gguf import GGMLQuantizationType

    source, out, ftype, threads, embd, output, dry = argv
    _exit_with_parent()

    @llama_cpp.llama_log_callback
    def _log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        sys.stdout.write(text.decode("utf-8", "replace"))
        sys.stdout.flush()

    llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{ftype}")
    params.nthread = int(threads)
    params.dry_run = dry == "1"
    params.max_buf_size = QUANT_BUF_BYTES
    if embd != "-":
        params.token_embedding_type = GGMLQuantizationType[embd].value
    if output != "-":
        params.output_tensor_type = GGMLQuantizationType[output].value
    rc = llama_cpp.llama_model_quantize(source.encode(), out.encode(), ctypes.byref(params))
    sys.stdout.flush()
    return int(rc)


def _exit_with_parent() -> None:
    """Stop the child when its parent dies (SIGKILL leaves no chance to stop it), so
    that no orphan keeps quantizing into a folder nobody will rename."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _bar:
    """A tqdm progress bar on stderr, or nothing; used as `with _bar(...) as update:`."""

    def __init__(self, total: int, desc: str, enabled: bool, unit: str) -> None:
        self._tqdm = None
        if enabled:
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B",
                              unit_divisor=1024, leave=False, file=sys.stderr)

    def __enter__(self) -> Callable[[int], None]:
        return self._tqdm.update if self._tqdm is not None else (lambda n: None)

    def __exit__(self, *exc: object) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


# --------------------------------------------------------------------------- fast header

@dataclass(frozen=True)
class Header:
    """A GGUF header read without its big arrays: scalar metadata and the tensor table."""

    metadata: dict[str, Any]                            # arrays are left out (tokenizer)
    tensors: list[tuple[str, tuple[int, ...], str]]     # name, shape (ggml order), type
    tensor_span: int                                    # bytes from first tensor to last end
    size_bytes: int
    complete: bool                                      # the data region fits in the file


def read_header(path: str | os.PathLike[str]) -> Header:
    """The header as the stand-in code needs it, from benchkit.models.gguf's reader (a few
    milliseconds; the big tokenizer arrays are skipped): for the cache check, the tensor
    signature and the model buffer size."""
    from benchkit.models.gguf import LongArray
    from benchkit.models.gguf import read_header as read

    h = read(path)
    meta = {k: v for k, v in h.metadata.items() if not isinstance(v, (list, LongArray))}
    return Header(meta, [(t.name, t.shape, t.type) for t in h.tensors], h.tensor_span,
                  h.size_bytes, h.complete)


# --------------------------------------------------------------------------- inspect / list

def inspect_model(path: str | os.PathLike[str], *, sha256: bool = True) -> dict[str, Any]:
    """What `benchkit models inspect` shows about any GGUF, real or synthetic."""
    from benchkit.models.gguf import active_counts, sha256_file
    from benchkit.models.gguf import read_header as read_full_header

    full = read_full_header(path)
    h = read_header(path)
    if not h.complete:
        raise BenchkitError("truncated GGUF: the tensor data runs past the end of the file",
                            file=str(path))
    meta = h.metadata
    arch = meta.get("general.architecture")
    synthetic = bool(meta.get("benchkit.synthetic", False))
    standin = ({k.removeprefix("benchkit."): v for k, v in meta.items()
                if k.startswith("benchkit.") and k != "benchkit.synthetic"}
               if synthetic else None)
    counts = active_counts(full)
    return {
        "file": str(path), "name": meta.get("general.name"), "architecture": arch,
        "n_params": counts.n_params_total,
        "n_params_total": counts.n_params_total, "n_params_active": counts.n_params_active,
        "bytes_total": counts.bytes_total, "bytes_active": counts.bytes_active,
        "n_expert": counts.n_expert, "n_expert_used": counts.n_expert_used,
        "file_type": _file_type(meta.get("general.file_type"), h.tensors),
        "n_layers": meta.get(f"{arch}.block_count"),
        "context_length": meta.get(f"{arch}.context_length"), "n_tensors": len(h.tensors),
        "tensor_types": type_histogram(h.tensors), "size_bytes": h.size_bytes,
        "model_buffer_mib": round(h.tensor_span / _MIB, 2),
        "signature": tensor_signature(h.tensors),
        "sha256": sha256_file(path) if sha256 else None,
        "synthetic": synthetic, "standin": standin,
    }


def _file_type(raw: Any, tensors: list[tuple[str, tuple[int, ...], str]]) -> str | None:
    """general.file_type as llama.cpp names it (Q4_K_M...), as benchkit.models.gguf does."""
    from benchkit.models.gguf import file_type_name

    return file_type_name(raw, tensors)


def cached_standins() -> list[dict[str, Any]]:
    """The stand-ins in the cache folder, with what their headers say (partial files skipped)."""
    folder = cache_dir()
    out = []
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        try:
            h = read_header(path)
        except BenchkitError:
            continue
        row = {"file": str(path), "preset": h.metadata.get("benchkit.preset"),
               "quant": h.metadata.get("benchkit.quant"),
               "synthetic": bool(h.metadata.get("benchkit.synthetic", False)),
               "size_bytes": h.size_bytes}
        if h.metadata.get("benchkit.reduced"):     # never listed as the model's shapes
            row["reduced"] = h.metadata["benchkit.reduced"]
        out.append(row)
    return out


def preset_table() -> list[dict[str, Any]]:
    """Every preset's figures plus its parameter count, for `benchkit models list`."""
    rows = []
    for key in preset_names():
        p = get_preset(key)
        rows.append({"preset": key, "model": p.name, "architecture": p.architecture,
                     "n_layers": p.n_layers, "n_embd": p.n_embd, "n_ff": p.n_ff,
                     "n_head": p.n_head, "n_head_kv": p.n_head_kv, "n_vocab": p.n_vocab,
                     "n_ctx_train": p.n_ctx_train, "rope_theta": p.rope_theta,
                     "norm_eps": p.norm_eps, "tied_embeddings": p.tied_embeddings,
                     "head_dim": p.head_dim, "n_expert": p.n_expert,
                     "n_expert_used": p.n_expert_used, "n_ff_expert": p.n_ff_expert,
                     "n_params": n_params(p), "n_params_active": n_params_active(p),
                     "source": p.source})
    return rows


# --------------------------------------------------------------------------- suites

def tensor_signature(tensors: Any) -> str:
    """A short hash of every tensor's name, shape and type: equal signatures, equal layout.

    Order-independent (sorted by name), because llama.cpp's quantizer has changed the
    order it writes tensors in between versions without changing the model.
    """
    lines = sorted(f"{name}\t{'x'.join(map(str, shape))}\t{ttype}\n"
                   for name, shape, ttype in tensors)
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:16]


def type_histogram(tensors: Any) -> dict[str, int]:
    """How many tensors of each type, most common first."""
    counts: dict[str, int] = {}
    for _, _, ttype in tensors:
        counts[ttype] = counts.get(ttype, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def model_buffer_mib(path: str | os.PathLike[str]) -> float:
    """The span of the file's tensor data in MiB: what llama.cpp reports as the model
    buffer when the whole model sits in one buffer (CPU, Metal), known before loading."""
    return read_header(path).tensor_span / _MIB


def standin_path(standin: dict[str, Any], *, suite_file: str, field: str) -> Path:
    """The stand-in a suite asks for (cached, made if needed), checked against the suite.

    `standin` is the suite's mapping: `preset` and `quant` (required); optional
    `token_embedding_type`, `output_tensor_type`, `seed`, `fill`, and what the file must
    match: `signature` (see `benchkit models inspect`), `model_buffer_mib`, `tensor_types`
    (a type -> count mapping).
    """
    if not isinstance(standin, dict):
        raise BenchkitError("must be a mapping with preset and quant", file=suite_file,
                            field=field)
    unknown = sorted(set(standin) - STANDIN_KEYS)
    if unknown:
        raise BenchkitError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(STANDIN_KEYS))}",
                            file=suite_file, field=f"{field}.{unknown[0]}")
    for key in ("preset", "quant"):
        if not isinstance(standin.get(key), str):
            raise BenchkitError(f"{key} is required (a string)", file=suite_file,
                                field=f"{field}.{key}")
    seed = standin.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise BenchkitError("seed must be a non-negative integer", file=suite_file,
                            field=f"{field}.seed")
    result = synthesize(standin["preset"], standin["quant"], seed=seed,
                        fill=standin.get("fill", "normal"),
                        token_embedding_type=standin.get("token_embedding_type"),
                        output_tensor_type=standin.get("output_tensor_type"),
                        progress=sys.stderr.isatty(), announce=True, file=suite_file,
                        field=field)
    _check_expectations(result.path, standin, suite_file=suite_file, field=field)
    return result.path


def _check_expectations(path: Path, standin: dict[str, Any], *, suite_file: str,
                        field: str) -> None:
    """The stand-in must have the tensor layout the suite names (when it names one)."""
    header = read_header(path)
    want = standin.get("signature")
    if want is not None:
        have = tensor_signature(header.tensors)
        if str(want) != have:
            raise BenchkitError(
                f"the stand-in's tensor signature is {have}, the suite names {want}: "
                "its tensor shapes or types differ (another llama.cpp version's "
                "quantizer?); `benchkit models inspect` lists them", file=suite_file,
                field=f"{field}.signature")
    want_mib = standin.get("model_buffer_mib")
    if want_mib is not None:
        have_mib = header.tensor_span / _MIB
        if abs(float(want_mib) - have_mib) > 0.005:
            raise BenchkitError(f"the stand-in's model buffer is {have_mib:.2f} MiB, the "
                                f"suite names {float(want_mib):.2f} MiB", file=suite_file,
                                field=f"{field}.model_buffer_mib")
    want_types = standin.get("tensor_types")
    if want_types is not None:
        have_types = type_histogram(header.tensors)
        if {str(k).upper(): int(v) for k, v in dict(want_types).items()} != have_types:
            raise BenchkitError(f"the stand-in's tensor types are {have_types}, the suite "
                                f"names {dict(want_types)}", file=suite_file,
                                field=f"{field}.tensor_types")


# --------------------------------------------------------------------------- routing spread

ROUTING_TOPK = "ffn_moe_topk-"   # llama.cpp's name for a layer's chosen experts (llama-graph.cpp)


@dataclass(frozen=True)
class LayerRouting:
    """How one layer's router spread a batch of tokens over its experts."""

    layer: int
    n_tokens: int
    counts: tuple[int, ...]          # tokens routed to each expert
    n_expert_used: int

    @property
    def uniform_share(self) -> float:
        """k/n: the share of tokens each expert gets when the load is perfectly even."""
        return self.n_expert_used / len(self.counts)

    @property
    def busiest_share(self) -> float:
        """The share of the tokens that went to the busiest expert."""
        return max(self.counts) / self.n_tokens if self.n_tokens else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation of the experts' load (std / mean; 0 = even)."""
        mean = sum(self.counts) / len(self.counts)
        var = sum((c - mean) ** 2 for c in self.counts) / len(self.counts)
        return math.sqrt(var) / mean if mean else 0.0

    @property
    def chance_cv(self) -> float:
        """The CV that independent uniform picks would give for this many tokens
        (binomial: sqrt((1 - k/n) / (N k/n))): routing no more uneven than chance sits
        near it; the sampling noise of a short batch is not a routing skew."""
        p = self.uniform_share
        return math.sqrt((1 - p) / (self.n_tokens * p)) if self.n_tokens and p else 0.0

    @property
    def idle(self) -> int:
        """Experts no token of the batch went to."""
        return sum(1 for c in self.counts if c == 0)


@dataclass(frozen=True)
class RoutingSpread:
    """Expert load per layer for one prompt batch decoded by llama.cpp (see `routing_spread`)."""

    path: str
    n_tokens: int
    n_expert: int
    n_expert_used: int
    layers: tuple[LayerRouting, ...]


class _GGMLTensor(ctypes.Structure):
    """The head of ggml.h's struct ggml_tensor up to its name (GGML_MAX_DIMS 4,
    GGML_MAX_OP_PARAMS 64, GGML_MAX_SRC 10, GGML_MAX_NAME 64); checked against
    ggml_get_name on first use, so another ggml's layout fails loudly, never silently."""

    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p),
                ("ne", ctypes.c_int64 * 4), ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int),
                ("op_params", ctypes.c_int32 * 16), ("flags", ctypes.c_int32),
                ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p),
                ("name", ctypes.c_char * 64)]


def _ggml_lib() -> Any:
    """libggml-base of the llama.cpp build llama-cpp-python loaded (ggml_get_name,
    ggml_nbytes, ggml_backend_tensor_get: a tensor's bytes from any backend)."""
    from benchkit.engines.llama_cpp.native import lib_dir

    for name in ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll"):
        if (lib_dir() / name).exists():
            lib = ctypes.CDLL(str(lib_dir() / name))
            lib.ggml_get_name.restype = ctypes.c_void_p
            lib.ggml_get_name.argtypes = [ctypes.c_void_p]
            lib.ggml_nbytes.restype = ctypes.c_size_t
            lib.ggml_nbytes.argtypes = [ctypes.c_void_p]
            lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                                    ctypes.c_size_t, ctypes.c_size_t]
            return lib
    raise BenchkitError(f"no libggml-base in {lib_dir()}: cannot read llama.cpp's tensors")


class _TopkRecorder:
    """The eval callback: asks llama.cpp for every `ffn_moe_topk-<layer>` tensor (the
    expert ids each token picked, I32 [n_expert_used, n_tokens], maybe a strided view of
    the argsort) and counts the ids per layer."""

    def __init__(self, lib: Any, n_expert: int) -> None:
        self.lib, self.n_expert = lib, n_expert
        self.counts: dict[int, list[int]] = {}
        self.tokens: dict[int, int] = {}
        self.error: str | None = None
        self.checked = False

    def __call__(self, ptr: int, ask: bool, user_data: Any) -> bool:  # noqa: ARG002
        try:
            t = _GGMLTensor.from_address(ptr)
            if not self.checked:
                self._check_layout(ptr, t)
            name = t.name.decode("utf-8", "replace")
            if not name.startswith(ROUTING_TOPK):
                return not ask       # not wanted; after compute: go on
            if ask:
                return True
            self._record(ptr, t, int(name[len(ROUTING_TOPK):]))
        except Exception as exc:     # never raise through C; stop the graph instead
            self.error = self.error or f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _check_layout(self, ptr: int, t: _GGMLTensor) -> None:
        if self.lib.ggml_get_name(ptr) != ptr + _GGMLTensor.name.offset:
            raise RuntimeError("struct ggml_tensor of this llama.cpp build has another layout")
        self.checked = True

    def _record(self, ptr: int, t: _GGMLTensor, layer: int) -> None:
        if t.type != 26:             # GGML_TYPE_I32
            raise RuntimeError(f"{t.name!r} has ggml type {t.type}, expected I32")
        size = self.lib.ggml_nbytes(ptr)
        raw = (ctypes.c_char * size)()
        self.lib.ggml_backend_tensor_get(ptr, raw, 0, size)
        k, n_tok = t.ne[0], t.ne[1]
        counts = self.counts.setdefault(layer, [0] * self.n_expert)
        for j in range(n_tok):
            for i in range(k):
                off = i * t.nb[0] + j * t.nb[1]
                counts[int.from_bytes(raw[off:off + 4], "little", signed=True)] += 1
        self.tokens[layer] = self.tokens.get(layer, 0) + n_tok


def routing_spread(path: str | os.PathLike[str], n_tokens: int = 512, *,
                   threads: int | None = None, seed: int = 0) -> RoutingSpread:
    """Decode `n_tokens` random tokens as one batch in llama.cpp (CPU) and count, per
    layer, which experts each token's router picked.

    Why: a stand-in's random router weights decide how evenly its experts share the
    tokens, and that decides how much expert weight a prompt batch reads; this measures
    it on the file itself instead of assuming it. Every token's logits are requested so
    that the last layer routes the whole batch too (llama.cpp otherwise keeps only the
    output rows there). Raises BenchkitError for a file without experts or a llama.cpp
    that gives no `ffn_moe_topk` tensors.
    """
    from benchkit.engines.llama_cpp.native import LOG, _backend_init

    info = _file_counts(path)
    if not info.n_expert or not info.n_expert_used:
        raise BenchkitError("not a mixture of experts (no expert_count / expert_used_count "
                            "in its header)", file=str(path))
    if n_tokens < 1:
        raise BenchkitError("must be at least 1", field="tokens")
    llama = _backend_init()
    recorder = _TopkRecorder(_ggml_lib(), info.n_expert)
    callback = llama.ggml_backend_sched_eval_callback(recorder)
    mparams = llama.llama_model_default_params()
    mparams.n_gpu_layers = 0
    with LOG.capture() as lines:
        model = llama.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise BenchkitError(f"llama.cpp could not load it: {LOG.first_error(lines) or 'no reason'}",
                            file=str(path))
    try:
        _decode_routed(llama, model, callback, n_tokens, threads, seed)
    finally:
        llama.llama_model_free(model)
    if recorder.error or not recorder.counts:
        raise BenchkitError("no expert choices came back from llama.cpp's eval callback: "
                            + (recorder.error or f"no {ROUTING_TOPK}* tensor in the graph"),
                            file=str(path))
    layers = tuple(LayerRouting(i, recorder.tokens[i], tuple(recorder.counts[i]),
                                info.n_expert_used) for i in sorted(recorder.counts))
    return RoutingSpread(str(path), n_tokens, info.n_expert, info.n_expert_used, layers)


def _decode_routed(llama: Any, model: Any, callback: Any, n_tokens: int,
                   threads: int | None, seed: int) -> None:
    """One context with the eval callback; the batch decoded once, all logits wanted."""
    import random

    from benchkit.engines.llama_cpp.native import LOG

    cparams = llama.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = max(n_tokens, 32)
    cparams.n_threads = cparams.n_threads_batch = threads or os.cpu_count() or 1
    cparams.cb_eval = callback
    cparams.cb_eval_user_data = None
    cparams.no_perf = True
    with LOG.capture() as lines:
        ctx = llama.llama_init_from_model(model, cparams)
    if not ctx:
        raise BenchkitError(f"llama.cpp could not create a context: "
                            f"{LOG.first_error(lines) or 'no reason'}")
    batch = llama.llama_batch_init(n_tokens, 0, 1)
    try:
        n_vocab = llama.llama_vocab_n_tokens(llama.llama_model_get_vocab(model))
        rng = random.Random(seed)
        for i in range(n_tokens):
            batch.token[i] = rng.randrange(3, n_vocab)
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        batch.n_tokens = n_tokens
        with LOG.capture() as lines:
            rc = llama.llama_decode(ctx, batch)
        if rc != 0:
            raise BenchkitError(f"llama_decode returned {rc}: {LOG.first_error(lines) or ''}")
    finally:
        llama.llama_batch_free(batch)
        llama.llama_free(ctx)


def _file_counts(path: str | os.PathLike[str]) -> Any:
    """The file's total and active counts (benchkit.models.gguf.active_counts)."""
    from benchkit.models.gguf import active_counts
    from benchkit.models.gguf import read_header as read

    return active_counts(read(path))


if __name__ == "__main__" and len(sys.argv) == 9 and sys.argv[1] == "quantize":
    sys.exit(_quantize_child(sys.argv[2:]))

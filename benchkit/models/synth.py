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

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def dims(self) -> dict[str, int]:
        """The names a tensor shape in presets.yaml may use."""
        return {"n_embd": self.n_embd, "n_ff": self.n_ff, "n_vocab": self.n_vocab,
                "n_embd_q": self.n_head * self.head_dim,
                "n_embd_kv": self.n_head_kv * self.head_dim}


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the source file: numpy-order shape, how to fill it."""

    name: str
    shape: tuple[int, ...]
    fill: str  # normal | ones | zeros

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> str:
        """F16 for matrices (what llama.cpp's converter writes), F32 for 1-D norms/biases."""
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
    fields = {k: v for k, v in presets[name].items()}
    return Preset(key=name, **fields)


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
        shape = tuple(dims[d] for d in entry["shape"])
        plan.append(TensorPlan(prefix + entry["name"], shape, entry.get("fill", "normal")))

    for entry in layout["global"]:
        add(entry)
    for i in range(preset.n_layers):
        for entry in layout["layer"]:
            add(entry, f"blk.{i}.")
    return plan


def n_params(preset: Preset) -> int:
    """Parameter count of the preset (every element of every tensor)."""
    return sum(t.n_elements for t in plan_tensors(preset))


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

    def file_name(self) -> str:
        parts = [self.preset, self.quant]
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
    extra = {k for k in ("benchkit.token_embedding_type", "benchkit.output_tensor_type")
             if k in header.metadata and k not in want}
    return header.complete and have == want and not extra


# --------------------------------------------------------------------------- synthesize

def synthesize(preset: str, quant: str, *, output: str | os.PathLike[str] | None = None,
               seed: int = 0, fill: str = "normal", token_embedding_type: str | None = None,
               output_tensor_type: str | None = None, threads: int | None = None,
               free_bytes: int | None = None, force: bool = False,
               progress: bool = True, announce: bool = False, file: str | None = None,
               field: str | None = None) -> Synthesis:
    """Write (or find in the cache) the stand-in for `preset` quantized to `quant`.

    `free_bytes` overrides the free space measured on the output's filesystem (and the
    BENCHKIT_FREE_BYTES variable): the "no room" refusal can then be tested honestly.
    `announce` says on stderr that a build starts (it can take minutes; without a
    terminal there is no progress bar). `file`/`field` name where the request came from
    (a suite), for error messages.
    """
    start = time.perf_counter()
    p = get_preset(preset, file=file, field=_sub(field, "preset"))
    ftype = check_quant(quant, file=file, field=_sub(field, "quant"))
    if fill not in FILLS:
        raise BenchkitError(f"unknown fill {fill!r}; one of: {', '.join(FILLS)}",
                            file=file, field=_sub(field, "fill"))
    recipe = Recipe(
        p.key, _canonical_quant(quant), int(seed), fill,
        check_tensor_type(token_embedding_type, file=file,
                          field=_sub(field, "token_embedding_type")),
        check_tensor_type(output_tensor_type, file=file, field=_sub(field, "output_tensor_type")))
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
        print(f"synthesizing {target.name}: {p.name} shapes ({size} parameters), quantized "
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
    source, out = work / "source-f16.gguf", work / "out.gguf"
    try:
        with _terminate_as_interrupt():
            offsets = _write_source_header(source, p, recipe, plan)
            out_bytes = _dry_run(source, out, recipe, ftype, threads, len(plan)) + offsets[0]
            _check_room(target, p, recipe, plan, out_bytes, free_bytes)
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
    _add_model_metadata(writer, p)
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


def _add_model_metadata(writer: Any, p: Preset) -> None:
    writer.add_type("model")
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
                out_bytes: int, free_bytes: int | None) -> None:
    """Refuse before writing data when the source plus the output would not fit."""
    source_bytes = sum(_pad(t.nbytes) for t in plan) if recipe.fill == "normal" else 0
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
    from benchkit.models.gguf import sha256_file

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
    return {
        "file": str(path), "name": meta.get("general.name"), "architecture": arch,
        "n_params": sum(math.prod(shape) for _, shape, _ in h.tensors),
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
        out.append({"file": str(path), "preset": h.metadata.get("benchkit.preset"),
                    "quant": h.metadata.get("benchkit.quant"),
                    "synthetic": bool(h.metadata.get("benchkit.synthetic", False)),
                    "size_bytes": h.size_bytes})
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
                     "n_params": n_params(p), "source": p.source})
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


if __name__ == "__main__" and len(sys.argv) == 9 and sys.argv[1] == "quantize":
    sys.exit(_quantize_child(sys.argv[2:]))

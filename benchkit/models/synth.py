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

The vocabulary is synthesized too (benchkit.models.vocab): a sentencepiece-style one of
the preset's size for every architecture, since tokenizer values do not change speed.
The presets and their tensor plans are benchkit.models.presets; inspecting, listing and
resolving a suite's stand-in, benchkit.models.standins; the routing spread of a mixture of
experts, benchkit.models.routing.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from benchkit.core.errors import BenchkitError
from benchkit.models.presets import (Preset, TensorPlan, canonical_quant, check_quant,
                                     check_tensor_type, get_preset, n_params, plan_tensors,
                                     reduce_preset)
from benchkit.models.vocab import synthetic_vocab

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
        p.key, canonical_quant(quant), int(seed), fill,
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


if __name__ == "__main__" and len(sys.argv) == 9 and sys.argv[1] == "quantize":
    sys.exit(_quantize_child(sys.argv[2:]))

"""llama.cpp in this process: load a model, time pp / tg / pp+tg / chat as llama-bench does.

Built on llama-cpp-python's LOW-LEVEL API (the C functions), not its `Llama` class:
the high-level class adds sampling, caching and Python work per token that llama-bench
does not do, and the two tools must agree on the same build. The timed loops follow
llama-bench's `test_prompt` / `test_gen`:

- pp N: the KV cache is cleared, N random tokens (BOS first when the model adds one) are
  decoded in n_batch chunks, then `llama_synchronize`; tok/s = N / seconds.
- tg N: the KV cache is cleared, N single-token decodes, each followed by
  `llama_synchronize`; tok/s = N / seconds.
- pp N + tg M: both as one request; tok/s = (N + M) / seconds.
- chat: a real prompt is tokenized and decoded, then up to max_tokens tokens are sampled
  with a seeded sampler chain (end of sequence ignored); time to first token, the
  decode rate and every token's latency are recorded.

A CPU threadpool is attached to each context as llama-bench does, so that the work per
decode is the same. Placement (layers offloaded, buffer sizes per device, flash
attention) is read from llama.cpp's own log during load and context creation, never
guessed; the log is captured by a ctypes callback and kept off the console.
"""

from __future__ import annotations

import ctypes
import functools
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.engines.llama_cpp.placement import Placement, parse_placement
from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC as _CtrlC

# llama.cpp's shared libraries are loaded when this module is imported, before anything loads
# numpy: on a CUDA build, numpy's bundled OpenBLAS loaded first made the model load crash
# (seen on Linux with CUDA 13; the other order works everywhere).
try:
    import llama_cpp as _llama_cpp  # noqa: F401
except ImportError:  # reported where an engine is made; environment.py runs without it
    _llama_cpp = None

# ggml_type ids (ggml.h) of the KV cache types a suite may ask for.
_GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
               "iq4_nl": 20, "bf16": 30}
_FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}   # enum llama_flash_attn_type
_LOAD_MODE = {False: 0, True: 1}                # LLAMA_LOAD_MODE_NONE / _MMAP
_SPLIT_MODES = {"none": 0, "layer": 1, "row": 2, "tensor": 3}   # enum llama_split_mode
_GGML_MAX_N_THREADS = 512                       # ggml.h; sizes ggml_threadpool_params.cpumask
_POLL = 50                                      # llama-bench's default --poll


@dataclass
class ChatTiming:
    """One chat request as a user feels it."""

    n_prompt: int
    n_generated: int
    ttft_s: float                   # submit prompt -> first sampled token
    total_s: float                  # submit prompt -> last sampled token
    token_latencies_s: list[float]  # time of each token after the first, since the previous

    @property
    def decode_s(self) -> float:
        return self.total_s - self.ttft_s

    @property
    def decode_tps(self) -> float:
        """(generated - 1) / time from first to last token: the rate a reader sees."""
        return (self.n_generated - 1) / self.decode_s if self.decode_s > 0 else 0.0


# --- llama.cpp's log --------------------------------------------------------------------

_LOG_DEBUG, _LOG_CONT = 1, 5                    # enum ggml_log_level (ggml.h of this build)


class _LlamaLog:
    """Collects llama.cpp's log lines through a ctypes callback, off the console.

    llama.cpp logs from native code, sometimes in pieces (level CONT); text is
    joined and split on newlines. The callback object is kept alive here: if it were
    garbage-collected, llama.cpp would call freed memory.
    """

    def __init__(self) -> None:
        self._partial = ""
        self._level = 1
        self._capture: list[str] | None = None
        self._lock = threading.Lock()
        self._callback: Any = None
        self._null: Any = None

    def install(self) -> None:
        """Route llama.cpp's log to `_on_log`, until `silence()`."""
        import llama_cpp

        if self._callback is None:
            self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def silence(self) -> None:
        """Route llama.cpp's log to a native function that ignores it.

        Between loads and context creations the log holds nothing we record, but llama.cpp
        logs dozens of debug lines per decode: a Python callback for each costs tens of
        microseconds per token, several percent of a fast GPU's decode time (llama-bench
        installs a null logger for the same reason). getpid() of the C library ignores its
        arguments (the caller cleans them up on every supported ABI) and has no side effect,
        so it serves as that null logger. Where it cannot be found, the Python callback stays.
        """
        import llama_cpp

        if self._null is None:
            try:
                libc = ctypes.CDLL(None) if os.name != "nt" else ctypes.cdll.msvcrt
                fn = libc.getpid if os.name != "nt" else libc._getpid
                address = ctypes.cast(fn, ctypes.c_void_p).value
                self._null = llama_cpp.llama_log_callback(address)
            except (OSError, AttributeError):
                return
        llama_cpp.llama_log_set(self._null, ctypes.c_void_p(0))

    def _on_log(self, level: int, text: bytes, user_data: Any) -> None:  # noqa: ARG002
        with self._lock:
            if level != _LOG_CONT:
                self._level = level
            if self._level == _LOG_DEBUG:
                # graph internals: thousands of lines that say nothing about placement;
                # only where each layer went is kept (one whole line per call)
                if self._capture is not None and b"assigned to device" in text:
                    self._capture.append(text.decode("utf-8", errors="replace").strip())
                return
            self._partial += text.decode("utf-8", errors="replace")
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                line = line.rstrip()
                if not line:
                    continue
                if self._capture is not None:
                    self._capture.append(line)

    def capture(self) -> _Capture:
        return _Capture(self)

    def first_error(self, lines: list[str]) -> str | None:
        """The first line of a capture that reads like an error (the cause; later ones are
        consequences), without its function prefix. The metadata dump is skipped: a key
        such as `tokenizer.ggml.unknown_token_id` reads like an error and is none."""
        for line in lines:
            if _METADATA_LINE.search(line):
                continue
            if re.search(r"error|failed|unknown|invalid|missing|exceed", line, re.IGNORECASE):
                return re.sub(r"^\w+: ", "", line.strip())
        return None


# llama.cpp's dump of the model's metadata and of what it read: "- kv  29: ...",
# "- type  f32: ...", "print_info: ...": facts about the file, never the error
_METADATA_LINE = re.compile(r"^\s*(\w+:\s+)?-\s+(kv|type)\s|^\s*print_info:|Dumping metadata")


class _Capture:
    def __init__(self, log: _LlamaLog) -> None:
        self.log, self.lines = log, []

    def __enter__(self) -> list[str]:
        self.log.install()
        self.log._capture = self.lines
        return self.lines

    def __exit__(self, *exc: Any) -> None:
        self.log._capture = None
        self.log.silence()


LOG = _LlamaLog()
_BACKEND_READY = False




def backend_init() -> Any:
    """Import llama_cpp, route its log to us, and initialise the backend once."""
    global _BACKEND_READY
    import llama_cpp

    LOG.install()
    if not _BACKEND_READY:
        llama_cpp.llama_backend_init()
        _BACKEND_READY = True
    return llama_cpp


# --- the CPU threadpool, as llama-bench attaches it -----------------------------------


class _ThreadpoolParams(ctypes.Structure):
    _fields_ = [("cpumask", ctypes.c_bool * _GGML_MAX_N_THREADS), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32),
                ("strict_cpu", ctypes.c_bool), ("paused", ctypes.c_bool)]


def lib_dir() -> Path:
    """The folder of the llama.cpp libraries llama-cpp-python loaded: $LLAMA_CPP_LIB_PATH when
    set (llama-cpp-python then loads libllama from there, e.g. another build of the same
    source), else the package's own lib folder. ggml's libraries are taken from the same
    folder, so that one build is used throughout."""
    import llama_cpp

    env = os.environ.get("LLAMA_CPP_LIB_PATH")
    return Path(env) if env else Path(llama_cpp.__file__).parent / "lib"


def _ggml_cpu_lib() -> Any | None:
    """libggml-cpu from the libraries' folder, or None (e.g. a dynamic-backend build)."""
    libdir = lib_dir()
    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll"):
        if (libdir / name).exists():
            lib = ctypes.CDLL(str(libdir / name))
            if hasattr(lib, "ggml_threadpool_new"):
                lib.ggml_threadpool_new.restype = ctypes.c_void_p
                lib.ggml_threadpool_new.argtypes = [ctypes.POINTER(_ThreadpoolParams)]
                lib.ggml_threadpool_free.argtypes = [ctypes.c_void_p]
                return lib
    return None


# --- the engine ---------------------------------------------------------------------------


class LlamaModel:
    """One model loaded with one llama.cpp configuration; contexts are made per test.

    Usage (a script comparing with llama-bench does exactly this):

        with LlamaModel("model.gguf", LlamaCppOptions(n_threads=2)) as eng:
            seconds = eng.time_pp(512)      # 512 / seconds = pp512 tok/s
            seconds = eng.time_tg(128)      # 128 / seconds = tg128 tok/s
    """

    def __init__(self, model_path: str | os.PathLike[str], settings: LlamaCppOptions,
                 *, label: str | None = None) -> None:
        self.llama = backend_init()
        self.path = str(model_path)
        self.label = label or self.path
        self.settings = settings.resolved()
        self.model: Any = None
        self.ctx: Any = None
        self.n_ctx = 0
        self._threadpool: Any = None
        self._cpu_lib = _ggml_cpu_lib()
        self._rng = random.Random(1)
        self._depth_state: tuple[int, Any] | None = None
        self.placement = Placement(n_gpu_layers_requested=self.settings.n_gpu_layers,
                                   gpu_offload_supported=bool(
                                       self.llama.llama_supports_gpu_offload()),
                                   asked=self.settings.split_asked())
        self._keep: list[Any] = []      # ctypes arrays llama.cpp reads while it loads
        self.load_seconds = self._load()

    # lifecycle

    def __enter__(self) -> LlamaModel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Free the context, the threadpool and the model (in that order)."""
        self._free_context()
        if self.model is not None:
            self.llama.llama_model_free(self.model)
            self.model = None

    def _load(self) -> float:
        llama = self.llama
        params = llama.llama_model_default_params()
        params.n_gpu_layers = self.settings.n_gpu_layers
        params.load_mode = _LOAD_MODE[bool(self.settings.use_mmap)]
        self._split_params(params)
        with LOG.capture() as lines:
            start = time.perf_counter()
            model = llama.llama_model_load_from_file(self.path.encode(), params)
            seconds = time.perf_counter() - start
        if model:
            self.model = model  # freed by close() even if Ctrl-C comes next
        _CtrlC.check()
        if not model:
            reason = LOG.first_error(lines) or "no reason in its log"
            raise BenchkitError(f"llama.cpp could not load the model: {reason}", file=self.label)
        self.description = model_desc(llama, model)     # llama-bench's model_type
        self.vocab = llama.llama_model_get_vocab(model)
        self.n_vocab = llama.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(llama.llama_vocab_get_add_bos(self.vocab))
        self.bos = llama.llama_vocab_bos(self.vocab)
        parse_placement(lines, self.placement)
        self._load_buffers = list(self.placement.buffers)
        self._load_log = list(self.placement.log)
        if self.placement.layers_total is None:
            # llama.cpp prints no offload line when it has no GPU backend: nothing moved.
            self.placement.layers_total = llama.llama_model_n_layer(model) + 1
            if not self.placement.gpu_offload_supported:
                self.placement.note = ("this llama.cpp build has no GPU backend: "
                                       "every layer ran on the CPU")
        return seconds

    def _split_params(self, params: Any) -> None:
        """split_mode, main_gpu, tensor_split and devices, as llama_model_params takes them:
        the split as a float array of llama_max_devices() entries, the devices as a
        NULL-terminated array of ggml device handles (an unknown name is refused here,
        naming what this llama.cpp has)."""
        s = self.settings
        params.split_mode = _SPLIT_MODES[s.split_mode]
        params.main_gpu = s.main_gpu
        if s.tensor_split:
            n = int(self.llama.llama_max_devices())
            split = (ctypes.c_float * n)(*s.tensor_split[:n])
            self._keep.append(split)
            params.tensor_split = ctypes.cast(split, ctypes.POINTER(ctypes.c_float))
        if s.devices:
            handles = device_handles(s.devices)
            self._keep.append(handles)
            params.devices = ctypes.cast(handles, ctypes.c_void_p)

    def new_context(self, n_ctx: int, n_seq: int = 1) -> None:
        """A fresh context of `n_ctx` tokens (the suite's n_ctx wins when set), for `n_seq`
        sequences decoded side by side (llama-perplexity packs chunks so)."""
        llama = self.llama
        self._free_context()
        s = self.settings
        n_ctx = s.n_ctx or n_ctx
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_seq_max = n_seq
        params.n_batch = s.n_batch
        params.n_ubatch = s.n_ubatch
        params.n_threads = params.n_threads_batch = s.n_threads
        params.flash_attn_type = _FLASH_ATTN[s.flash_attn]
        params.type_k = _GGML_TYPES[s.type_k]
        params.op_offload = bool(s.op_offload)
        params.type_v = _GGML_TYPES[s.type_v]
        # a sliding-window layer keeps its window (plus a ubatch) of cells, as llama-bench
        # and llama-server do; the C API's default is a full-size cache on every layer
        params.swa_full = False
        params.no_perf = True
        with LOG.capture() as lines:
            ctx = llama.llama_init_from_model(self.model, params)
        if ctx:
            self.ctx = ctx     # freed by close() even if Ctrl-C comes next
        _CtrlC.check()
        if not ctx:
            reason = LOG.first_error(lines) or "no reason in its log"
            raise BenchkitError(f"llama.cpp could not create a context of {n_ctx} tokens: "
                                f"{reason}", file=self.label)
        self.n_ctx = n_ctx
        self._depth_state = None          # a saved sequence belongs to its context
        # what the previous context allocated is gone: start again from the model's load
        self.placement.buffers = list(self._load_buffers)
        self.placement.log = list(self._load_log)
        self.placement.flash_attn = self.placement.n_ctx = None
        parse_placement(lines, self.placement)
        self._attach_threadpool()

    def _attach_threadpool(self) -> None:
        lib = self._cpu_lib
        if lib is None or not hasattr(self.llama.llama_cpp._lib, "llama_attach_threadpool"):
            return
        params = _ThreadpoolParams()
        params.n_threads, params.prio, params.poll = self.settings.n_threads, 0, _POLL
        pool = lib.ggml_threadpool_new(ctypes.byref(params))
        if not pool:
            return
        attach = self.llama.llama_cpp._lib.llama_attach_threadpool
        attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        attach.restype = None
        attach(self.ctx, pool, None)
        self._threadpool = pool

    def _free_context(self) -> None:
        if self.ctx is not None:
            self.llama.llama_free(self.ctx)
            self.ctx = None
        if self._threadpool is not None and self._cpu_lib is not None:
            self._cpu_lib.ggml_threadpool_free(self._threadpool)
            self._threadpool = None

    def _ensure_context(self, n_tokens: int) -> None:
        if self.ctx is None or self.n_ctx < n_tokens:
            self.new_context(n_tokens)

    # the timed workloads

    def clear(self) -> None:
        """Empty the KV cache: every iteration starts from nothing, as in llama-bench."""
        self.llama.llama_memory_clear(self.llama.llama_get_memory(self.ctx), False)

    def fill(self, depth: int) -> None:
        """Empty the KV cache, then put `depth` random tokens in it, untimed (llama-bench's
        -d: the timed test then runs at that context depth).

        As llama-bench does, the first fill of a context decodes the tokens and keeps the
        sequence's state; later fills at the same depth restore that state instead of
        decoding again, so that every timed iteration starts from the same cache in the
        same way as llama-bench's (decoding the depth before each iteration measured
        5-14% slower at depth on a GPU than llama-bench's restored state).
        """
        llama = self.llama
        self.clear()
        if not depth:
            return
        cached = self._depth_state
        if cached is not None and cached[0] == depth:
            if llama.llama_state_seq_set_data(self.ctx, cached[1], len(cached[1]), 0):
                return
        self._decode_chunks(self._random_prompt(depth))
        llama.llama_synchronize(self.ctx)
        size = llama.llama_state_seq_get_size(self.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        llama.llama_state_seq_get_data(self.ctx, buf, size, 0)
        self._depth_state = (depth, buf)

    def time_pp(self, n_prompt: int, depth: int = 0) -> float:
        """Seconds to process an n_prompt-token prompt (llama-bench's test_prompt)."""
        self._ensure_context(depth + n_prompt)
        chunks = self._random_prompt(n_prompt)    # BOS first, as llama-bench, at any depth
        self.fill(depth)
        start = time.perf_counter()
        self._decode_chunks(chunks)
        self.llama.llama_synchronize(self.ctx)
        return time.perf_counter() - start

    def time_tg(self, n_gen: int, depth: int = 0) -> float:
        """Seconds to generate n_gen tokens one decode at a time (llama-bench's test_gen)."""
        self._ensure_context(depth + n_gen)
        self.fill(depth)
        gen = self._gen_tokens(n_gen)
        start = time.perf_counter()
        self._gen(*gen)
        return time.perf_counter() - start

    def time_pp_tg(self, n_prompt: int, n_gen: int, depth: int = 0) -> float:
        """Seconds for a prompt then generation as one request (llama-bench's pp+tg)."""
        self._ensure_context(depth + n_prompt + n_gen)
        chunks = self._random_prompt(n_prompt)    # BOS first, as llama-bench, at any depth
        self.fill(depth)
        gen = self._gen_tokens(n_gen)
        start = time.perf_counter()
        self._decode_chunks(chunks)
        self.llama.llama_synchronize(self.ctx)
        self._gen(*gen)
        return time.perf_counter() - start

    def _random_prompt(self, n_prompt: int) -> list[Any]:
        """n_prompt random tokens (BOS first if the model adds one) in n_batch chunks.

        Made before the clock starts: Python is slower than llama-bench's std::rand, and
        on a fast GPU the difference would show in pp figures.
        """
        llama, n_batch = self.llama, self.settings.n_batch
        toks = [self._rng.randrange(self.n_vocab) for _ in range(n_prompt)]
        if toks and self.add_bos:
            toks[0] = self.bos
        return [(llama.llama_token * len(part))(*part)
                for part in (toks[i:i + n_batch] for i in range(0, n_prompt, n_batch))]

    def _decode_chunks(self, chunks: list[Any]) -> None:
        for chunk in chunks:
            self._decode(chunk, len(chunk), "prompt batch")

    def _gen_tokens(self, n_gen: int) -> tuple[list[int], Any, Any]:
        """llama-bench's test_gen tokens (BOS or random first, then random), drawn before
        the clock starts, with the one-token buffer and the batch that points at it."""
        llama = self.llama
        first = self.bos if self.add_bos else self._rng.randrange(self.n_vocab)
        toks = [first] + [self._rng.randrange(self.n_vocab) for _ in range(n_gen)]
        one = (llama.llama_token * 1)(first)
        return toks[:n_gen], one, llama.llama_batch_get_one(one, 1)

    def _gen(self, toks: list[int], one: Any, batch: Any) -> None:
        """n single-token decodes, each followed by llama_synchronize (llama-bench's test_gen)."""
        sync, ctx = self.llama.llama_synchronize, self.ctx
        for tok in toks:
            one[0] = tok
            self._decode_batch(batch, "generation")
            sync(ctx)

    def _decode(self, tokens: Any, n: int, what: str) -> None:
        self._decode_batch(self.llama.llama_batch_get_one(tokens, n), what)

    def _decode_batch(self, batch: Any, what: str) -> None:
        res = self.llama.llama_decode(self.ctx, batch)
        _CtrlC.check()
        if res != 0:
            reason = f"llama_decode returned {res}"
            raise BenchkitError(f"failed to decode {what}: {reason}", file=self.label)

    # chat

    def tokenize(self, text: str | bytes, *, special: bool = True) -> list[int]:
        """Tokens of `text` as the model's tokenizer makes them (BOS added if the model
        wants); `special` parses special-token text (chat prompts do, a corpus does not)."""
        llama = self.llama
        raw = text.encode("utf-8") if isinstance(text, str) else text
        cap = len(raw) + 16
        buf = (llama.llama_token * cap)()
        n = llama.llama_tokenize(self.vocab, raw, len(raw), buf, cap, True, special)
        if n < 0:
            buf = (llama.llama_token * -n)()
            n = llama.llama_tokenize(self.vocab, raw, len(raw), buf, -n, True, special)
        return list(buf[:n])

    def chat(self, prompt: str, max_tokens: int, *, temperature: float = 0.8, top_k: int = 40,
             top_p: float = 0.95, seed: int = 42,
             on_token: Callable[[int], None] | None = None) -> ChatTiming:
        """Decode a real prompt, then sample max_tokens tokens; end of sequence is ignored.

        Timing starts when the prompt is submitted (tokenized text in hand) and every
        sampled token is timed when the sampler returns it, as a streaming client sees it.
        """
        llama = self.llama
        tokens = self.tokenize(prompt)
        self._ensure_context(len(tokens) + max_tokens)
        self.clear()
        sampler = self._sampler(temperature, top_k, top_p, seed)
        try:
            n_batch = self.settings.n_batch
            start = time.perf_counter()
            for i in range(0, len(tokens), n_batch):
                chunk = tokens[i:i + n_batch]
                self._decode((llama.llama_token * len(chunk))(*chunk), len(chunk), "prompt")
            tok = llama.llama_sampler_sample(sampler, self.ctx, -1)
            first = last = time.perf_counter()
            latencies: list[float] = []
            one = (llama.llama_token * 1)()
            for k in range(1, max_tokens):
                one[0] = tok
                self._decode(one, 1, "generation")
                tok = llama.llama_sampler_sample(sampler, self.ctx, -1)
                now = time.perf_counter()
                latencies.append(now - last)
                last = now
                if on_token:
                    on_token(k)
        finally:
            llama.llama_sampler_free(sampler)
        return ChatTiming(n_prompt=len(tokens), n_generated=max_tokens, ttft_s=first - start,
                          total_s=last - start, token_latencies_s=latencies)

    def _sampler(self, temperature: float, top_k: int, top_p: float, seed: int) -> Any:
        """top-k -> top-p -> temperature -> seeded draw (greedy when temperature is 0)."""
        llama = self.llama
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if temperature <= 0:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
            return chain
        if top_k > 0:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_k(top_k))
        if top_p < 1:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_p(top_p, 1))
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(temperature))
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(seed))
        return chain


def system_info() -> str:
    """llama.cpp's system info line (compiled CPU features, backends)."""
    llama = backend_init()
    return llama.llama_print_system_info().decode("utf-8", errors="replace").strip()


def build_commit() -> dict[str, str | None]:
    """The llama.cpp commit of the loaded libraries, as llama-bench writes it.

    ggml's `ggml_commit()` is llama.cpp's `git rev-parse --short HEAD` at build time, with
    "-dirty" when the tree had local changes (llama-cpp-python's vendored copy has); the
    tools built from the same source print the bare commit, so `build_commit` is that,
    and `ggml_commit` keeps ggml's own string."""
    backend_init()
    try:
        base = _load_first(lib_dir(), "ggml-base")
        base.ggml_commit.restype = ctypes.c_char_p
        commit = (base.ggml_commit() or b"").decode("utf-8", "replace") or None
    except (OSError, AttributeError):      # a build before ggml_commit() (mid 2025)
        return {"build_commit": None, "ggml_commit": None}
    bare = commit.removesuffix("-dirty") if commit else None
    return {"build_commit": bare if bare and bare != "unknown" else None, "ggml_commit": commit}


def model_desc(llama: Any, model: Any) -> str:
    """llama.cpp's description of a loaded model ("llama 1B Q4_K - Medium"): what
    llama-bench writes as model_type."""
    buf = ctypes.create_string_buffer(256)
    llama.llama_model_desc(model, buf, ctypes.sizeof(buf))
    return buf.value.decode("utf-8", "replace")


@functools.lru_cache(maxsize=8)
def describe_model(path: str) -> str | None:
    """`model_desc` of a GGUF file without reading its weights: llama.cpp's memory-fit
    load (no_alloc, no mmap, nothing offloaded) reads the header and sizes the tensors,
    which is all the description needs (a vocab_only load stops before the
    hyperparameters that name the size). For engines whose model another process loads."""
    llama = backend_init()
    params = llama.llama_model_default_params()
    params.no_alloc = True
    params.load_mode = _LOAD_MODE[False]
    params.n_gpu_layers = 0
    with LOG.capture():
        model = llama.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return None
    try:
        return model_desc(llama, model)
    finally:
        llama.llama_model_free(model)


def _ggml_libs() -> tuple[Any, Any]:
    """ggml's registry (libggml) and device functions (libggml-base) of the loaded build,
    typed; raises OSError where the build has no such libraries."""
    libdir = lib_dir()
    backend_init()
    ggml = _load_first(libdir, "ggml")
    base = _load_first(libdir, "ggml-base")
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(base, name).restype = ctypes.c_char_p
        getattr(base, name).argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.POINTER(ctypes.c_size_t)]
    return ggml, base


def iter_devices() -> Iterator[dict[str, Any]]:
    """The devices in ggml's backend registry: name, description, type, memory."""
    try:
        ggml, base = _ggml_libs()
    except OSError:
        return
    kinds = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        base.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        yield {"name": base.ggml_backend_dev_name(dev).decode(),
               "description": base.ggml_backend_dev_description(dev).decode(),
               "type": kinds.get(base.ggml_backend_dev_type(dev), "other"),
               "memory_bytes": int(total.value) or None}


def device_handles(names: tuple[str, ...]) -> Any:
    """A NULL-terminated array of the ggml device handles of `names` (llama_model_params
    .devices), or one error line naming the setting and the devices this llama.cpp has.
    The CPU is not a device to offload to (llama.cpp refuses it the same way)."""
    try:
        ggml, base = _ggml_libs()
    except OSError as exc:
        raise BenchkitError(f"cannot list llama.cpp's devices ({exc})",
                            field="engine.devices") from None
    found = {}
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        if base.ggml_backend_dev_type(dev) != 0:          # GGML_BACKEND_DEVICE_TYPE_CPU
            found[base.ggml_backend_dev_name(dev).decode()] = dev
    missing = [n for n in names if n not in found]
    if missing:
        have = ", ".join(found) or "none besides the CPU"
        raise BenchkitError(f"no device {missing[0]} in this llama.cpp (its devices: {have})",
                            field="engine.devices")
    return (ctypes.c_void_p * (len(names) + 1))(*[found[n] for n in names], None)


def _load_first(libdir: Path, stem: str) -> Any:
    for name in (f"lib{stem}.so", f"lib{stem}.dylib", f"{stem}.dll"):
        if (libdir / name).exists():
            return ctypes.CDLL(str(libdir / name))
    raise OSError(f"{stem} not found")

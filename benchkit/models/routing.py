"""The routing spread of a mixture of experts: which experts each layer's router chose over
a real decode, recorded through llama.cpp's eval callback on `ffn_moe_topk-<layer>`.

A stand-in's random router weights decide how evenly its experts share the tokens, and
that decides how much expert weight a prompt batch reads: the spread measures it on the
file itself instead of assuming it.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from typing import Any

from benchkit.core.errors import BenchkitError


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
    from benchkit.engines.llama_cpp.native import LOG, backend_init

    info = _file_counts(path)
    if not info.n_expert or not info.n_expert_used:
        raise BenchkitError("not a mixture of experts (no expert_count / expert_used_count "
                            "in its header)", file=str(path))
    if n_tokens < 1:
        raise BenchkitError("must be at least 1", field="tokens")
    llama = backend_init()
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

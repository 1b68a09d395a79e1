"""llama.cpp's side of the ppl workload: the text tokenized as llama-perplexity tokenizes it,
cut into chunks and packed into sequences, the chunks decoded group by group for the logits
of their scored rows, a reference model loaded beside the one under test, and the
llama-perplexity tool that checks benchkit's figures agree with llama.cpp's own.

The workload (benchkit.workloads.ppl.workload) reads the text, times the passes and turns
the logits into figures; nothing here reads a suite.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from benchkit.core.errors import BenchkitError

# settings that take effect when the model is loaded; the others are the context's
LOAD_SETTINGS = ("n_gpu_layers", "use_mmap")


@dataclass(frozen=True)
class TextPlan:
    """The tokenized text and how it is cut and packed for one model and configuration."""

    tokens: Any                 # numpy int32: the whole text
    n_chunks: int
    n_seq: int                  # chunks decoded side by side
    n_batch: int                # tokens per decode (llama-perplexity's min(n_batch, n_ctx))
    ctx: int
    warnings: tuple[str, ...] = ()

    @property
    def first(self) -> int:
        return self.ctx // 2


def tokenize(native: Any, text: bytes, where: Any) -> Any:
    """The text's tokens as llama-perplexity makes them: special tokens added (BOS where the
    model adds it), special-token text not parsed (common_tokenize's defaults). `where`
    places the error in the suite (`where.error(message)`)."""
    import numpy as np

    if native.llama.llama_vocab_get_add_eos(native.vocab):
        raise where.error("this model's tokenizer adds an end-of-sequence token; "
                          "llama-perplexity refuses such models and so does benchkit")
    return np.asarray(native.tokenize(text, special=False), dtype=np.int32)


def plan_chunks(tokens: Any, settings: Any, *, ctx: int, chunks: int | None, text: str,
                test: str, where: Any) -> TextPlan:
    """Choose the chunks and the packing as llama-perplexity does: `chunks` chunks of `ctx`
    tokens (None: every whole one), n_batch / ctx of them decoded side by side, no more
    than the engine's n_ctx holds."""
    available = len(tokens) // ctx
    if available < 1:
        raise where.error(f"{text} is {len(tokens)} tokens with this model, shorter than "
                          f"one chunk of n_ctx {ctx}", "text")
    warnings = []
    n_chunks = available if chunks is None else min(chunks, available)
    if chunks is not None and chunks > available:
        warnings.append(f"{text} holds {available} chunks of {ctx} tokens with this model "
                        f"({len(tokens)} tokens); {available} evaluated, {chunks} asked")
    s = settings
    n_seq = max(1, s.n_batch // ctx)
    if s.n_ctx:
        if s.n_ctx < ctx:
            raise BenchkitError(f"{test} needs a context of {ctx} tokens; n_ctx is "
                                f"{s.n_ctx}", field="engine.n_ctx")
        n_seq = min(n_seq, s.n_ctx // ctx)
    return TextPlan(tokens, n_chunks, n_seq, min(s.n_batch, n_seq * ctx), ctx,
                    tuple(warnings))


def passes(native: Any, plan: TextPlan, groups: range | None = None
           ) -> Iterator[tuple[float, list[tuple[Any, Any]]]]:
    """Decode the chunks group by group, as llama-perplexity does; yield (seconds of the
    decodes, [(logits of the scored rows, their target tokens) per chunk]).

    The logits are a view into llama.cpp's buffer (or a copy, when a chunk takes several
    decodes) that holds until the next decode: consume them before asking for more.
    The batch is filled before the clock starts; the clock stops after llama_synchronize.
    """
    import numpy as np

    llama, ctx, n_ctx, first = native.llama, native.ctx, plan.ctx, plan.first
    n_vocab = native.n_vocab
    batch = llama.llama_batch_init(plan.n_batch, 0, 1)
    try:
        tok = np.ctypeslib.as_array(batch.token, shape=(plan.n_batch,))
        pos = np.ctypeslib.as_array(batch.pos, shape=(plan.n_batch,))
        nseq = np.ctypeslib.as_array(batch.n_seq_id, shape=(plan.n_batch,))
        outs = np.ctypeslib.as_array(batch.logits, shape=(plan.n_batch,))
        n_batches = (n_ctx + plan.n_batch - 1) // plan.n_batch
        for i in groups if groups is not None else range(0, plan.n_chunks, plan.n_seq):
            n_seq = min(plan.n_seq, plan.n_chunks - i)
            start = i * n_ctx
            llama.llama_memory_clear(llama.llama_get_memory(ctx), True)
            seconds, kept = 0.0, []
            for j in range(n_batches):
                size = min(n_ctx - j * plan.n_batch, plan.n_batch)
                n = _fill(batch, tok, pos, nseq, outs, plan, start, j, size, n_seq, native)
                t0 = time.perf_counter()
                native._decode_batch(batch, f"perplexity chunk {i + 1}")
                llama.llama_synchronize(ctx)
                seconds += time.perf_counter() - t0
                n_out = int(outs[:n].sum())
                if n_out:
                    rows = np.ctypeslib.as_array(llama.llama_get_logits(ctx),
                                                 shape=(n_out, n_vocab))
                    kept.append(rows if n_batches == 1 else rows.copy())
            logits = kept[0] if len(kept) == 1 else np.concatenate(kept)
            per = n_ctx - first
            yield seconds, [(logits[s * per:(s + 1) * per - 1],
                             plan.tokens[start + s * n_ctx + first + 1:start + (s + 1) * n_ctx])
                            for s in range(n_seq)]
    finally:
        llama.llama_batch_free(batch)


def _fill(batch: Any, tok: Any, pos: Any, nseq: Any, outs: Any, plan: TextPlan, start: int,
          j: int, size: int, n_seq: int, native: Any) -> int:
    """Batch j of the group at token `start`: `size` tokens of each of n_seq chunks, the
    first token of each chunk BOS where the model adds one, logits from position n_ctx/2."""
    import numpy as np

    n = 0
    positions = np.arange(j * plan.n_batch, j * plan.n_batch + size, dtype=np.int32)
    for s in range(n_seq):
        at = start + s * plan.ctx + j * plan.n_batch
        tok[n:n + size] = plan.tokens[at:at + size]
        if j == 0 and native.add_bos:
            tok[n] = native.bos
        pos[n:n + size] = positions
        outs[n:n + size] = positions >= plan.first
        for k in range(n, n + size):
            batch.seq_id[k][0] = s
        n += size
    nseq[:n] = 1
    batch.n_tokens = n
    return n


@contextlib.contextmanager
def model_for(native: Any, model_path: str, settings: Any, label: str) -> Iterator[Any]:
    """The model that computes a reference: the loaded model `native` itself when the
    reference is the same file loaded the same way (only context settings differ, e.g.
    the KV type: no second copy of the weights in memory), else the reference loaded
    beside it. The context made here is replaced by the case's own before its pass."""
    from benchkit.engines.llama_cpp.native import LlamaModel

    same_load = os.path.realpath(model_path) == os.path.realpath(native.path) and all(
        getattr(settings, k) == getattr(native.settings, k) for k in LOAD_SETTINGS)
    if not same_load:
        with LlamaModel(model_path, settings, label=label) as ref:
            yield ref
        return
    own = native.settings
    native.settings = settings
    try:
        yield native
    finally:
        native.settings = own


def llama_perplexity_tool() -> Path:
    """llama-perplexity built as the installed llama-cpp-python was (its backend, no extra
    CMake switches: `benchkit engines build` without any), for checks of agreement.

    A build with other switches computes other logits: an AVX2-only build of the same
    source gave SmolLM2 a perplexity 0.8% higher at n_ctx 64 than this engine and the
    default build, which agree to the last printed digit. $BENCHKIT_LLAMA_PERPLEXITY or
    PATH still win, as in benchkit.engines.llama_cpp.build.find_tool.
    """
    import shutil

    from benchkit.engines.llama_cpp import build

    name = "llama-perplexity"
    if os.environ.get(build.env_var(name)) or shutil.which(name):
        return build.find_tool(name)
    wheel = build.wheel_build()
    want = [*build.BASE_CMAKE_ARGS, *wheel.cmake_args]
    for b in build.cached_builds():
        path = Path(b.tools.get(name) or Path(b.bin) / name)
        if (b.llama_cpp_python, b.backend, list(b.cmake_args)) == (
                wheel.version, wheel.backend, want) and path.is_file():
            return path
    raise BenchkitError(f"no {name} built as the installed llama-cpp-python {wheel.version} "
                        f"({wheel.backend}) was: run `benchkit engines build` (with no extra "
                        f"CMake switches), or set ${build.env_var(name)}")

"""mlx: an MLX model folder run by mlx-lm in this process (a worker, like every engine).

The question on a Mac is "llama.cpp or MLX?": this engine measures MLX the way benchkit
measures llama.cpp in process (the loops are in `benchkit.engines.mlx.native`), so that the
two sit side by side in one run on the same model shape: the GGUF for the llama.cpp
engines, its MLX folder for this one (`benchkit models synth PRESET --format mlx`). Each
engine runs only the model format it loads; a pair that does not fit is recorded as
unsupported.

Every case records MLX's own figures beside benchkit's (its prompt and generation rates
for pp+tg and chat, its peak memory for every iteration), the mlx and mlx-lm versions,
the device, and the quantization bits and group size. Its placement says `backend: mlx`,
so that projections and reports never mistake an MLX figure for a llama.cpp one.

This module imports no MLX: `pip install 'benchkit[mlx]'` is needed only to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchkit.core.errors import BenchkitError
from benchkit.engines.base import Engine, Iteration, ModelFile, Options, Session, setting
from benchkit.models.mlx import INSTALL_HINT, MLX_BITS, MLX_FORMAT, MLX_GROUP_SIZES

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

BACKEND = "mlx"
_BITS = {"anyOf": [{"type": "null"}, {"enum": list(MLX_BITS)}],
         "x-error": f"must be null or one of {list(MLX_BITS)}"}
_GROUP = {"enum": list(MLX_GROUP_SIZES), "x-error": f"must be one of {list(MLX_GROUP_SIZES)}"}
_COUNT_OR_NULL = {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}],
                  "x-error": "must be null or a positive integer"}
_COUNT = {"type": "integer", "minimum": 1, "x-error": "must be a positive integer"}


@dataclass(frozen=True)
class MLXOptions(Options):
    """mlx-lm's settings for one configuration."""

    bits: int | None = setting(
        None, _BITS, "weight bits: null runs the folder as stored; a float folder is "
        "quantized at load (mlx.nn.quantize); a folder quantized to other bits is refused")
    group_size: int = setting(
        64, _GROUP, "weights per quantization group when bits quantizes at load")
    kv_bits: int | None = setting(
        None, _BITS, "KV cache bits (mlx-lm's QuantizedKVCache from the first token); null: "
        "the model's float type")
    kv_group_size: int = setting(64, _GROUP, "values per KV cache quantization group")
    max_kv_size: int | None = setting(
        None, _COUNT_OR_NULL, "a rotating KV cache of this many tokens (mlx-lm's "
        "max_kv_size); null: the cache grows with the context")
    max_tokens: int = setting(
        4096, _COUNT, "the most tokens one request may generate (tg, pp+tg, chat); a "
        "workload asking more fails its case", sweep=False, column=False)
    prefill_step_size: int = setting(
        2048, _COUNT, "prompt tokens per forward pass (mlx-lm's prefill_step_size, as "
        "llama.cpp's n_batch)")


class MLX(Engine):
    kind = "mlx"
    order = 50
    layer = "in process: MLX through mlx-lm, timed as llama.cpp in process"
    Options = MLXOptions
    workloads = frozenset({"pp", "tg", "pp+tg", "chat"})
    model_formats = frozenset({MLX_FORMAT})

    @classmethod
    def availability(cls) -> str | None:
        """Why MLX cannot run here (`benchkit engines list`), or None."""
        import importlib.util

        def absent(name: str) -> bool:
            try:
                return importlib.util.find_spec(name) is None
            except (ImportError, ValueError):     # a module set to None, a broken install
                return True

        missing = [m for m in ("mlx", "mlx_lm") if absent(m)]
        if missing:
            return f"{' and '.join(missing)} not installed: {INSTALL_HINT}"
        return None

    def open(self, model: ModelFile | None) -> Session:
        from benchkit.engines.mlx.native import MLXModel

        assert model is not None
        return MLXSession(MLXModel(model.path, self.options, label=model.label))


class MLXSession(Session):
    """A model folder loaded by mlx-lm in this process."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.load_seconds = native.load_seconds
        self.n_ctx: int | None = None

    def facts(self) -> dict[str, Any]:
        from benchkit.engines.mlx.native import versions

        n = self.native
        v = versions()
        q = n.quant
        return {"name": "mlx-lm", "version": v.get("mlx-lm"), "process": "in process",
                "backend": BACKEND, "versions": v, "device": n.device(),
                "bits": q[0] if q else None, "group_size": q[1] if q else None,
                "quantized_at_load": bool(q) and n.stored_quant is None}

    def placement(self) -> dict[str, Any] | None:
        n = self.native
        dev = n.device()
        return {"backend": BACKEND, "device_kind": dev["kind"], "devices": [dev["name"]],
                "buffers": [{"device": dev["name"], "kind": "model",
                             "mib": round(n.model_bytes / 2**20, 2)}]}

    def prepare(self, workload: Workload) -> list[str]:
        o = self.native.options
        if workload.kind == "chat":
            need = len(self.native.tokenize(workload.prompt)) + workload.n_gen
        else:
            need = workload.depth + workload.n_prompt + workload.n_gen
        if workload.n_gen > o.max_tokens:
            raise BenchkitError(f"{workload.test} generates {workload.n_gen} tokens; "
                                f"max_tokens is {o.max_tokens}", field="engine.max_tokens")
        self.n_ctx = need
        if o.max_kv_size is not None and o.max_kv_size < need:
            return [f"{workload.test} needs {need} tokens of context; the rotating KV cache "
                    f"keeps {o.max_kv_size}"]
        return []

    def iteration(self, w: Workload) -> Iteration:
        n = self.native
        if w.kind == "pp":
            t = n.time_pp(w.n_prompt, w.depth)
            return Iteration(w.n_prompt, t.seconds, extra={"peak_memory_bytes":
                                                          t.peak_memory_bytes})
        if w.kind == "tg":
            t = n.time_tg(w.n_gen, w.depth)
            return Iteration(w.n_gen, t.seconds, extra={"peak_memory_bytes":
                                                       t.peak_memory_bytes})
        if w.kind == "chat":
            t = n.generate(n.tokenize(w.prompt), w.max_tokens, temperature=w.temperature,
                           top_k=w.top_k, top_p=w.top_p, seed=w.seed)
            stamps = t.extra.pop("stamps")
            decode_s = stamps[-1] - stamps[0]
            n_gen = len(stamps)
            return Iteration(n_gen - 1, decode_s, ttft_s=stamps[0],
                             token_latencies_s=[b - a for a, b in zip(stamps, stamps[1:])],
                             extra={**t.extra, "decode_tps": (n_gen - 1) / decode_s
                                    if decode_s > 0 else 0.0, "total_s": stamps[-1],
                                    "peak_memory_bytes": t.peak_memory_bytes})
        t = n.generate(n.random_prompt(w.n_prompt), w.n_gen, temperature=0.0,
                       depth=w.depth)
        stamps = t.extra.pop("stamps")
        return Iteration(w.n_prompt + w.n_gen, t.seconds,
                         extra={**t.extra, "ttft_s": stamps[0],
                                "peak_memory_bytes": t.peak_memory_bytes})

    def close(self) -> None:
        self.native.close()

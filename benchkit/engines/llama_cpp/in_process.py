"""llama-cpp-python in process: llama.cpp's C API, timed the way llama-bench times it.

The timed loops and the placement parsing live in `benchkit.engines.llama_cpp.native`, which
loads llama.cpp's libraries; this module only declares the engine and is cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchkit.engines.base import Engine, Iteration, ModelFile, Session
from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload


@dataclass(frozen=True)
class Options(LlamaCppOptions):
    """llama-cpp-python takes exactly llama.cpp's settings."""


class LlamaCppPython(Engine):
    kind = "llama-cpp-python"
    order = 0
    layer = "in process: llama.cpp's C API through llama-cpp-python, timed as llama-bench"
    Options = Options
    workloads = frozenset({"pp", "tg", "pp+tg", "chat", "ppl"})

    def open(self, model: ModelFile | None) -> Session:
        from benchkit.engines.llama_cpp.native import LlamaModel

        assert model is not None
        return InProcess(LlamaModel(model.path, self.options, label=model.label))


class InProcess(Session):
    """A model loaded in this process; one context per workload, sized as llama-bench."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.load_seconds = native.load_seconds
        self.n_ctx: int | None = None

    def facts(self) -> dict[str, Any]:
        """The package, and what llama-bench would write for this build and model (its
        build_commit and model_type), so that exports line up with llama-bench's rows."""
        from importlib.metadata import PackageNotFoundError, version

        from benchkit.engines.llama_cpp.native import build_commit

        try:
            v = version("llama_cpp_python")
        except PackageNotFoundError:
            v = None
        return {"name": "llama-cpp-python", "version": v, "process": "in process",
                **build_commit(), "model_type": self.native.description}

    def placement(self) -> dict[str, Any] | None:
        return self.native.placement.to_dict()

    def prepare(self, workload: Workload) -> list[str]:
        native = self.native
        own = getattr(workload, "prepare_session", None)  # e.g. ppl: its own context
        if own is not None:
            return own(self)
        if workload.kind == "chat":
            need = len(native.tokenize(workload.prompt)) + workload.n_gen
        else:
            need = workload.depth + workload.n_prompt + workload.n_gen
        if native.settings.n_ctx and native.settings.n_ctx < need:
            raise BenchkitError(
                f"{workload.test} needs a context of {need} tokens; n_ctx is "
                f"{native.settings.n_ctx}", field="engine.n_ctx")
        native.new_context(need)
        self.n_ctx = native.n_ctx
        return placement_warnings(native.placement)

    def iteration(self, w: Workload) -> Iteration:
        native = self.native
        if w.kind == "chat":
            c = native.chat(w.prompt, w.max_tokens, temperature=w.temperature, top_k=w.top_k,
                            top_p=w.top_p, seed=w.seed)
            # tokens / seconds: the tokens after the first, over the time from first to last
            return Iteration(c.n_generated - 1, c.decode_s, ttft_s=c.ttft_s,
                             token_latencies_s=c.token_latencies_s,
                             extra={"n_prompt": c.n_prompt, "n_generated": c.n_generated,
                                    "decode_tps": c.decode_tps, "total_s": c.total_s})
        if w.kind == "pp":
            return Iteration(w.n_prompt, native.time_pp(w.n_prompt, w.depth))
        if w.kind == "tg":
            return Iteration(w.n_gen, native.time_tg(w.n_gen, w.depth))
        return Iteration(w.n_prompt + w.n_gen,
                         native.time_pp_tg(w.n_prompt, w.n_gen, w.depth))

    def close(self) -> None:
        self.native.close()


def placement_warnings(p: Any) -> list[str]:
    """Fewer layers on the GPU than asked, when a GPU backend exists."""
    if not p.gpu_offload_supported or p.layers_total is None:
        return []
    asked = p.n_gpu_layers_requested
    expected = p.layers_total if asked < 0 else min(asked, p.layers_total)
    if p.layers_offloaded < expected:
        return [f"only {p.layers_offloaded}/{p.layers_total} layers offloaded to the GPU "
                f"(asked for {'all' if asked < 0 else asked})"]
    return []

"""MLX in this process: load an MLX model folder with mlx-lm, time pp / tg / pp+tg / chat.

Imports mlx and mlx-lm (so only the worker that measures loads them). The timed loops
mirror llama.cpp's (benchkit.engines.llama_cpp.native) on MLX's own API:

- pp N: the KV cache is emptied (trimmed back to the context depth), N random tokens
  (drawn before the clock starts) go through the model as mlx-lm's generate_step takes a
  prompt: the first N - 1 in chunks of `prefill_step_size`, each evaluated up to the KV
  cache, then the last one with its logits; `mx.eval` ends each step (MLX is lazy: nothing
  runs until it is asked for, as llama_synchronize waits for llama.cpp's work).
  tok/s = N / seconds.
- tg N: N single-token forward passes of random tokens, each ended by `mx.eval` of its
  logits (llama-bench's test_gen: tokens are not sampled). tok/s = N / seconds.
- pp N + tg M and chat: one request through `mlx_lm.stream_generate` (the path mlx_lm.generate
  and mlx_lm.server use), every token stamped when the generator yields it; end of
  sequence is ignored, as llama.cpp's chat does. MLX's own figures (`prompt_tps`,
  `generation_tps`, `peak_memory`) are recorded beside benchkit's.
- depth D: the cache is filled with D random tokens once (untimed); each iteration then
  trims the cache back to D (the KV entries past D are dropped, as llama-bench restores
  its saved state). A cache that cannot be trimmed (a rotating one that wrapped) is
  filled again.

Every figure is benchkit's `time.perf_counter` in this process (clock `client`); MLX's peak
memory (`mx.get_peak_memory`, reset before each iteration) is kept with each iteration.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.core.interrupts import CtrlC
from benchkit.models.mlx import INSTALL_HINT, quantization, read_config, weight_files


def _import_mlx() -> tuple[Any, Any]:
    try:
        import mlx.core as mx
        import mlx_lm
    except ImportError as exc:
        raise BenchkitError(f"the mlx engine needs MLX ({exc.name or exc} is not "
                            f"installed): {INSTALL_HINT}") from None
    return mx, mlx_lm


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("mlx", "mlx-metal", "mlx-cpu", "mlx-lm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class Timed:
    """One timed request: its seconds and what MLX said about it."""

    seconds: float
    peak_memory_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


class MLXModel:
    """An MLX model folder loaded by mlx-lm, with the settings of benchkit's mlx engine."""

    def __init__(self, path: str | os.PathLike[str], options: Any, *, label: str) -> None:
        self.mx, self.mlx_lm = _import_mlx()
        self.path, self.options, self.label = Path(path), options, label
        config = read_config(self.path)
        self.stored_quant = quantization(config, file=str(self.path / "config.json"))
        weight_files(self.path)
        self._check_bits()
        self._rng = random.Random(0)
        start = time.perf_counter()
        self.model, self.tokenizer = self._load()
        self.quant = self._quantize_on_load()
        self.mx.eval(self.model.parameters())
        self.load_seconds = time.perf_counter() - start
        self.model_bytes = int(self.mx.get_active_memory())
        self.n_vocab = int(config.get("vocab_size") or self.tokenizer.vocab_size)
        self.cache: list[Any] | None = None
        self.depth = 0

    def _check_bits(self) -> None:
        bits, stored = self.options.bits, self.stored_quant
        if bits is not None and stored is not None and stored[0] != bits:
            raise BenchkitError(f"the folder is quantized to {stored[0]} bits; bits {bits} "
                                f"would need the float model", file=str(self.path),
                                field="engine.bits")

    def _load(self) -> tuple[Any, Any]:
        try:
            return self.mlx_lm.load(str(self.path))
        except Exception as exc:  # noqa: BLE001 - mlx-lm raises ValueError, KeyError, OSError...
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise BenchkitError(f"mlx-lm could not load the model ({type(exc).__name__}: "
                                f"{text})", file=str(self.path)) from None

    def _quantize_on_load(self) -> tuple[int, int] | None:
        o = self.options
        if o.bits is None or self.stored_quant is not None:
            return self.stored_quant
        import mlx.nn as nn

        nn.quantize(self.model, group_size=o.group_size, bits=o.bits)
        return o.bits, o.group_size

    # the cache -------------------------------------------------------------------------

    def _new_cache(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache

        o = self.options
        cache = make_prompt_cache(self.model, max_kv_size=o.max_kv_size)
        if o.kv_bits is not None:
            try:
                cache = [c.to_quantized(group_size=o.kv_group_size, bits=o.kv_bits)
                         for c in cache]
            except NotImplementedError as exc:
                raise BenchkitError(f"kv_bits with max_kv_size: {exc}",
                                    field="engine.kv_bits") from None
        return cache

    def fill(self, depth: int) -> list[Any]:
        """The cache holding `depth` random tokens (filled once, trimmed back after)."""
        cache = self.cache
        if cache is not None and self.depth == depth and all(
                c.is_trimmable() and c.offset >= depth for c in cache):
            for c in cache:
                if c.offset > depth:
                    c.trim(c.offset - depth)
            return cache
        self.cache, self.depth = None, 0
        cache = self._new_cache()
        if depth:
            self._prefill(self._tokens(depth), cache)
            self.mx.eval([c.state for c in cache])
        self.cache, self.depth = cache, depth
        return cache

    def _tokens(self, n: int) -> Any:
        return self.mx.array([self._rng.randrange(self.n_vocab) for _ in range(n)],
                             dtype=self.mx.uint32)

    def _prefill(self, tokens: Any, cache: list[Any]) -> None:
        """Every token but the last into the cache, in prefill_step_size chunks (as
        mlx-lm's generate_step)."""
        mx, step = self.mx, self.options.prefill_step_size
        n = tokens.size
        for i in range(0, n - 1, step):
            self.model(tokens[i:min(i + step, n - 1)][None], cache=cache)
            mx.eval([c.state for c in cache])
            CtrlC.check()

    # the timed workloads --------------------------------------------------------------

    def _reset_peak(self) -> None:
        self.mx.reset_peak_memory()

    def time_pp(self, n_prompt: int, depth: int = 0) -> Timed:
        mx = self.mx
        tokens = self._tokens(n_prompt)
        mx.eval(tokens)
        cache = self.fill(depth)
        self._reset_peak()
        start = time.perf_counter()
        self._prefill(tokens, cache)
        logits = self.model(tokens[-1:][None], cache=cache)[:, -1, :]
        mx.eval(logits)
        seconds = time.perf_counter() - start
        return Timed(seconds, int(mx.get_peak_memory()))

    def time_tg(self, n_gen: int, depth: int = 0) -> Timed:
        mx = self.mx
        tokens = self._tokens(n_gen)
        mx.eval(tokens)
        cache = self.fill(depth)
        self._reset_peak()
        start = time.perf_counter()
        for i in range(n_gen):
            mx.eval(self.model(tokens[i:i + 1][None], cache=cache))
            CtrlC.check()
        seconds = time.perf_counter() - start
        return Timed(seconds, int(mx.get_peak_memory()))

    def generate(self, prompt: list[int], max_tokens: int, *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 42,
                 depth: int = 0) -> Timed:
        """One request through mlx_lm.stream_generate, end of sequence ignored; the time
        of every yielded token since submitting the prompt."""
        from mlx_lm.generate import stream_generate
        from mlx_lm.sample_utils import make_sampler

        mx, o = self.mx, self.options
        cache = self.fill(depth)
        sampler = make_sampler(temp=temperature, top_p=top_p if top_p < 1 else 0.0,
                               top_k=top_k)
        mx.random.seed(seed)
        kv = ({"kv_bits": o.kv_bits, "kv_group_size": o.kv_group_size,
               "quantized_kv_start": 0} if o.kv_bits is not None else {})
        eos = set(self.tokenizer.eos_token_ids)
        self.tokenizer.eos_token_ids = set()        # every token asked for is generated
        stamps: list[float] = []
        last: Any = None
        self._reset_peak()
        try:
            start = time.perf_counter()
            for last in stream_generate(self.model, self.tokenizer, mx.array(prompt),
                                        max_tokens=max_tokens, sampler=sampler,
                                        prompt_cache=cache,
                                        prefill_step_size=o.prefill_step_size, **kv):
                stamps.append(time.perf_counter() - start)
                CtrlC.check()
        finally:
            self.tokenizer.eos_token_ids = eos
        if last is None or not stamps:
            raise BenchkitError("mlx-lm generated no token", file=str(self.path))
        return Timed(stamps[-1], int(mx.get_peak_memory()), extra={
            "stamps": stamps, "n_prompt": len(prompt) + depth,
            "n_generated": int(last.generation_tokens),
            "mlx_prompt_tps": float(last.prompt_tps),
            "mlx_generation_tps": float(last.generation_tps),
            "mlx_peak_memory_gb": float(last.peak_memory)})

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def random_prompt(self, n: int) -> list[int]:
        return [self._rng.randrange(self.n_vocab) for _ in range(n)]

    # what it is --------------------------------------------------------------------------

    def device(self) -> dict[str, Any]:
        mx = self.mx
        dev = mx.default_device()
        kind = "gpu" if dev.type == mx.DeviceType.gpu else "cpu"
        info: dict[str, Any] = {}
        try:
            info = {k: v for k, v in mx.device_info().items()
                    if isinstance(v, (str, int, float, bool))}
        except (AttributeError, RuntimeError):
            pass
        return {"kind": kind, "name": str(dev), "metal": bool(mx.metal.is_available()),
                "info": info}

    def close(self) -> None:
        self.model = self.tokenizer = self.cache = None
        if getattr(self, "mx", None) is not None:
            self.mx.clear_cache()

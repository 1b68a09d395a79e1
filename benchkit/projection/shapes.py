"""Model shapes: what a model does per token (weight bytes, layers, KV cache, matrix
sizes), from a GGUF header, a preset (benchkit/data/presets.yaml) or the typical shape of its
size (projection.yaml `model_shapes`)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.models.quants import bits_per_weight, dense_bits_per_weight
from benchkit.projection.priors import Priors

DEFAULT_QUANT = "Q4_K_M"
# A Llama-style layer: attention norm, Q, K, V, O, FFN norm, gate, up, down.
DEFAULT_LAYER_TENSORS = 9
# llama.cpp sizes a sliding layer's cache in steps of 256 cells (llama-kv-cache-iswa.cpp)
SWA_CELLS_STEP = 256
GB = 1e9


def quant_kind(quant: str | None) -> str:
    """The kernel family llama.cpp runs for a GGUF type: f16, q8, q4 (legacy), k or iq.

    Dequantization work differs by family (K-quants unpack sub-block scales, IQ types
    look up grids), so the decode model carries one dequant cost per family.
    """
    q = (quant or DEFAULT_QUANT).upper().replace("-", "_")
    if q in ("F32", "F16", "BF16"):
        return "f16"
    if q.startswith("Q8"):
        return "q8"
    if q.startswith(("IQ", "TQ")):
        return "iq"
    if "_K" in q:
        return "k"
    return "q4"


@dataclass(frozen=True)
class ModelShape:
    """What the model does per token: bytes, layers, KV-cache and matrix shapes.

    Comes from a GGUF header, a preset (benchkit/data/presets.yaml) or, failing both, the
    typical shape for the parameter count (`source` says which).
    """

    n_params: float
    model_bytes: float
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    tied_embeddings: bool
    quant: str
    source: str
    # A mixture of experts: n_expert routed experts per layer, n_expert_used of them run
    # for each token; expert_params / expert_bytes are the routed-expert tensors' totals
    # (all experts, every layer). 0 for a dense model.
    n_expert: int = 0
    n_expert_used: int = 0
    expert_params: float = 0.0
    expert_bytes: float = 0.0
    # Weight tensors per repeating layer (norms and biases included): a proxy for the
    # kernels one layer launches (0: unknown, DEFAULT_LAYER_TENSORS is used).
    layer_tensors: int = 0
    # Sliding-window attention: n_swa_layers of the n_layers attend to the last
    # sliding_window tokens only (Gemma 3: 5 of every 6 layers, 1024 tokens; gpt-oss: every
    # other layer, 128). 0: every layer attends to the whole context.
    sliding_window: int = 0
    n_swa_layers: int = 0

    @property
    def tensors_per_layer(self) -> int:
        return self.layer_tensors or DEFAULT_LAYER_TENSORS

    @property
    def is_moe(self) -> bool:
        return bool(self.n_expert and self.n_expert_used and self.expert_bytes)

    @property
    def active_share(self) -> float:
        """The share of the routed experts one token runs through (k / n; 1 if dense)."""
        return self.n_expert_used / self.n_expert if self.is_moe else 1.0

    def touched_share(self, tokens: float) -> float:
        """The share of the routed experts a batch of `tokens` tokens runs through, each
        token picking k of n at random: 1 - (1 - k/n)^tokens (k/n for one token, all of
        them for a prompt ubatch of 512 on every model here)."""
        if not self.is_moe:
            return 1.0
        return 1.0 - (1.0 - self.active_share) ** max(tokens, 1.0)

    @property
    def dense_bytes(self) -> float:
        """Weight bytes outside the routed experts (attention, shared tensors, embeddings)."""
        return self.model_bytes - self.expert_bytes

    @property
    def active_bytes(self) -> float:
        """Weight bytes one token's matrix products read: all but the routed experts, and
        of those the k of n it is routed to."""
        return self.dense_bytes + self.expert_bytes * self.active_share

    @property
    def active_params(self) -> float:
        return self.n_params - self.expert_params * (1.0 - self.active_share)

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V, F16, every layer: what each token of context adds to a full cache."""
        return 2 * self.n_layers * self.n_head_kv * self.head_dim * 2

    def _layer_tokens(self, tokens: float, sliding_cap: float) -> float:
        """`tokens` on every global layer plus at most `sliding_cap` on every sliding one."""
        t = max(tokens, 0.0)
        swa = self.n_swa_layers if self.sliding_window else 0
        return (self.n_layers - swa) * t + swa * min(t, sliding_cap)

    def attended(self, tokens: float) -> float:
        """Layer-tokens one token attends to at `tokens` of context: the whole context on
        every global layer, at most the window on a sliding one. Decode reads this much K
        and V per token, and a prompt's attention work grows with it, so past the window a
        sliding layer costs no more than at the window (n_layers x tokens without one)."""
        return self._layer_tokens(tokens, self.sliding_window)

    def kv_bytes(self, tokens: float) -> float:
        """K and V bytes (F16) one token reads at `tokens` of context."""
        return self.kv_bytes_per_token / self.n_layers * self.attended(tokens)

    def kv_cache_bytes(self, tokens: float, ubatch: int) -> float:
        """K and V bytes (F16) llama.cpp allocates for a context of `tokens`: every cell on
        a global layer; on a sliding layer the window plus one ubatch, in steps of 256
        cells (llama-kv-cache-iswa.cpp, without --swa-full), never more than the context."""
        cells = -(-(self.sliding_window + ubatch) // SWA_CELLS_STEP) * SWA_CELLS_STEP
        return self.kv_bytes_per_token / self.n_layers * self._layer_tokens(tokens, cells)

    @property
    def embedding_bytes(self) -> float:
        """Bytes of an untied token-embedding table: looked up one row a token, not streamed."""
        if self.tied_embeddings or not self.n_params:
            return 0.0
        # The file's average bytes per weight: no lookup of the type, which may be one
        # quants.yaml does not list (the embedding's own type often differs anyway).
        return self.n_vocab * self.n_embd * self.model_bytes / self.n_params

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes every generated token reads: the active bytes less the embedding
        table (one row a token)."""
        return max(self.active_bytes - self.embedding_bytes, 0.5 * self.active_bytes)

    def batch_bytes(self, tokens: float) -> float:
        """Weight bytes a batch of `tokens` tokens reads once: the dense part and the
        experts it touches (`touched_share`), less the embedding table."""
        read = self.dense_bytes + self.expert_bytes * self.touched_share(tokens)
        return max(read - self.embedding_bytes, 0.5 * read)

    @property
    def matmul_params(self) -> float:
        """Weights that take part in one token's matrix products (the embedding lookup
        does not; of the routed experts, the k of n it is sent to)."""
        unused = 0 if self.tied_embeddings else self.n_vocab * self.n_embd
        return max(self.active_params - unused, 0.5 * self.active_params)


@functools.lru_cache(maxsize=4096)
def shape_from_preset(key: str, quant: str, model_bytes: float | None = None) -> ModelShape:
    """The shape of a preset model in a GGUF type (file size from the type if not given).

    Cached: the shape is a pure function of its arguments and the shipped preset data, and
    a site or a plan asks for the same few shapes thousands of times (each walks every
    tensor of the preset)."""
    from benchkit.models import presets

    p = presets.get_preset(key, field="preset")
    n = float(presets.n_params(p))
    expert = float(presets.n_params(p) - presets.n_params_dense(p)) if p.is_moe else 0.0
    # a mixture of experts' file type may keep the non-expert weights wider (MXFP4_MOE)
    expert_est = expert * bits_per_weight(quant) / 8
    dense_est = (n - expert) * (dense_bits_per_weight(quant) if expert else
                                bits_per_weight(quant)) / 8
    nbytes = model_bytes or expert_est + dense_est
    return ModelShape(n, nbytes, p.n_layers, p.n_embd, p.n_head, p.n_head_kv, p.head_dim,
                      p.n_vocab, p.tied_embeddings, quant.upper(), f"preset {key}",
                      n_expert=p.n_expert or 0, n_expert_used=p.n_expert_used or 0,
                      expert_params=expert,
                      expert_bytes=nbytes * expert_est / (expert_est + dense_est),
                      layer_tensors=sum(1 for t in presets.plan_tensors(p)
                                        if t.name.startswith("blk.0.")),
                      sliding_window=p.sliding_window or 0, n_swa_layers=p.n_swa_layers)


def shape_from_gguf(path: str) -> ModelShape:
    """The shape a GGUF header states (llama-style metadata keys)."""
    from benchkit.models.gguf import read_gguf_info
    from benchkit.models.presets import swa_layer_count

    info = read_gguf_info(path)
    meta, arch = info.metadata, info.architecture or "llama"
    names = {t[0]: t for t in info.tensors}

    def key(name: str) -> int | None:
        value = meta.get(f"{arch}.{name}")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    n_embd = key("embedding_length") or 0
    n_head = key("attention.head_count") or 1
    head_dim = key("attention.key_length") or (n_embd // n_head if n_head else 0)
    embd = names.get("token_embd.weight")
    n_vocab = key("vocab_size") or (max(embd[1]) if embd else 0)
    if not (n_embd and info.n_layers):
        raise BenchkitError("the GGUF header lacks the layer count or embedding length",
                            file=path, field=f"{arch}.embedding_length")
    n, k = info.n_expert or 0, info.n_expert_used or 0
    moe = bool(n and k and k < n and info.n_params_active < info.n_params)
    # active = total - experts x (1 - k/n), for parameters and for bytes alike
    expert_params = (info.n_params - info.n_params_active) * n / (n - k) if moe else 0.0
    expert_bytes = (info.tensor_bytes - info.bytes_active) * n / (n - k) if moe else 0.0
    window = key("attention.sliding_window") or 0
    swa = (swa_layer_count(arch, int(info.n_layers),
                           meta.get(f"{arch}.attention.sliding_window_pattern")) if window else 0)
    return ModelShape(float(info.n_params), float(info.size_bytes), int(info.n_layers), n_embd,
                      n_head, key("attention.head_count_kv") or n_head, head_dim, n_vocab,
                      "output.weight" not in names, info.file_type or DEFAULT_QUANT,
                      f"GGUF header of {path}", n_expert=n if moe else 0,
                      n_expert_used=k if moe else 0, expert_params=float(expert_params),
                      expert_bytes=float(expert_bytes),
                      layer_tensors=sum(1 for name in names if name.startswith("blk.0.")),
                      sliding_window=window, n_swa_layers=swa)


def guess_shape(n_params: float | None, model_bytes: float | None, n_layers: int | None,
                quant: str | None, priors: Priors, preset: str | None = None) -> ModelShape:
    """The best shape known for a model: a named preset, a preset with the same parameter
    and layer counts (a stand-in, or the real model it was made from), else the typical
    shape of its size from projection.yaml (`source` then says "typical")."""
    quant = (quant or DEFAULT_QUANT).upper()
    if preset:
        try:
            return shape_from_preset(preset, quant, model_bytes)
        except BenchkitError:
            pass
    if n_params is None and model_bytes:
        n_params = model_bytes * 8 / bits_per_weight(quant)
    if n_params is None:
        raise BenchkitError("the model's size is unknown: give --model-gb (or a result file)",
                            field="--model-gb")
    match = _preset_by_counts(round(n_params), n_layers)
    if match:
        return shape_from_preset(match, quant, model_bytes)
    typical = _typical(n_params, priors)
    layers = int(n_layers or estimate_layers(n_params, priors))
    head_dim = int(typical["head_dim"])
    n_embd = int(typical["n_embd"])
    return ModelShape(float(n_params), float(model_bytes or n_params * bits_per_weight(quant) / 8),
                      layers, n_embd, max(n_embd // head_dim, 1), int(typical["n_head_kv"]),
                      head_dim, int(typical["n_vocab"]), False, quant,
                      f"typical shape of a {n_params / 1e9:.3g}B model ({typical['model']})")


@functools.lru_cache(maxsize=1)
def _preset_counts() -> dict[tuple[int, int], str]:
    from benchkit.models import presets

    out = {}
    for key in presets.preset_names():
        p = presets.get_preset(key)
        out[(presets.n_params(p), p.n_layers)] = key
    return out


def _preset_by_counts(n_params: int, n_layers: int | None) -> str | None:
    for (n, layers), key in _preset_counts().items():
        if abs(n / n_params - 1) < 0.005 and (n_layers is None or layers == n_layers):
            return key
    return None


def _typical(n_params: float, priors: Priors) -> dict[str, Any]:
    """The typical shape nearest in log(parameters)."""
    return min(priors.typical_shapes,
               key=lambda s: abs(math.log(n_params / (s["params_b"] * 1e9))))


def typical_shape(size_b: float, quant: str, priors: Priors) -> ModelShape:
    """The shape `--sizes` projects for a size in billions of parameters: the typical
    llama-style decoder of that size (layers interpolated, widths of the nearest)."""
    n_params = size_b * 1e9
    typical = _typical(n_params, priors)
    head_dim, n_embd = int(typical["head_dim"]), int(typical["n_embd"])
    return ModelShape(n_params, n_params * bits_per_weight(quant) / 8,
                      estimate_layers(n_params, priors), n_embd, max(n_embd // head_dim, 1),
                      int(typical["n_head_kv"]), head_dim, int(typical["n_vocab"]), False,
                      quant.upper(), f"typical shape ({typical['model']})")


def estimate_layers(n_params: float, priors: Priors) -> int:
    """Typical layer count for a parameter count: interpolated in log(params) over shapes."""
    shapes = priors.model_shapes
    x = math.log(n_params / 1e9)
    if x <= math.log(shapes[0][0]):
        return shapes[0][1]
    for (p0, l0), (p1, l1) in zip(shapes, shapes[1:]):
        if x <= math.log(p1):
            f = (x - math.log(p0)) / (math.log(p1) - math.log(p0))
            return round(l0 + f * (l1 - l0))
    return shapes[-1][1]

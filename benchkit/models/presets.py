"""Model presets: the shapes of well-known models (`data/presets.yaml`), dense and
mixture-of-experts, and what follows from a shape alone.

A preset is its model's config.json figures. From it follow the tensor plan (every tensor's
name, shape and kind, as llama.cpp names them), the parameter count, and for a mixture of
experts the parameters active per token (shared tensors plus k of n experts). Reduced
presets (`--reduce n_layers=2,...`) keep the layout with smaller figures, for tests.
The synthetic stand-ins (benchkit.models.synth) and the projection read presets from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from benchkit.core.errors import BenchkitError

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
    def n_swa_layers(self) -> int:
        """Layers that attend in the sliding window (0 without one)."""
        if not self.sliding_window:
            return 0
        return swa_layer_count(self.architecture, self.n_layers, self.sliding_window_pattern)

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


def canonical_quant(quant: str) -> str:
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


def swa_layer_count(architecture: str, n_layers: int, pattern: Any = None) -> int:
    """How many of n_layers attend in a sliding window, as llama.cpp decides it: `pattern`
    is the file's attention.sliding_window_pattern (a period N: every Nth layer global, or
    one flag per layer), else the architecture's default (`swa_pattern` of its layout);
    0 where neither is known (every layer then counts as global)."""
    if isinstance(pattern, (list, tuple)):
        return sum(1 for flag in pattern[:n_layers] if flag)
    if pattern is None:
        pattern = _data()["architectures"].get(architecture, {}).get("swa_pattern")
    if not isinstance(pattern, int) or isinstance(pattern, bool) or pattern < 0:
        return 0
    if pattern == 0:
        return n_layers
    return sum(1 for il in range(n_layers) if il % pattern < pattern - 1)


def n_params(preset: Preset) -> int:
    """Parameter count of the preset (every element of every tensor)."""
    return sum(t.n_elements for t in plan_tensors(preset))


def n_params_dense(preset: Preset) -> int:
    """Parameters outside the routed-expert tensors (all of them for a dense preset)."""
    from benchkit.models.gguf import is_expert_tensor

    return sum(t.n_elements for t in plan_tensors(preset) if not is_expert_tensor(t.name))


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

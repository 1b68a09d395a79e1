"""llama-benchy's side of scripts/serve_peer_agreement.py: run it offline, read its figures.

llama-benchy (PyPI `llama-benchy`) cuts its prompts from a book it downloads and counts
tokens with a Hugging Face tokenizer it downloads. Neither is fetched here: the book is
benchkit's own public-domain text (benchkit/data/texts/persuasion.txt), placed where
llama-benchy caches a downloaded book (under a HOME of the output folder, keyed by the
md5 of the URL given, which is never requested); the tokenizer is the served model's own,
rebuilt from its GGUF file's vocabulary and merges (byte-level BPE, as SmolLM2 and
TinyLlama-like GPT-2 style vocabularies are) with the `tokenizers` package llama-benchy
itself uses. Only llama-benchy's "lightweight" tokenizer path runs, so its declared
dependencies `openai` and `transformers` are not needed (install it with --no-deps beside
aiohttp, pydantic, tabulate and tokenizers).

llama-benchy sends each concurrency level as batches: `runs` times, c chat requests at
once (one warmup batch first), and reports per request its time to first token
(`e2e_ttft`, ms, send to the first content chunk) and decode rate (`tg_req_throughput`:
tokens after the first over first to last token), and per batch its output rate
(`tg_throughput`: decode tokens after each request's first over the first first-token to
the last token, so the prompt's time is left out).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BOOK_URL = "http://benchkit.invalid/persuasion.txt"   # a cache key only: never requested


def tokenizer_json(gguf_path: str, out: Path) -> Path:
    """The model's byte-level BPE tokenizer as a tokenizer.json, from its GGUF header."""
    import gguf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    reader = gguf.GGUFReader(gguf_path)

    def strings(key: str) -> list[str]:
        field = reader.fields[key]
        return [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]

    kind = bytes(reader.fields["tokenizer.ggml.model"].parts[-1]).decode()
    if kind != "gpt2":
        raise SystemExit(f"{gguf_path}: tokenizer {kind!r}; only byte-level BPE (gpt2) is "
                         "rebuilt for llama-benchy")
    vocab = {t: i for i, t in enumerate(strings("tokenizer.ggml.tokens"))}
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    return out


def seed_book(home: Path, text_path: Path) -> None:
    """Put the text where llama-benchy looks for its cached download of BOOK_URL."""
    cache = home / ".cache" / "llama-benchy"
    cache.mkdir(parents=True, exist_ok=True)
    name = hashlib.md5(BOOK_URL.encode()).hexdigest() + ".txt"
    (cache / name).write_text(text_path.read_text(encoding="utf-8"), encoding="utf-8")


def run(*, base_url: str, model: str, tokenizer: Path, home: Path, site: str | None,
        prompt_tokens: int, max_tokens: int, concurrency: list[int], runs: int,
        out_json: Path, log: Path) -> subprocess.CompletedProcess:
    """One llama-benchy run over every concurrency level, its JSON result to out_json."""
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", "NO_PROXY": "*"}
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-m", "llama_benchy", "--base-url", base_url, "--model", model,
            "--tokenizer", str(tokenizer), "--book-url", BOOK_URL,
            "--pp", str(prompt_tokens), "--tg", str(max_tokens), "--exact-tg", "--no-cache",
            "--concurrency", *map(str, concurrency), "--runs", str(runs),
            "--latency-mode", "none", "--skip-coherence", "--format", "json",
            "--save-result", str(out_json)]
    with log.open("a") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        return subprocess.run(argv, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)


def levels(path: Path) -> dict[int, dict[str, list[float]]]:
    """Per concurrency: every request's TTFT (s) and time per output token after the first
    (s, its decode rate inverted), and every batch's output tok/s."""
    doc = json.loads(path.read_text())
    out: dict[int, dict[str, list[float]]] = {}
    for b in doc.get("benchmarks") or []:
        if b.get("is_context_prefill_phase"):
            continue
        lv = out.setdefault(int(b["concurrency"]), {"ttft_s": [], "tpot_s": [], "batch_tps": []})
        lv["ttft_s"] += [v / 1e3 for v in _values(b, "e2e_ttft")]
        lv["tpot_s"] += [1.0 / v for v in _values(b, "tg_req_throughput") if v > 0]
        lv["batch_tps"] += _values(b, "tg_throughput")
    return out


def _values(b: dict[str, Any], key: str) -> list[float]:
    metric = b.get(key) or {}
    return [float(v) for v in metric.get("values") or []]


def formula_tps(its: list[dict[str, Any]], c: int) -> list[float]:
    """llama-benchy's output rate (its `tg_throughput`) of benchkit's recorded requests, per
    wave of c consecutive requests (a closed loop of identical requests runs in waves, as
    llama-benchy's batches): tokens after each request's first, over the wave's first
    first-token to its last token."""
    its = sorted(its, key=lambda it: it["start_s"])
    out = []
    for k in range(0, len(its) - c + 1, c):
        wave = [it for it in its[k:k + c] if it.get("ttft_s") is not None]
        first = [it["start_s"] + it["ttft_s"] for it in wave]
        last = [it["start_s"] + it["ttft_s"] + sum(it.get("token_latencies_s") or [])
                for it in wave]
        tokens = sum(max(int(it["tokens"]) - 1, 0) for it in wave)
        span = max(last) - min(first) if wave else 0
        if span > 0:
            out.append(tokens / span)
    return out

"""Community file identity: which chip did the work, the model folder, the content id.

The path a community result files under, `<chip>/<model>/<id>.json`, is derived from its
content alone: the same result submitted twice is the same file, and a file edited after
submission no longer matches its own path.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath
from typing import Any

from benchkit.results.facts import ran_on_gpu

MAX_SLUG = 80                    # path components: a 300-character model name is cut (+ hash)


def canonical(doc: dict[str, Any]) -> bytes:
    """The content a community id hashes: everything but the submission's own block."""
    body = {k: v for k, v in doc.items() if k != "community"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_id(doc: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the canonical content: same result, same id."""
    return hashlib.sha256(canonical(doc)).hexdigest()[:16]


def fingerprint(doc: dict[str, Any]) -> str:
    """The raw measurements alone: two files with these equal are one run, whatever else
    was edited between them (notes, environment strings, run id), and in whatever order
    their cases and iterations are listed (a copy with its iterations reversed is still
    the same measurements)."""
    return hashlib.sha256(json.dumps(measurements(doc)).encode("utf-8")).hexdigest()


def measurements(doc: dict[str, Any]) -> list[list[float]]:
    """Every case's iteration tok/s, each case's sorted and the cases sorted: the
    measurements as a set, not as the order a file lists them in."""
    return sorted(sorted(_number(it.get("tps")) for it in case.get("iterations") or []
                         if isinstance(it, dict))
                  for case in doc.get("cases") or [] if isinstance(case, dict))


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else float("nan")


def slug(text: str) -> str:
    """Lowercase letters, digits, '.', '_' and '-' only: safe in a path and a URL."""
    out = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    out = re.sub(r"-{2,}", "-", out) or "unknown"
    if len(out) > MAX_SLUG:     # a path component must stay short: cut, and keep it unique
        digest = hashlib.sha256(out.encode("utf-8")).hexdigest()[:8]
        out = f"{out[:MAX_SLUG - 9].rstrip('-.')}-{digest}"
    return out


def model_slug(model: dict[str, Any]) -> str:
    """The model folder: file name without .gguf, the quantization, and `-synthetic` for a
    stand-in, so that real and synthetic figures never share a row."""
    name = str(model.get("name") or "model")
    if name.lower().endswith(".gguf"):
        name = name[:-5]
    out = slug(name)
    quant = slug(str(model.get("quantization") or ""))
    if quant != "unknown" and quant not in out:
        out = f"{out}-{quant}"
    if model.get("synthetic") and "synthetic" not in out:
        out = f"{out}-synthetic"
    return slug(out)


def work_chip(doc: dict[str, Any]) -> str:
    """The id of what did the work: the GPU's or Apple chip's id, else the CPU's slug.

    A result from an NVIDIA machine whose build had no CUDA ran on the CPU; filing it
    under the GPU would credit the GPU with a CPU figure. A GPU the chip database does
    not know is filed under a slug of its reported name.
    """
    from benchkit.run.environment import cpu_slug

    env = doc.get("environment") or {}
    chip = env.get("chip") or {}
    cases = [c for c in doc.get("cases") or [] if c.get("status") == "ok"] or \
        list(doc.get("cases") or [])
    if chip.get("kind") != "cpu" and cases and all(ran_on_gpu(c) for c in cases):
        if chip.get("id"):
            return slug(str(chip["id"]))
        if chip.get("name"):
            return slug(str(chip["name"]))
    return slug(cpu_slug(str((env.get("cpu") or {}).get("model") or "")))


def community_relpath(doc: dict[str, Any]) -> PurePosixPath:
    """`<chip>/<model>/<id>.json`, all derived from the content."""
    cases = doc.get("cases") or [{}]
    return PurePosixPath(work_chip(doc), model_slug(cases[0].get("model") or {}),
                         f"{content_id(doc)}.json")

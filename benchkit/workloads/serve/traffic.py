"""Lengths drawn from a distribution, for the `serve` workload.

```yaml
prompt_tokens: {dist: lognormal, mean: 256, sd: 128, min: 16, max: 2048}
max_tokens: {dist: uniform, min: 32, max: 256}
```

Prompts files (`read_prompts`): JSON Lines of prompts or conversations, read with the
bounded readers of benchkit.core.safeio; a set benchkit ships is named without folder or
suffix (`prompts: persuasion-dialogue`, benchkit/data/conversations/).

`prompt_tokens` and `max_tokens` take a number or a distribution: `normal` (mean, sd),
`lognormal` (the lengths' own mean and sd, not the logarithm's) or `uniform` (min to
max), each length rounded and kept within `min` (1 by default) and `max`. Draws are
seeded by the level's prompt seed, so a pinned seed gives the same lengths; each
request records the lengths drawn for it (`prompt_tokens_planned`, `max_tokens_planned`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.workloads.base import SuiteSpot

# prompt sets benchkit ships, named without folder or suffix (`prompts: persuasion-dialogue`)
SHIPPED_PROMPTS = Path(__file__).resolve().parent.parent.parent / "data" / "conversations"

_NUM = {"type": "number", "minimum": 0, "maximum": 1e7}
DIST_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["dist"],
    "properties": {
        "dist": {"enum": ["normal", "lognormal", "uniform"],
                 "x-error": "must be normal, lognormal or uniform"},
        "mean": {**_NUM, "exclusiveMinimum": 0, "x-error": "must be a number > 0"},
        "sd": {**_NUM, "x-error": "must be a number >= 0"},
        "min": {**_NUM, "minimum": 1, "x-error": "must be a number >= 1"},
        "max": {**_NUM, "minimum": 1, "x-error": "must be a number >= 1"},
    },
    "x-error": "must be a mapping with dist: (normal, lognormal, uniform) and its "
               "mean:, sd: or min:, max:",
}


@dataclass(frozen=True)
class Lengths:
    """A distribution of token counts."""

    dist: str
    mean: float | None = None
    sd: float = 0.0
    low: float = 1.0
    high: float | None = None

    @property
    def typical(self) -> int:
        """A length to name the level by: the mean, or the middle of a uniform range."""
        if self.mean is not None:
            return max(1, round(self.mean))
        return max(1, round((self.low + (self.high or self.low)) / 2))

    def draw(self, count: int, seed: int) -> list[int]:
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            if self.dist == "uniform":
                x = rng.uniform(self.low, self.high if self.high is not None else self.low)
            elif self.dist == "normal":
                x = rng.gauss(self.mean or 1.0, self.sd)
            else:      # lognormal with the lengths' own mean and sd
                m, s = self.mean or 1.0, self.sd
                sigma2 = math.log(1 + (s / m) ** 2)
                x = rng.lognormvariate(math.log(m) - sigma2 / 2, math.sqrt(sigma2))
            x = max(self.low, x)
            if self.high is not None:
                x = min(self.high, x)
            out.append(max(1, round(x)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, "mean": self.mean, "sd": self.sd, "min": self.low,
                "max": self.high}


def lengths_of(value: Any, where: str) -> Lengths | None:
    """A suite's distribution mapping as Lengths (None for a plain number); sd < 0,
    min > max, a normal or lognormal without a mean, a uniform without a max: one error
    naming the field."""
    if not isinstance(value, dict):
        return None
    dist = value.get("dist")
    low, high = float(value.get("min", 1)), value.get("max")
    high = None if high is None else float(high)
    if float(value.get("sd", 0)) < 0:
        raise BenchkitError(f"sd {value['sd']} is below 0", field=f"{where}.sd")
    if high is not None and low > high:
        raise BenchkitError(f"min {low:g} is above max {high:g}", field=f"{where}.min")
    if dist in ("normal", "lognormal") and value.get("mean") is None:
        raise BenchkitError(f"a {dist} distribution needs mean:", field=f"{where}.mean")
    if dist == "uniform" and high is None:
        raise BenchkitError("a uniform distribution needs max:", field=f"{where}.max")
    mean = value.get("mean")
    return Lengths(dist=dist, mean=None if mean is None else float(mean),
                   sd=float(value.get("sd", 0)), low=low, high=high)


def read_prompts(value: str, at: SuiteSpot = SuiteSpot(field="serve.prompts")
                 ) -> tuple[tuple[tuple[str, int | None], ...], str]:
    """A JSON-lines prompts file: each line a JSON string, an object with `prompt`
    (text) and optionally `max_tokens`, or a conversation: a list of messages
    ({"role": "system" | "user" | "assistant", "content": "..."}) or {"messages": [...],
    "max_tokens": N}, with at least one user message. Blank lines are skipped. Returns the prompts and
    the file's sha256. A missing, unreadable or too large file is one error naming the
    suite file and the field; a bad line names the prompts file and its line."""
    from benchkit.core.safeio import MAX_PROMPTS_BYTES, read_bounded_bytes

    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = at.folder / path
    shipped = SHIPPED_PROMPTS / f"{value}.jsonl"
    if "/" not in value and not path.exists() and shipped.is_file():
        path = shipped           # a set benchkit ships, by its name
    where = "the suite file's folder" if at.file else "the working folder"
    try:
        data = read_bounded_bytes(path, MAX_PROMPTS_BYTES, f"prompts file {value}",
                                  missing=f"prompts file not found: {value} (a relative "
                                          f"path is read from {where})")
    except BenchkitError as exc:
        raise at.error(exc.message) from None
    shown = _shown(path)
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if line.strip():
            out.append(_prompt_line(line, shown, n))
    if not out:
        raise at.error(f"the prompts file {value} holds no prompt")
    return tuple(out), hashlib.sha256(data).hexdigest()


def _shown(path: Path) -> str:
    """A path for an error line: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _prompt_line(line: str, path: str, n: int) -> tuple[Any, int | None]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise BenchkitError(f"not JSON ({exc})", file=path, line=n, field="prompt") from None
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, list) or (isinstance(value, dict) and "messages" in value):
        limit = value.get("max_tokens") if isinstance(value, dict) else None
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise BenchkitError("must be an integer >= 1", file=path, line=n,
                                field="max_tokens")
        return _messages(value["messages"] if isinstance(value, dict) else value, path, n), limit
    if isinstance(value, dict) and isinstance(value.get("prompt"), str) and value["prompt"]:
        limit = value.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise BenchkitError("must be an integer >= 1", file=path, line=n,
                                field="max_tokens")
        return value["prompt"], limit
    raise BenchkitError('each line must be a JSON string or {"prompt": "...", '
                        '"max_tokens": N}', file=path, line=n, field="prompt")


def _messages(value: Any, path: str, n: int) -> tuple[tuple[str, str], ...]:
    """A conversation line's messages: {"role": system|user|assistant, "content": text}."""
    if not isinstance(value, list) or not value:
        raise BenchkitError("a conversation must be a non-empty list of messages",
                            file=path, line=n, field="messages")
    out = []
    for k, m in enumerate(value):
        if (not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant")
                or not isinstance(m.get("content"), str)):
            raise BenchkitError('each message must be {"role": "system" | "user" | '
                                '"assistant", "content": "..."}', file=path, line=n,
                                field=f"messages.{k}")
        out.append((m["role"], m["content"]))
    if not any(role == "user" for role, _ in out):
        raise BenchkitError("the conversation has no user message", file=path, line=n,
                            field="messages")
    return tuple(out)

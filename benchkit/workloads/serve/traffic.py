"""Lengths drawn from a distribution, for the `serve` workload.

```yaml
prompt_tokens: {dist: lognormal, mean: 256, sd: 128, min: 16, max: 2048}
max_tokens: {dist: uniform, min: 32, max: 256}
```

`prompt_tokens` and `max_tokens` take a number or a distribution: `normal` (mean, sd),
`lognormal` (the lengths' own mean and sd, not the logarithm's) or `uniform` (min to
max), each length rounded and kept within `min` (1 by default) and `max`. Draws are
seeded by the level's prompt seed, so a pinned seed gives the same lengths; each
request records the lengths drawn for it (`prompt_tokens_planned`, `max_tokens_planned`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from benchkit.core.errors import BenchkitError

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

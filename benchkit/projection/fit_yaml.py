"""Fitted values written back into benchkit/data/projection.yaml, comments and layout kept:
`scripts/projection_accuracy.py --fit --write` replaces the numbers a fit produced and
nothing else, so the file stays the one place the priors live and the reasons beside them
stay put."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from benchkit.projection.priors import OPTIONAL_SCALARS, BackendPriors, Priors

SCALARS = ("efficiency_multi_die", "layer_latency_ms", "layer_compute_ms_tflops",
           "prompt_multi_die_share", "prompt_layer_us", *OPTIONAL_SCALARS)
MAPPINGS = ("efficiency", "dequant", "prompt_efficiency", "prompt_vector")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _mapping(values: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in values.items()) + "}"


def backend_lines(b: BackendPriors) -> dict[str, str]:
    """key -> the value text projection.yaml holds for it."""
    out = {key: _number(float(getattr(b, key))) for key in SCALARS}
    out.update({key: _mapping(getattr(b, key)) for key in MAPPINGS if getattr(b, key)})
    return out


def _block(lines: list[str], start: int) -> int:
    """The index after a backend block that begins at `start` (a two-space key)."""
    end = start + 1
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1
    return end


def write_fit(path: Path, priors: Priors, backends: list[str],
              sigmas: Mapping[str, Mapping[str, float]] | None = None,
              host: bool = True) -> list[str]:
    """Replace the fitted values of `backends` (and the host terms unless `host` is off, and
    any sigma tables given: name -> {backend: value}) in the YAML at `path`; returns what
    changed."""
    lines = path.read_text(encoding="utf-8").split("\n")
    changed = []
    for name in backends:
        head = next((i for i, line in enumerate(lines) if line == f"  {name}:"), None)
        if head is None:
            continue
        end = _block(lines, head)
        # new keys go before the block's `fitted_on` text
        room = next((i for i in range(head + 1, end) if lines[i].startswith("    fitted_on:")),
                    end)
        for key, text in backend_lines(priors.backend(name)).items():
            pattern = re.compile(rf"^    {key}: ")
            at = next((i for i in range(head + 1, end) if pattern.match(lines[i])), None)
            new = f"    {key}: {text}"
            if at is None:
                if key in OPTIONAL_SCALARS and \
                        float(getattr(priors.backend(name), key)) == OPTIONAL_SCALARS[key]:
                    continue                     # absent and at its default: leave it out
                lines.insert(room, new)
                room += 1
                end += 1
            elif lines[at].split("#")[0].rstrip() != new:
                lines[at] = new
            else:
                continue
            changed.append(f"{name}.{key}")
    head = next((i for i, line in enumerate(lines) if line == "host:"), None) if host else None
    if head is not None:
        for key, value in priors.host.items():
            at = next(i for i in range(head + 1, len(lines)) if lines[i].startswith(f"  {key}:"))
            lines[at] = f"  {key}: {_number(value)}"
            changed.append(f"host.{key}")
    for table, values in (sigmas or {}).items():
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  {table}:"))
        lines[at] = f"  {table}: {_mapping(values)}"
        changed.append(f"uncertainty.{table}")
    path.write_text("\n".join(lines), encoding="utf-8")
    return changed

#!/usr/bin/env python3
"""One backend's leave-one-chip-out check, every pair printed, from chosen starting values.

scripts/projection_accuracy.py refits each fold starting from the shipped values of
benchkit/data/projection.yaml. Where a backend's few tables barely pin some direction of
its parameters, that start (fitted with the held-out chip in) carries the chip into its
own check. This script runs the same check (fit.held_out, that backend refitted alone)
from another start: another projection.yaml (`--priors`, e.g. an earlier commit's) and/or
single values replaced (`--set`), and prints each pair, the mean errors and the
prediction-interval sigmas of the rule in docs/projection.md.

    python scripts/backend_check.py hip --set prompt_efficiency.quant=0.1578 \\
        --set prompt_efficiency.dot4=0.1578 --set prompt_vector.quant=0.1 \\
        --set prompt_layer_us=1.016
    git show a247416:benchkit/data/projection.yaml > /tmp/old.yaml
    python scripts/backend_check.py hip --priors /tmp/old.yaml
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import yaml

from benchkit.core.errors import BenchkitError
from benchkit.projection.fit import held_out, mape, sigmas
from benchkit.projection.priors import BackendPriors, Priors, load_priors, parse_priors, with_backend
from benchkit.projection.published import all_measurements


def start_values(priors: Priors, backend: str, settings: list[str]) -> Priors:
    """`priors` with the backend's `name=value` / `mapping.key=value` settings replaced."""
    b: BackendPriors = priors.backend(backend)
    for setting in settings:
        path, _, value = setting.partition("=")
        name, _, key = path.partition(".")
        try:
            new = float(value)
        except ValueError:
            new = None
        if not hasattr(b, name) or new is None:
            raise SystemExit(f"--set {setting}: expected PARAMETER[.KEY]=NUMBER of {backend}")
        b = replace(b, **{name: {**getattr(b, name), key: new} if key else new})
    return with_backend(priors, backend, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("backend", help="hip, vulkan, cuda, metal, ...")
    parser.add_argument("--priors", type=Path, help="a projection.yaml to start from "
                                                   "(default: the shipped one)")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM[.KEY]=VALUE",
                        help="replace one of the backend's starting values (repeatable)")
    args = parser.parse_args()
    try:
        base = (parse_priors(yaml.safe_load(args.priors.read_text(encoding="utf-8")),
                             str(args.priors)) if args.priors else load_priors())
        base = start_values(base, args.backend, args.set)
    except (OSError, yaml.YAMLError, BenchkitError) as err:
        raise SystemExit(f"backend_check.py: {err}") from None
    pairs = held_out(all_measurements(), base, None, "chip", args.backend)
    for p in pairs:
        errors = [f"{kind} {p['roofline'][f'{short}_error']:+.1%}"
                  for kind, short in (("decode", "tg"), ("prompt", "pp"))
                  if p["roofline"][f"{short}_error"] is not None]
        print(f"{p['anchor']} -> {p['chip']} ({p['source']}, {p['model']}): {', '.join(errors)}")
    for kind, short in (("decode", "tg"), ("prompt", "pp")):
        got = mape(pairs, "roofline", short)
        if got is not None:
            n = sum(1 for p in pairs if p["roofline"][f"{short}_error"] is not None)
            print(f"{kind}: mean absolute error {got:.1f}% over {n} pairs")
    print("sigmas (90% of held-out |log error| / 1.645):",
          {k: round(v, 3) for k, v in sigmas(pairs, base.interval).items()})


if __name__ == "__main__":
    main()

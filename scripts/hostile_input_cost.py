"""What refusing a hostile input costs: CPU time of each refusal in benchkit's readers.

Each input is refused through the function the CLI uses (suite.load_suite for suites,
result.read_result for results, llama_bench_import.documents for `benchkit import`), in
this process, `--reps` times; the script prints the
median and the spread (min–max) of the process CPU time (time.process_time: CPU seconds
of this process, not wall time), and the error line the user sees.

    python scripts/hostile_input_cost.py --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchkit.core.errors import BenchkitError


def bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def inputs(folder: Path) -> list[tuple[str, Callable[[], None]]]:
    from benchkit.formats.llama_bench_import import documents
    from benchkit.results.io import read_result
    from benchkit.run.suite import load_suite

    def suite(name: str, text: str | None = None, size: int | None = None) -> Callable[[], None]:
        path = folder / f"{name}.yaml"
        if size is not None:
            with open(path, "wb") as fh:
                fh.truncate(size)
        else:
            path.write_text(text or "", encoding="utf-8")
        return lambda: load_suite(path)

    def result(name: str, data: bytes) -> Callable[[], None]:
        path = folder / f"{name}.json"
        path.write_bytes(data)
        return lambda: read_result(path)

    def imported(name: str, data: bytes) -> Callable[[], None]:
        path = folder / name
        path.write_bytes(data)
        return lambda: documents(path)

    flat = "name: x\nmodels:\n  - path: a.gguf\nworkloads:\n" + "".join(
        f"  - tg: {i + 1}\n" for i in range(30_000))
    return [
        (f"YAML alias bomb ({len(bomb())} bytes)", suite("bomb", bomb())),
        ("YAML nested 100,000 deep", suite("deep", "a: " + "[" * 100_000)),
        (f"YAML of 30,000 workloads ({len(flat):,} bytes)", suite("flat", flat)),
        ("suite of 50 MB", suite("large", size=50 * 10**6)),
        ("JSON nested 200,000 deep", result("deep", b"[" * 200_000 + b"]" * 200_000)),
        ("JSON of 65 MiB", result("large", b" " * (65 << 20))),
        ("JSON with a 5,000-digit integer", result("digits", b"[" + b"9" * 5000 + b"]")),
        *import_inputs(imported),
    ]


def import_inputs(imported: Callable[[str, bytes], Callable[[], None]]
                  ) -> list[tuple[str, Callable[[], None]]]:
    """llama-bench files that cost work, not bytes: rows, joins, builds."""
    row = ('{"build_commit": "%s", "model_type": "llama 1B Q4_0", "n_prompt": 0, '
           '"n_gen": 16, "avg_ts": 10.0}\n')
    head, minimal = "model_type,n_prompt,n_gen,avg_ts\n", "x,0,1,1\n"
    csv = head + minimal * ((16 * 2**20 - len(head)) // len(minimal))
    sql = ("CREATE TABLE llama_bench (model_type TEXT, n_prompt INTEGER, n_gen INTEGER, "
           "avg_ts REAL);\nINSERT INTO llama_bench VALUES ('x', 0, 1, 1.0);\n")
    join = sql + "INSERT INTO llama_bench SELECT t0.* FROM " + ", ".join(
        f"llama_bench t{i}" for i in range(30)) + ";\n"
    return [
        ("import: 16 MiB CSV of minimal rows", imported("minimal.csv", csv.encode())),
        ("import: a 30-way SQL self-join", imported("join.sql", join.encode())),
        ("import: SQL of 5,000,000 comments", imported("comments.sql",
                                                       (sql + "--\n" * 5_000_000).encode())),
        ("import: 33 builds in one file", imported("builds.jsonl", "".join(
            row % f"{i:07x}" for i in range(33)).encode())),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each refusal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"| input | CPU time per refusal, median (min–max) over {args.reps} | "
              "the error line |")
        print("|---|---|---|")
        for name, refuse in inputs(Path(tmp)):
            times, message = [], ""
            for _ in range(args.reps):
                start = time.process_time()
                try:
                    refuse()
                    message = "NOT REFUSED"
                except BenchkitError as exc:
                    message = f"error: {exc}".replace(tmp, "TMP")
                times.append(time.process_time() - start)
            print(f"| {name} | {statistics.median(times) * 1000:.1f} ms "
                  f"({min(times) * 1000:.1f}–{max(times) * 1000:.1f}) | {message[:110]} |")


if __name__ == "__main__":
    main()

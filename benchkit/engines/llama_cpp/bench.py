"""llama-bench, llama.cpp's own benchmark tool: benchkit runs it and keeps its samples.

One llama-bench process per workload (`-o json -r N`), with every llama.cpp setting
mapped to its flag; each of llama-bench's per-repetition samples (`samples_ns`, its own
clock) becomes one iteration. The point is a second measurement of the same llama.cpp
build on the same model, made by llama.cpp's authors' code rather than ours: when
benchkit's in-process figures and these agree, neither harness is distorting them.

Warmup: llama-bench runs one warmup of its own before the repetitions unless
`--no-warmup` (for pp the full prompt, for tg a single token). A plan with no warmup
passes `--no-warmup`; a plan with W warmups keeps llama-bench's own and adds W - 1
repetitions that are run and discarded, so the timed samples follow W warmup passes.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit.engines.base import CLOCK_TOOL, Engine, Iteration, ModelFile, Plan, Session, setting
from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.core.errors import BenchkitError

if TYPE_CHECKING:
    from benchkit.workloads.base import Workload

TOOL = "llama-bench"
# What llama-bench's JSON says about the build and machine, kept as the case's facts.
FACT_FIELDS = ("build_commit", "build_number", "backends", "gpu_info", "cpu_info",
               "model_type", "model_size", "model_n_params", "n_threads", "test_time",
               "split_mode", "main_gpu", "tensor_split", "devices")


@dataclass(frozen=True)
class Options(LlamaCppOptions):
    """llama.cpp's settings, plus which llama-bench to run and extra arguments for it."""

    binary: str | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 1}],
               "x-error": "must be the path of a llama-bench binary"},
        "llama-bench binary; default: $BENCHKIT_LLAMA_BENCH, PATH, then `benchkit engines "
        "build`'s", sweep=False, column=False)
    args: tuple[str, ...] | None = setting(
        None, {"anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "string"}}],
               "x-error": "must be a list of command-line arguments (strings)"},
        "extra llama-bench arguments, e.g. [\"--poll\", \"0\"]; default none", sweep=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        # none and [] are one configuration: recorded alike, so that results group
        object.__setattr__(self, "args", tuple(self.args) if self.args else None)


class LlamaBench(Engine):
    kind = TOOL
    order = 10
    layer = "C++ benchmark tool, same llama.cpp backend"
    Options = Options
    workloads = frozenset({"pp", "tg", "pp+tg"})
    tools = (TOOL,)
    auto_warmup = False          # llama-bench runs its -r repetitions itself

    def open(self, model: ModelFile | None) -> Session:
        from benchkit.engines.llama_cpp.build import find_tool, tool_version

        assert model is not None
        binary = find_tool(TOOL, self.options.binary)
        return BenchSession(binary, tool_version(binary), model, self.options)


@dataclass(frozen=True)
class Flags:
    """What this llama-bench accepts (its options changed over llama.cpp's history)."""

    load_mode: bool      # -lm none|mmap (newer) instead of -mmp 0|1
    mmap: bool
    flash_attn_words: bool   # -fa on|off|auto (newer) instead of -fa 0|1
    depth: bool
    no_op_offload: bool
    no_warmup: bool
    device: bool         # -dev (newer): which devices to offload to


@lru_cache(maxsize=16)
def flags_of(binary: str) -> Flags:
    """Read `llama-bench --help` once per binary."""
    try:
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60,
                              errors="replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchkitError(f"cannot run {binary} --help: {exc}") from None
    text = proc.stdout + proc.stderr
    return Flags(load_mode="--load-mode" in text, mmap="--mmap" in text,
                 flash_attn_words=bool(re.search(r"--flash-attn <[^>]*auto", text)),
                 depth="--n-depth" in text, no_op_offload="--no-op-offload" in text,
                 no_warmup="--no-warmup" in text, device="--device" in text)


@lru_cache(maxsize=16)
def devices_of(binary: str) -> tuple[dict[str, Any], ...]:
    """`llama-bench --list-devices`: the non-CPU devices its backends see."""
    try:
        proc = subprocess.run([binary, "--list-devices"], capture_output=True, text=True,
                              timeout=120, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return ()
    out = []
    for m in re.finditer(r"^\s+(\S+): (.+?)(?: \((\d+) MiB, (\d+) MiB free\))?\s*$",
                         proc.stdout, re.M):
        out.append({"name": m[1], "description": m[2],
                    "memory_bytes": int(m[3]) * 2**20 if m[3] else None})
    return tuple(out)


class BenchSession(Session):
    """A model measured by llama-bench, one process per workload."""

    def __init__(self, binary: Path, version: dict[str, Any], model: ModelFile,
                 options: Options) -> None:
        self.binary, self.version, self.model, self.options = str(binary), version, model, options
        self.flags = flags_of(self.binary)
        self.devices = devices_of(self.binary)
        self.n_ctx: int | None = None
        self.reported: dict[str, Any] = {}
        self.command: list[str] | None = None
        self.warmup_note: str | None = None

    def facts(self) -> dict[str, Any]:
        v = self.version
        return {"name": TOOL, "process": "one llama-bench process per workload",
                "binary": self.binary, "version": v.get("version"),
                "build_commit": v.get("build_commit"),
                "build_number": v.get("build_number"), "compiler": v.get("compiler"),
                "target": v.get("target"), "devices": list(self.devices),
                **({"warmup": self.warmup_note} if self.warmup_note else {}),
                **({"command": self.command} if self.command else {}),
                **self.reported}

    def placement(self) -> dict[str, Any] | None:
        on_gpu = bool(self.devices) and self.options.n_gpu_layers != 0
        return {"device_kind": "gpu" if on_gpu else "cpu",
                "n_gpu_layers_requested": self.options.n_gpu_layers,
                "devices": [d["description"] for d in self.devices],
                **self.options.split_asked(),
                "note": "llama-bench does not report where layers went; from its devices "
                        "(--list-devices) and -ngl"}

    def prepare(self, workload: Workload) -> list[str]:
        need = workload.depth + workload.n_prompt + workload.n_gen
        if workload.depth and not self.flags.depth:
            raise BenchkitError(f"this llama-bench has no -d (context depth): {self.binary}")
        self.n_ctx = need
        asked = self.options.n_ctx
        if asked and asked != need:
            return [f"llama-bench sizes its context to the test ({need} tokens); "
                    f"n_ctx {asked} is not applied"]
        return []

    def measure(self, workload: Workload, plan: Plan) -> list[Iteration]:
        warmup = int(plan.warmup)      # `warmup: auto` is refused by preflight (auto_warmup)
        extra = max(warmup - 1, 0)
        cmd = self.command_for(workload, plan.iterations + extra, no_warmup=warmup == 0)
        self.command = cmd
        row = self._run(cmd)
        samples = row.get("samples_ns")
        if not isinstance(samples, list) or len(samples) != plan.iterations + extra:
            raise BenchkitError(f"llama-bench returned {_count(samples)} samples, expected "
                                f"{plan.iterations + extra} (-r): {self.binary}")
        self.reported = {k: row.get(k) for k in FACT_FIELDS if k in row}
        self.warmup_note = _warmup_note(warmup, extra)
        tokens = workload.n_prompt + workload.n_gen
        timed = []
        for i, ns in enumerate(samples):
            if i < extra:
                plan.on_iteration(None)
                continue
            ns = _sample_ns(ns, i, self.binary)
            it = Iteration(tokens, ns / 1e9, clock=CLOCK_TOOL, extra={"tool_ns": ns})
            timed.append(it)
            plan.on_iteration(it.tps)
        return timed

    def command_for(self, w: Workload, reps: int, *, no_warmup: bool) -> list[str]:
        """The llama-bench command line of one workload: every setting as its flag."""
        o, f = self.options, self.flags
        if w.kind == "pp":
            tests = ["-p", str(w.n_prompt), "-n", "0"]
        elif w.kind == "tg":
            tests = ["-p", "0", "-n", str(w.n_gen)]
        else:
            tests = ["-p", "0", "-n", "0", "-pg", f"{w.n_prompt},{w.n_gen}"]
        cmd = [self.binary, "-m", self.model.path, "-o", "json", "-r", str(reps), *tests]
        if w.depth:
            cmd += ["-d", str(w.depth)]
        cmd += ["-ngl", str(o.n_gpu_layers), "-b", str(o.n_batch), "-ub", str(o.n_ubatch),
                "-t", str(o.n_threads), "-fa", _fa(o.flash_attn, f.flash_attn_words),
                "-ctk", o.type_k, "-ctv", o.type_v]
        if f.load_mode:
            cmd += ["-lm", "mmap" if o.use_mmap else "none"]
        elif f.mmap:
            cmd += ["-mmp", "1" if o.use_mmap else "0"]
        if f.no_op_offload:
            cmd += ["-nopo", "0" if o.op_offload else "1"]
        elif not o.op_offload:
            raise BenchkitError(f"this llama-bench has no -nopo (op_offload false): {self.binary}")
        if o.devices and not f.device:
            raise BenchkitError(f"this llama-bench has no -dev (devices): {self.binary}",
                                field="engine.devices")
        cmd += o.multi_device_flags(sep="/")
        if no_warmup:
            if not f.no_warmup:
                raise BenchkitError(f"this llama-bench has no --no-warmup (warmup 0): "
                                    f"{self.binary}")
            cmd.append("--no-warmup")
        return cmd + list(o.args or ())

    def _run(self, cmd: list[str]) -> dict[str, Any]:
        """Run llama-bench; its one JSON row, or one error line with its stderr's tail."""
        from benchkit.core.interrupts import CtrlC

        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        except OSError as exc:
            raise BenchkitError(f"cannot run llama-bench {self.binary}: {exc}") from None
        CtrlC.check()                # Ctrl-C reached llama-bench too: stop the run, not the case
        if proc.returncode < 0:
            raise BenchkitError(f"llama-bench was killed by {_signal_name(-proc.returncode)}: "
                                f"{_tail(proc.stderr)}")
        if proc.returncode != 0:
            raise BenchkitError(f"llama-bench exited with status {proc.returncode}: "
                                f"{_tail(proc.stderr)}")
        try:
            rows = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            said = _tail(proc.stderr) if proc.stderr.strip() else \
                f"its output starts {proc.stdout.strip()[:60]!r}"
            raise BenchkitError(f"llama-bench printed no valid JSON ({exc.msg} at line "
                                f"{exc.lineno}): {said}") from None
        if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
            raise BenchkitError(f"llama-bench printed {_count(rows)} results, expected one test")
        return rows[0]


def _sample_ns(value: Any, i: int, binary: str) -> int:
    """One of llama-bench's `samples_ns` as a whole number of nanoseconds; anything else
    (text, a boolean, NaN, a fraction) is one error line. Its plausibility (0 ns, a day
    per token) is judged with every other figure when the case is written
    (benchkit.results.io.case_problem)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BenchkitError(f"llama-bench's samples_ns[{i}] is {str(value)[:40]!r}, not a whole "
                        f"number of nanoseconds: {binary}")


def _fa(value: str, words: bool) -> str:
    if words:
        return value
    return {"on": "1", "off": "0", "auto": "0"}[value]


def _warmup_note(warmup: int, extra: int) -> str:
    if warmup == 0:
        return "none (--no-warmup)"
    own = "llama-bench's own warmup run (pp: the full prompt; tg: one token)"
    return own if not extra else f"{own}, then {extra} repetition(s) run and discarded"


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _tail(stderr: str | None) -> str:
    """The last lines of llama-bench's stderr, as one line (errors stay one line)."""
    from benchkit.engines.llama_cpp.build import output_tail

    return output_tail(stderr, empty="(nothing on stderr)")

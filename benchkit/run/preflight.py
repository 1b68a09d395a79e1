"""Checks made before anything is measured: what llama.cpp would crash on or silently change.

The suite schema checks each value on its own; some inputs are only wrong together, or
only on this machine, or only for this model file, and llama.cpp does not refuse them
cleanly: it aborts the process (GGML_ASSERT), segfaults, or truncates a 64-bit value
into a 32-bit field and runs something else than what the result would record. Each is
refused here in one line naming the file, the field and the line, after the models'
headers are read and before any model loads:

- a GGUF header whose block count llama.cpp asserts on (outside 1..LLAMA_MAX_LAYERS);
- a thread count beyond ggml's GGML_MAX_N_THREADS, or far beyond the machine (the
  setting's or BENCHKIT_THREADS, the default);
- an integer setting outside the 32-bit range llama.cpp keeps it in;
- `warmup: auto` for an engine that runs its iterations in one go (llama-bench), where
  nothing can watch them one by one;
- a workload that cannot fit an n_ctx the suite sets (depth + prompt + generated tokens,
  or a chat's max_tokens plus at least one prompt token), or a context llama.cpp cannot
  make at all (more tokens than its 32-bit n_ctx holds).

A chat prompt's exact length needs the model's tokenizer: the engine checks it when it
prepares the workload, after loading. An n_ctx above the model's training context is
allowed: llama.cpp only warns about it. llama-bench sizes its context to each test
whatever n_ctx says, so n_ctx is not held against its workloads.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Iterable

from benchkit.core.errors import BenchkitError
from benchkit.workloads.base import SuiteSpot as Where   # where a value was written

LLAMA_MAX_LAYERS = 512           # llama.cpp src/llama-hparams.h; load_hparams asserts on it
GGML_MAX_N_THREADS = 512         # ggml/include/ggml.h: the CPU backend's thread arrays
THREADS_PER_CORE = 4             # above 4 x logical cores is a typo, not a configuration
INT32_MAX = 2**31 - 1            # llama.cpp's int and uint32 settings
INT32_MIN = -(2**31)
TOKEN_KINDS = ("pp", "tg", "pp+tg")
# engines that size the context to each test themselves, whatever n_ctx says
# (llama-bench has no n_ctx option; its engine warns that n_ctx is not applied)
OWN_CONTEXT = ("llama-bench",)


def check(suite: Any, models: Iterable[Any] = ()) -> None:
    """Refuse, before loading anything, what cannot run (see the module docstring).

    `models` are the runner's PreparedModel (their `.info` is the GGUF header); without
    them only the suite's own values are checked.
    """
    lines = _SuiteLines(suite)
    check_suite(suite, lines)
    if any(getattr(e, "uses_model_file", True) for e in suite.engines):
        for model in models:
            check_model(model)


def check_suite(suite: Any, lines: _SuiteLines | None = None) -> None:
    """The checks that need only the suite and this machine."""
    lines = lines or _SuiteLines(suite)
    _check_threads_env()
    for engine in suite.engines:
        _check_integers(engine, lines)
        _check_threads(engine, lines)
        _check_warmup(engine, suite, lines)
        for workload in suite.workloads:
            _check_context(engine, workload, suite, lines)


def check_model(model: Any) -> None:
    """A GGUF header llama.cpp would abort on (GGML_ASSERT in load_hparams)."""
    info, spec = model.info, model.resolved.spec
    where = Where(spec.suite_file, spec.field, spec.line)
    name = Path(str(info.path)).name
    arch = info.architecture or "?"
    n = info.n_layers
    if n is not None and not 1 <= n <= LLAMA_MAX_LAYERS:
        raise where.error(f"{name}: the GGUF header says {n:,} blocks ({arch}.block_count); "
                          f"llama.cpp aborts on any count outside 1..{LLAMA_MAX_LAYERS} "
                          "(a corrupt or hand-edited header)")
    nextn = (info.metadata or {}).get(f"{arch}.nextn_predict_layers")
    if isinstance(nextn, int) and n is not None and nextn > n:
        raise where.error(f"{name}: {arch}.nextn_predict_layers {nextn} exceeds the "
                          f"{n} blocks of the header; llama.cpp aborts on that")


def _check_integers(engine: Any, lines: _SuiteLines) -> None:
    """Every integer setting inside the 32-bit range: ctypes and llama.cpp's C ints would
    otherwise keep only the low bits (n_ctx 4294967312 would become 16)."""
    for name, value in _settings(engine):
        if isinstance(value, int) and not isinstance(value, bool) \
                and not INT32_MIN <= value <= INT32_MAX:
            raise lines.setting(engine, name).error(
                f"{value:,} is beyond what llama.cpp takes: {name} is a 32-bit integer "
                f"there (at most {INT32_MAX:,}); a larger value would be truncated, not "
                "refused")


def _check_threads(engine: Any, lines: _SuiteLines) -> None:
    """A thread count ggml cannot start (it segfaults above its limit) or that no machine
    here has any use for."""
    cores = os.cpu_count() or 1
    limit = min(GGML_MAX_N_THREADS, THREADS_PER_CORE * cores)
    for name, value in _settings(engine):
        if "threads" not in name or not isinstance(value, int) or isinstance(value, bool):
            continue
        if value > GGML_MAX_N_THREADS:
            raise lines.setting(engine, name).error(
                f"{value:,} threads: above ggml's limit of {GGML_MAX_N_THREADS} "
                "(GGML_MAX_N_THREADS); llama.cpp crashes on more")
        if value > limit:
            raise lines.setting(engine, name).error(
                f"{value:,} threads on a machine with {cores} logical cores: more than "
                f"{THREADS_PER_CORE} per core ({limit}) only adds contention; use at most "
                f"{limit}")


def _check_threads_env() -> None:
    """BENCHKIT_THREADS, the default thread count, under the same limits as the setting."""
    from benchkit.engines.llama_cpp.options import THREADS_ENV, default_threads

    if not os.environ.get(THREADS_ENV, "").strip():
        return
    value = default_threads()          # refuses what is not a positive integer
    limit = min(GGML_MAX_N_THREADS, THREADS_PER_CORE * (os.cpu_count() or 1))
    if value > limit:
        raise BenchkitError(f"environment variable {THREADS_ENV}: {value:,} threads on a "
                            f"machine with {os.cpu_count() or 1} logical cores; use at most "
                            f"{limit}")


def _check_warmup(engine: Any, suite: Any, lines: _SuiteLines) -> None:
    """`warmup: auto` warms until the last iterations agree: an engine that runs every
    repetition in one process call (llama-bench -r N) cannot be watched that way."""
    if getattr(suite, "warmup", None) != "auto" or getattr(engine, "auto_warmup", True):
        return
    where = Where(lines.file, "warmup", lines.line(["warmup"])) \
        if lines.raw.get("warmup") == "auto" else Where(None, "--warmup", None)
    raise where.error(f"warmup: auto cannot apply to {engine.kind}, which runs its "
                      "repetitions itself (one warmup of its own, then -r N): give a count "
                      "(0 for none, 1 for llama-bench's own)")


def _check_context(engine: Any, workload: Any, suite: Any, lines: _SuiteLines) -> None:
    """The tokens a workload puts in the context must fit the context llama.cpp makes."""
    if not hasattr(engine.options, "n_ctx") or workload.kind not in (*TOKEN_KINDS, "chat"):
        return
    n_ctx = engine.options.n_ctx
    if workload.kind == "chat":
        need = workload.n_gen + 1          # at least one prompt token (exact: at prepare)
        what = f"chat max_tokens {workload.n_gen:,} plus its prompt"
    else:
        need = workload.depth + workload.n_prompt + workload.n_gen
        parts = [f"depth {workload.depth:,}"] if workload.depth else []
        parts += [f"prompt {workload.n_prompt:,}"] if workload.n_prompt else []
        parts += [f"generated {workload.n_gen:,}"] if workload.n_gen else []
        what = f"{workload.test} ({' + '.join(parts)} tokens)"
    if n_ctx is None:
        if need > INT32_MAX:
            raise lines.workload(suite, workload).error(
                f"{what} needs a context of {need:,} tokens, more than llama.cpp's 32-bit "
                f"n_ctx holds ({INT32_MAX:,})")
        return
    if need > n_ctx and engine.kind not in OWN_CONTEXT:
        raise lines.setting(engine, "n_ctx").error(
            f"n_ctx {n_ctx:,} cannot hold {what}: it needs {need:,} tokens; raise n_ctx "
            "or leave it unset (benchkit then sizes the context to each workload)")


def _settings(engine: Any) -> Iterable[tuple[str, Any]]:
    options = engine.options
    return options.to_dict().items() if hasattr(options, "to_dict") else ()


class _SuiteLines:
    """Field names and YAML lines of the suite's values, for error lines.

    The suite file is composed once more (bounded, cheap) for its marks, only when an
    error needs a line: a suite that passes is not read again. When it cannot be (a suite
    built in code), errors name the field without a line.
    """

    def __init__(self, suite: Any) -> None:
        self.file = getattr(suite, "file", None)
        self.raw = getattr(suite, "raw", None) or {}

    @functools.cached_property
    def root(self) -> Any:
        return _compose(self.file)

    def line(self, path: list[Any]) -> int | None:
        if self.root is None:
            return None
        from benchkit.run.suite import line_of

        return line_of(self.root, path)

    def setting(self, engine: Any, name: str) -> Where:
        """`engines.I.NAME` where the engine's own entry sets it, else `engine.NAME`."""
        entries = self.raw.get("engines") or []
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("kind") == engine.kind and name in entry:
                return Where(self.file, f"engines.{i}.{name}", self.line(["engines", i, name]))
        if name in (self.raw.get("engine") or {}):
            return Where(self.file, f"engine.{name}", self.line(["engine", name]))
        return Where(self.file, f"engine.{name}", None)

    def workload(self, suite: Any, workload: Any) -> Where:
        """`workloads.I`: the entry that stands for this workload."""
        from benchkit import workloads as registry

        for i, entry in enumerate(self.raw.get("workloads") or []):
            try:
                if workload in registry.parse(entry):
                    return Where(self.file, f"workloads.{i}", self.line(["workloads", i]))
            except BenchkitError:
                continue
        return Where(self.file, "workloads", self.line(["workloads"]))


def _compose(file: str | None) -> Any:
    """The suite's YAML node tree, or None where the file cannot be read again."""
    if not file:
        return None
    import yaml

    from benchkit.core.safeio import MAX_SUITE_BYTES, read_bounded, yaml_load_bounded

    try:
        path = Path(os.path.expanduser(file))
        return yaml_load_bounded(read_bounded(path, MAX_SUITE_BYTES, "suite file"), file)[0]
    except (BenchkitError, OSError, yaml.YAMLError):   # lines are a courtesy
        return None

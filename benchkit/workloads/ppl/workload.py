"""ppl: perplexity over a text, and KL divergence against a reference, beside the speed.

    workloads:
      - ppl: {text: persuasion, n_ctx: 512, chunks: 20}
      - ppl: {n_ctx: 512, chunks: 20, kld: {reference: {n_gpu_layers: 0, op_offload: false}}}
      - ppl: {kld: {reference: {path: models/smollm2-f16.gguf}}}

The evaluation is llama-perplexity's (llama.cpp tools/perplexity): the whole text is
tokenized with BOS as the model adds it, cut into `chunks` chunks of `n_ctx` tokens, the
first token of each chunk replaced by BOS where the model adds one, chunks decoded
n_batch / n_ctx at a time as separate sequences (logits for the second half of each), and
the second half of each chunk scored (`first = n_ctx / 2`). The math is
benchkit.workloads.ppl.metrics; llama.cpp's side (tokenizing, packing, the decodes that give
the logits, the reference model loaded beside, llama-perplexity) is
benchkit.engines.llama_cpp.perplexity.
A text is a shipped name or a path (relative: from the suite file's folder), read only
when it is a regular file of at most 64 MiB (`benchkit.core.safeio.MAX_TEXT_BYTES`): the whole
text is tokenized in memory, so a larger one is refused from its size, unread.

One pass over the text is the workload: each decode of a group of chunks is one timed
iteration (tokens decoded / seconds, benchkit's clock, logits handled after the clock
stops); the suite's `iterations` do not apply, its `warmup` (a count or auto) decodes
the first group first. Every iteration carries llama-perplexity's running sums, so `summary`
(ppl, ppl_stderr, the KLD figures) follows from the iterations in the result file.

With `kld:`, the reference's logits come from benchkit's cache,
`${BENCHKIT_CACHE:-~/.cache/benchkit}/logits/<key>.npz`, keyed by the reference model's
sha256, the text's sha256, n_ctx, chunks, top_k, the reference's settings and the
llama.cpp build; a miss computes them first (untimed) with the reference model loaded
beside the one under test, so one reference serves every configuration and every run
that names it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from benchkit.engines.base import Iteration
from benchkit.engines.llama_cpp.perplexity import (TextPlan, model_for, passes, plan_chunks,
                                                 tokenize)
from benchkit.engines.llama_cpp.options import LlamaCppOptions
from benchkit.core.errors import BenchkitError
from benchkit.workloads.base import SuiteSpot, Workload

ORDER = 20                  # place among the workloads (benchkit.workloads.modules)
SUITE_KEYS = ("ppl",)
DEFAULT_TEXT = "persuasion"
DEFAULTS = {"text": DEFAULT_TEXT, "n_ctx": 512, "chunks": 20}
DEFAULT_TOP_K = 128            # benchkit.workloads.ppl.metrics.TOP_K
DEFAULT_TAIL_SAMPLES = 512     # benchkit.workloads.ppl.metrics.TAIL_SAMPLES
CACHE_FORMAT = 2
MODEL_KEYS = ("path", "package", "hf")
# settings that cannot change a logit: left out of the reference's cache key
_NOT_NUMERIC = ("use_mmap",)


def _reference_schema() -> dict[str, Any]:
    props: dict[str, Any] = {k: {"type": "string", "minLength": 1,
                                 "x-error": "must be a non-empty string"} for k in MODEL_KEYS}
    for f in LlamaCppOptions.fields():
        props[f.name] = f.metadata["schema"]
    return {"type": "object", "additionalProperties": False, "properties": props,
            "x-error": "must be a mapping: a model (path:, package: or hf:) and/or llama.cpp "
                       "settings that differ from the case's, e.g. {n_gpu_layers: 0}"}


SCHEMA = {
    "ppl": {
        "anyOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "minLength": 1,
                         "x-error": "must be a shipped text's name or a file path"},
                "n_ctx": {"type": "integer", "minimum": 4, "maximum": 2**31 - 1,
                          "x-error": "must be an integer >= 4 (tokens per chunk)"},
                "chunks": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                                     {"const": "all"}],
                           "x-error": "must be a positive integer or `all`"},
                "kld": {"type": "object", "additionalProperties": False,
                        "required": ["reference"],
                        "properties": {
                            "reference": _reference_schema(),
                            "top_k": {"type": "integer", "minimum": 1, "maximum": 65536,
                                      "x-error": "must be an integer from 1 to 65536"},
                            "tail_samples": {"type": "integer", "minimum": 0,
                                             "maximum": 65536,
                                             "x-error": "must be an integer from 0 to 65536"}},
                        "x-error": "must be a mapping with reference: (and top_k:, "
                                   "tail_samples:)"},
            }}],
        "x-error": "must be a mapping with text:, n_ctx:, chunks: (and kld:)"},
}


def main_keys() -> tuple[str, ...]:
    return ("ppl",)


# --------------------------------------------------------------------------- suite entries


@dataclass(frozen=True)
class Where(SuiteSpot):
    """Where the entry is in its suite; its errors name a key under the entry's `ppl`."""

    def error(self, message: str, key: str | None = None) -> BenchkitError:  # type: ignore[override]
        base = f"{self.field}.ppl" if self.field else "ppl"
        return super().error(message, f"{base}.{key}" if key else base)


@dataclass(frozen=True)
class Reference:
    """What the KLD compares against: a model file (None: the case's own) and the
    llama.cpp settings that differ from the case's."""

    model: Any = None                              # benchkit.run.suite.ModelSpec or None
    settings: tuple[tuple[str, Any], ...] = ()
    top_k: int = DEFAULT_TOP_K
    tail_samples: int = DEFAULT_TAIL_SAMPLES

    @property
    def tag(self) -> str:
        """What differs from the case, in a test name: `n_gpu_layers=0`, `f16.gguf`, `self`."""
        parts = [Path(self.model.ref).name] if self.model is not None else []
        parts += [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                  for k, v in self.settings]
        return ",".join(parts) or "self"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: v for k, v in self.settings}
        if self.model is not None:
            d[self.model.kind] = self.model.ref
        return {"reference": d, "top_k": self.top_k, "tail_samples": self.tail_samples}


@dataclass(frozen=True)
class PplWorkload(Workload):
    """Perplexity (and KLD) of the model over one text."""

    text: str = DEFAULT_TEXT          # as the suite wrote it (a shipped name or a path)
    text_path: str = ""               # the file read
    text_sha256: str = ""
    text_bytes: int = 0
    ctx: int = 512                    # tokens per chunk (llama-perplexity -c)
    chunks: int | None = 20           # None: every whole chunk of the text
    reference: Reference | None = None
    where: Where = Where()

    kind = "ppl"

    @property
    def test(self) -> str:
        """`ppl512`; `ppl512[wiki.txt]` on another text than the default; with a KLD,
        `+kld:` and what the reference changes (`ppl512+kld:n_gpu_layers=0`, `+kld:self`)."""
        name = f"ppl{self.ctx}"
        if self.text != DEFAULT_TEXT:
            name += f"[{Path(self.text).name}]"
        return name + (f"+kld:{self.reference.tag}" if self.reference else "")

    @property
    def n_prompt(self) -> int:
        return self.ctx

    def to_dict(self) -> dict[str, Any]:
        d = {**super().to_dict(), "text": self.text, "text_sha256": self.text_sha256,
             "text_bytes": self.text_bytes, "n_ctx": self.ctx,
             "chunks": self.chunks if self.chunks is not None else "all"}
        if self.reference is not None:
            d["kld"] = self.reference.to_dict()
        return d

    def summary(self, iterations: list[dict[str, Any]]) -> dict[str, Any]:
        return summarise(self, iterations)

    def prepare_session(self, session: Any) -> list[str]:
        return prepare(self, session)

    def measure(self, session: Any, plan: Any) -> list[Iteration]:
        return measure(self, session, plan)


def parse(entry: dict[str, Any]) -> list[Workload]:
    """An entry outside a suite file: paths relative to the working folder."""
    return parse_located(entry)


def parse_located(entry: dict[str, Any], *, file: str | None = None, field: str | None = None,
                  line: int | None = None) -> list[Workload]:
    """One `ppl:` entry: its text read and checked now, so a bad text fails the suite at once."""
    where = Where(file, field, line)
    spec = {**DEFAULTS, **(entry["ppl"] or {})}
    path, raw = read_text(spec["text"], where)
    reference = None
    if "kld" in spec:
        reference = _reference(spec["kld"], where)
    return [PplWorkload(text=spec["text"], text_path=str(path),
                        text_sha256=hashlib.sha256(raw).hexdigest(), text_bytes=len(raw),
                        ctx=spec["n_ctx"], chunks=None if spec["chunks"] == "all"
                        else spec["chunks"], reference=reference, where=where)]


def shipped_texts() -> dict[str, Path]:
    """Name -> file of the texts benchkit ships (benchkit/data/texts/*.txt)."""
    from importlib import resources

    folder = Path(str(resources.files("benchkit").joinpath("data/texts")))
    return {p.stem: p for p in sorted(folder.glob("*.txt"))}


def read_text(value: str, where: Where) -> tuple[Path, bytes]:
    """The file a `text:` value names and its bytes, refused when empty or not UTF-8 text."""
    shipped = shipped_texts()
    if value in shipped:
        path = shipped[value]
    else:
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = where.folder / path
    missing = (f"text file not found: {value} (texts benchkit ships: "
               f"{', '.join(shipped) or 'none'})")
    try:
        raw = read_text_bytes(path, value, missing)
    except BenchkitError as exc:
        raise where.error(exc.message, "text") from None
    problem = text_problem(raw)
    if problem:
        raise where.error(f"{value}: {problem}", "text")
    return path, raw


def read_text_bytes(path: Path, value: str, missing: str | None = None) -> bytes:
    """The bytes of a text file, bounded (benchkit.core.safeio): a regular file of at most
    MAX_TEXT_BYTES, refused from its size before it is read, since the whole text is
    tokenized in memory. Errors name the text as the suite wrote it (`value`)."""
    from benchkit.core.safeio import MAX_TEXT_BYTES, read_bounded_bytes

    return read_bounded_bytes(path, MAX_TEXT_BYTES, f"text {value}", str(path),
                              missing=missing)


def text_problem(raw: bytes) -> str | None:
    """Why these bytes cannot be a perplexity text, or None."""
    if not body(raw).strip():
        return "the text is empty"
    nul = raw.find(b"\0")
    if nul >= 0:
        return f"a binary file, not text (NUL byte at offset {nul})"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
    return None


def body(raw: bytes) -> bytes:
    """What llama-perplexity tokenizes of a file: its bytes less one final newline."""
    return raw[:-1] if raw.endswith(b"\n") else raw


def _reference(kld: dict[str, Any], where: Where) -> Reference:
    ref = dict(kld["reference"])
    models = [k for k in MODEL_KEYS if k in ref]
    if len(models) > 1:
        raise where.error(f"a reference is one model: {' and '.join(models)} both given",
                          f"kld.reference.{models[1]}")
    spec = None
    if models:
        from benchkit.run.suite import ModelSpec

        kind = models[0]
        base = f"{where.field}.ppl" if where.field else "ppl"
        spec = ModelSpec(kind=kind, ref=ref.pop(kind), field=f"{base}.kld.reference.{kind}",
                         suite_file=where.file or "", suite_dir=str(where.folder),
                         line=where.line)
        if kind != "hf":            # local: a typo fails now; a hub file resolves when used
            from benchkit.models.ref import resolve

            resolve(spec)
    settings = tuple(sorted((k, _normalise(k, v)) for k, v in ref.items()))
    return Reference(model=spec, settings=settings, top_k=kld.get("top_k", DEFAULT_TOP_K),
                     tail_samples=kld.get("tail_samples", DEFAULT_TAIL_SAMPLES))


def _normalise(key: str, value: Any) -> Any:
    if key == "flash_attn" and isinstance(value, bool):
        return "on" if value else "off"
    return value


# --------------------------------------------------------------------------- the text


def plan_for(w: PplWorkload, native: Any) -> TextPlan:
    """Read the text again (it must not have changed), tokenize it, check it against the
    model, and choose the chunks and the packing as llama-perplexity does."""
    try:
        raw = read_text_bytes(Path(w.text_path), w.text)
    except BenchkitError:
        raw = b""               # vanished, replaced by a folder or grown past the limit
    if hashlib.sha256(raw).hexdigest() != w.text_sha256:
        raise w.where.error(f"{w.text} changed (or vanished) since the suite was read", "text")
    check_context(w, native.path)
    tokens = tokenize(native, body(raw), w.where)
    return plan_chunks(tokens, native.settings, ctx=w.ctx, chunks=w.chunks, text=w.text,
                       test=w.test, where=w.where)

def check_context(w: PplWorkload, model_path: str) -> None:
    """n_ctx above the training context the GGUF header states is refused (llama-perplexity
    only warns: the figures would measure positions the model never learnt)."""
    from benchkit.models.gguf import read_gguf_info

    info = read_gguf_info(model_path)
    if info.context_length and w.ctx > info.context_length:
        raise w.where.error(f"n_ctx {w.ctx} is above the training context of "
                            f"{Path(model_path).name} ({info.context_length} tokens, GGUF "
                            f"{info.architecture}.context_length)", "n_ctx")


# --------------------------------------------------------------------------- evaluation


def prepare(w: PplWorkload, session: Any) -> list[str]:
    """Before the clock: the reference's logits (cached, or computed now), then the context
    for the model under test (n_seq sequences of n_ctx, as llama-perplexity makes it)."""
    from benchkit.engines.llama_cpp.in_process import placement_warnings

    native = session.native
    plan = plan_for(w, native)
    warnings = list(plan.warnings)
    if w.reference is not None:
        warnings += ensure_reference(w, native, plan)[1]
    native.new_context(plan.n_seq * plan.ctx, n_seq=plan.n_seq)
    session.n_ctx = native.n_ctx
    return warnings + placement_warnings(native.placement)


def measure(w: PplWorkload, session: Any, plan_: Any) -> list[Iteration]:
    """One pass over the text: one timed iteration per group of chunks."""
    from benchkit.workloads.ppl import metrics as quality

    native = session.native
    plan = plan_for(w, native)
    ref = None
    if w.reference is not None:        # prepare() made sure the cache holds it
        path = cache_dir() / f"{reference_key(w, native, plan)[0]}.npz"
        check_cached(w, native, plan, path)
        ref = load_reference(path)
    warm: list[float] = []
    session.first_iteration = None
    while plan_.more_warmup(warm):                 # the first group of chunks, discarded
        seconds = sum(s for s, _ in passes(native, plan, range(0, 1)))
        it = Iteration(min(plan.n_seq, plan.n_chunks) * plan.ctx, seconds)
        session.first_iteration = session.first_iteration or it
        warm.append(it.tps)
        plan_.on_iteration(None)
    session.warmups_used = len(warm)
    out: list[Iteration] = []
    kld_values, dp_values, row = [], [], 0
    for seconds, chunks in passes(native, plan):
        extra: dict[str, Any] = {"chunks": len(chunks), "scored": 0, "nll_sum": 0.0,
                                 "nll2_sum": 0.0}
        sums = quality.KldSums()
        for logits, targets in chunks:
            nll = quality.token_nll(logits, targets)
            extra["scored"] += len(nll)
            extra["nll_sum"] += float(nll.sum())
            extra["nll2_sum"] += float((nll * nll).sum())
            if ref is not None:
                part = {k: v[row:row + len(targets)] for k, v in ref.items()}
                rows = quality.kld_rows(logits, targets, part)
                sums = sums + quality.KldSums.of(rows)
                kld_values.append(rows["kld"])
                dp_values.append(rows["p_diff"])
                row += len(targets)
        if ref is not None:
            extra["kld"] = sums.to_dict()
        it = Iteration(len(chunks) * plan.ctx, seconds, extra=extra)
        session.first_iteration = session.first_iteration or it
        out.append(it)
        plan_.on_iteration(it)
    if ref is not None and out:
        import numpy as np

        out[-1].extra["pass"] = {
            "kld_percentiles": quality.percentiles(np.concatenate(kld_values),
                                                   quality.KLD_PERCENTILES),
            "dp_percentiles": quality.percentiles(np.concatenate(dp_values),
                                                  quality.DP_PERCENTILES),
            "reference": ref_info(w, native)}
    return out


def summarise(w: PplWorkload, iterations: list[dict[str, Any]]) -> dict[str, Any]:
    """ppl and its error from the iterations' sums; the KLD figures likewise."""
    from benchkit.workloads.ppl import metrics as quality

    scored = sum(int(it.get("scored") or 0) for it in iterations)
    out: dict[str, Any] = {"text": w.text, "text_sha256": w.text_sha256, "n_ctx": w.ctx,
                           "chunks": sum(int(it.get("chunks") or 0) for it in iterations),
                           "tokens_scored": scored,
                           "tokens_evaluated": sum(int(it.get("tokens") or 0)
                                                   for it in iterations)}
    if not scored:
        return out
    ppl, err = quality.perplexity(sum(it["nll_sum"] for it in iterations),
                                  sum(it["nll2_sum"] for it in iterations), scored)
    out.update(ppl=ppl, ppl_stderr=err)
    if w.reference is not None and all("kld" in it for it in iterations):
        sums = quality.KldSums()
        for it in iterations:
            sums = sums + quality.KldSums.from_dict(it["kld"])
        out.update(quality.kld_figures(sums))
        last = iterations[-1].get("pass") or {}
        out["kld_percentiles"] = last.get("kld_percentiles")
        out["dp_percentiles"] = last.get("dp_percentiles")
        out["reference"] = last.get("reference")
    return out


# --------------------------------------------------------------------------- the reference


def cache_dir() -> Path:
    from benchkit.engines.llama_cpp.build import cache_root

    return cache_root() / "logits"


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 - cache key
    from benchkit.models.gguf import sha256_file

    return sha256_file(path)


def file_sha256(path: str) -> str:
    st = os.stat(path)
    return _sha256(path, st.st_size, st.st_mtime_ns)


def reference_model(w: PplWorkload, native: Any) -> tuple[str, str, str]:
    """(path, label, display name) of the reference's model file: its own, or the case's."""
    spec = w.reference.model if w.reference else None
    if spec is None:
        return native.path, native.label, Path(native.path).name
    from benchkit.models.ref import resolve

    path = str(resolve(spec).path)
    label = f"{spec.suite_file}{f':{spec.line}' if spec.line else ''} [{spec.field}]"
    return path, label, Path(path).name


def reference_settings(w: PplWorkload, native: Any) -> LlamaCppOptions:
    """The case's settings with the reference's overrides."""
    assert w.reference is not None
    return dataclasses.replace(native.settings, **dict(w.reference.settings)).resolved()


def reference_key(w: PplWorkload, native: Any, plan: TextPlan) -> tuple[str, dict[str, Any]]:
    """The cache key and what it is made of."""
    import llama_cpp

    assert w.reference is not None
    path, _, _ = reference_model(w, native)
    settings = {k: v for k, v in reference_settings(w, native).to_dict().items()
                if k not in _NOT_NUMERIC}
    parts = {"format": CACHE_FORMAT, "model_sha256": file_sha256(path),
             "text_sha256": w.text_sha256, "n_ctx": w.ctx, "chunks": plan.n_chunks,
             "top_k": w.reference.top_k, "tail_samples": w.reference.tail_samples,
             "settings": settings,
             "llama_cpp_python": getattr(llama_cpp, "__version__", None),
             "system_info": native.llama.llama_print_system_info().decode("utf-8", "replace")}
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32], parts


def ref_info(w: PplWorkload, native: Any) -> dict[str, Any]:
    """What the result records of the reference."""
    assert w.reference is not None
    path, _, name = reference_model(w, native)
    return {"model": name, "model_sha256": file_sha256(path),
            "same_file": os.path.realpath(path) == os.path.realpath(native.path),
            "settings": reference_settings(w, native).to_dict(),
            "overrides": dict(w.reference.settings), "top_k": w.reference.top_k,
            "tail_samples": w.reference.tail_samples}


def ensure_reference(w: PplWorkload, native: Any, plan: TextPlan) -> tuple[Path, list[str]]:
    """The cache file of the reference's logits, computed first when missing; checked
    against this model's vocabulary and tokens either way."""
    key, parts = reference_key(w, native, plan)
    path = cache_dir() / f"{key}.npz"
    warnings: list[str] = []
    if not path.is_file():
        seconds = compute_reference(w, native, plan, path, parts)
        warnings.append(f"reference logits computed in {seconds:.1f} s (benchkit's clock, "
                        f"untimed for the case) and cached as {_display(path)}")
    else:
        warnings.append(f"reference logits reused from the cache: {_display(path)}")
    check_cached(w, native, plan, path)
    return path, warnings


def _display(path: Path) -> str:
    from benchkit.community.scrub import scrub_home

    return scrub_home(str(path))


def compute_reference(w: PplWorkload, native: Any, plan: TextPlan, path: Path,
                      parts: dict[str, Any]) -> float:
    """Load the reference, run the same pass, keep the compact logits; seconds taken."""
    import numpy as np

    from benchkit.workloads.ppl import metrics as quality

    assert w.reference is not None
    _, _, name = reference_model(w, native)
    start = time.perf_counter()
    with reference_engine(w, native) as ref:
        check_vocab(w, native, ref.n_vocab, name)
        ref_plan = plan_for(w, ref)
        if not np.array_equal(ref_plan.tokens[:plan.n_chunks * plan.ctx],
                              plan.tokens[:plan.n_chunks * plan.ctx]):
            raise _vocab_error(w, name, "it tokenizes the text differently")
        ref_plan = dataclasses.replace(ref_plan, n_chunks=plan.n_chunks)
        ref.new_context(ref_plan.n_seq * ref_plan.ctx, n_seq=ref_plan.n_seq)
        blocks, row = [], 0
        for _, chunks in passes(ref, ref_plan):
            for logits, targets in chunks:
                blocks.append(quality.reference_rows(logits, targets, w.reference.top_k,
                                                     w.reference.tail_samples, row))
                row += len(targets)
    arrays = {k: np.concatenate([b[k] for b in blocks]) for k in quality.REFERENCE_ARRAYS}
    arrays["tokens"] = plan.tokens[:plan.n_chunks * plan.ctx]
    arrays["n_vocab"] = np.array([native.n_vocab], dtype=np.int64)
    arrays["meta"] = np.array(json.dumps(parts, sort_keys=True))
    save_reference(path, arrays)
    return time.perf_counter() - start


@contextlib.contextmanager
def reference_engine(w: PplWorkload, native: Any) -> Iterator[Any]:
    """The model that computes the reference (the model under test itself when only
    context settings differ)."""
    model_path, label, _ = reference_model(w, native)
    with model_for(native, model_path, reference_settings(w, native), label) as ref:
        yield ref

def save_reference(path: Path, arrays: dict[str, Any]) -> None:
    """Write atomically: a run interrupted mid-write leaves no half file that would pass
    for a reference."""
    import numpy as np

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        raise BenchkitError(f"cannot write the reference logits: {exc.strerror or exc} "
                            f"(set BENCHKIT_CACHE to a writable folder)",
                            file=str(path)) from None


# what numpy raises on a damaged .npz (truncated: a zip without its directory, a short
# member; hand-edited: a missing or empty array)
_UNREADABLE = (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile)


def load_reference(path: Path) -> dict[str, Any]:
    import numpy as np

    from benchkit.workloads.ppl import metrics as quality

    try:
        with np.load(path) as data:
            return {k: data[k] for k in quality.REFERENCE_ARRAYS}
    except _UNREADABLE as exc:
        raise BenchkitError(f"unreadable reference logits ({type(exc).__name__}); delete the "
                            f"file to compute them again", file=str(path)) from None


def check_cached(w: PplWorkload, native: Any, plan: TextPlan, path: Path) -> None:
    """The cached reference fits this model: same vocabulary size, same tokens, as many
    scored tokens as the pass makes."""
    import numpy as np

    _, _, name = reference_model(w, native)
    try:
        with np.load(path) as data:
            n_vocab = int(data["n_vocab"][0])
            tokens = data["tokens"]
            n_rows = len(data["nll"])
            ids_max = int(data["top_ids"].max()) if data["top_ids"].size else -1
    except _UNREADABLE as exc:
        raise BenchkitError(f"unreadable reference logits ({type(exc).__name__}); delete the "
                            f"file to compute them again", file=str(path)) from None
    check_vocab(w, native, n_vocab, name)
    if not np.array_equal(tokens, plan.tokens[:plan.n_chunks * plan.ctx]):
        raise _vocab_error(w, name, "it tokenizes the text differently")
    want = plan.n_chunks * (plan.ctx - 1 - plan.first)
    if n_rows != want or ids_max >= native.n_vocab:
        raise BenchkitError(f"reference logits do not fit this run ({n_rows} scored tokens, "
                            f"the run scores {want}); delete the file to compute them again",
                            file=str(path))


def check_vocab(w: PplWorkload, native: Any, ref_vocab: int, name: str) -> None:
    if ref_vocab != native.n_vocab:
        raise _vocab_error(w, name, f"its vocabulary has {ref_vocab} tokens, "
                                    f"{Path(native.path).name}'s {native.n_vocab}")


def _vocab_error(w: PplWorkload, name: str, why: str) -> BenchkitError:
    key = f"kld.reference.{w.reference.model.kind}" if w.reference and w.reference.model \
        else "kld.reference"
    return w.where.error(f"the reference {name} cannot serve as a KL-divergence reference: "
                         f"{why}", key)

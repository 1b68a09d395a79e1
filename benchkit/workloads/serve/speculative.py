"""Speculative decoding's speedup, for the `serve` workload: the same level, on the same
requests, against the same server without its draft model.

A level whose server drafts (llama-server with `draft_model`) is run twice: once against
the drafted server (the case's requests and figures), then, with the same prompts (the
same seed), the same limits and the same warmups, against a twin of that server that
benchkit starts beside it without the draft (the same binary, model and settings) and
stops after the level. The level's summary then has `speculative_speedup`: its output
tok/s over the twin's, and `speculative_baseline`: the twin's own figures (output tok/s,
TTFT and TPOT p50, requests). `speculative_baseline: false` in the serve entry skips the
twin (half the time; no speedup); an SLO search has none (its levels differ per server).
Servers benchkit did not start (the `openai` engine) have no twin: the level says so in
`speculative_baseline_note` when their requests report drafts.
"""

from __future__ import annotations

from typing import Any

from benchkit.core.errors import BenchkitError

NO_TWIN = ("no speedup: this level did not run without the draft (an SLO search, "
           "speculative_baseline: false, or a server benchkit did not start)")
# the twin's figures kept in the level's summary (`speculative_baseline`)
KEPT = ("output_tps", "ttft_p50_s", "tpot_p50_s", "e2e_p50_s", "requests", "requests_ok",
        "level_s", "output_tokens")


def baseline(workload: Any, session: Any, warmup: int | str) -> dict[str, Any] | None:
    """The level run against the session's twin without a draft: its figures (KEPT and
    the twin's command line), a note when the twin could not be run, or None when the
    session has no draft (or cannot start a twin)."""
    make_twin = getattr(session, "without_draft", None)
    if make_twin is None:
        return None
    try:
        twin = make_twin()
    except BenchkitError as exc:
        return {"note": f"the server without its draft did not start: {exc}"}
    if twin is None:
        return None
    try:
        _, its, _ = workload.run_once(twin, warmup)
        argv = twin.facts().get("argv")
    except BenchkitError as exc:
        return {"note": f"the level without the draft failed: {exc}"}
    finally:
        twin.close()
    summary = workload.level_summary([it.to_dict() for it in its])
    return {**{k: summary.get(k) for k in KEPT}, "argv": argv,
            "prompt_seed": summary.get("prompt_seed")}


def speedup_figures(summary: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """`speculative_speedup` (drafted over plain output tok/s) and the twin's figures, or
    the note saying why there is no speedup; nothing for a level without drafts."""
    if base is None:
        if summary.get("draft_tokens"):
            return {"speculative_baseline_note": NO_TWIN}
        return {}
    if "note" in base:
        return {"speculative_baseline_note": base["note"]}
    mine, theirs = summary.get("output_tps"), base.get("output_tps")
    out: dict[str, Any] = {"speculative_baseline": base,
                           "speculative_speedup": mine / theirs if mine and theirs else None}
    if out["speculative_speedup"] is None:
        out["speculative_baseline_note"] = "no speedup: a side delivered no output tokens"
    return out

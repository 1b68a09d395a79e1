"""Facts about a measured case that several readers decide: each decided here, once.

Reports, the DataFrame, the end-of-run table and the community checks all ask where a
case ran and which of its figures is a decode or a prompt rate; when each answered on
its own, a placement one reader called GPU another called CPU. Functions take a case as
its JSON object or as the typed `benchkit.results.model.Case` (both have `.get`).
"""

from __future__ import annotations

from typing import Any, Mapping

# Workload kinds whose tok/s is a decode rate, in order of preference for "the decode
# figure" of a configuration; and those whose tok/s is a prompt-processing rate.
DECODE_KINDS = ("tg", "chat")
PROMPT_KINDS = ("pp",)


def placement_kind(placement: Mapping[str, Any] | None) -> str:
    """"gpu" or "cpu", from what llama.cpp reported at load time: the device kind it
    names, else whether any layer was offloaded."""
    placement = placement or {}
    if placement.get("device_kind"):
        return placement["device_kind"]
    return "gpu" if (placement.get("layers_offloaded") or 0) > 0 else "cpu"


def ran_on_gpu(case: Any) -> bool:
    """Whether any layer of the case ran on a GPU."""
    return placement_kind(case.get("placement")) == "gpu"


def device_kind(case: Any) -> str:
    """What did the case's work: "gpu", "cpu", or "unknown" for a server benchkit did not
    start (it placed the model itself and said nothing of it)."""
    engine = case.get("engine") or {}
    if not case.get("placement") and serves_elsewhere(engine.get("kind")):
        return "unknown"
    return placement_kind(case.get("placement"))


def gpus_used(case: Any) -> list[str] | None:
    """The GPUs that did a case's work, by name; None where nothing recorded says.

    llama.cpp's own report first (the placement's per-device entries: GPUs that held
    layers or weights, and those a row- or tensor-split buffer spread over); else, for a
    GPU case, what was asked of llama.cpp (split_mode none: the main GPU; `devices`: those);
    else the GPUs NVML saw the benchmark process on (a process may hold a context on a GPU
    it computes nothing on, so this comes last).
    """
    out: list[str] = []
    placement = case.get("placement") or {}
    for d in placement.get("per_device") or []:
        if d.get("kind") == "gpu" and (d.get("layers") or d.get("model_mib")):
            out.append(d["device"])
        out += [dev for dev in d.get("spread_over") or [] if dev not in out]
    if out:
        return out
    engine = case.get("engine") or {}
    if ran_on_gpu(case) and engine.get("split_mode") == "none":
        return [f"GPU {engine.get('main_gpu') or 0}"]
    if ran_on_gpu(case) and engine.get("devices"):
        return list(engine["devices"])
    nv = (case.get("telemetry") or {}).get("nvidia") or {}
    if str(nv.get("selection", "")).startswith("devices where NVML lists"):
        return [f"GPU {d.get('index')}" for d in nv.get("devices") or []] or None
    return None


def serves_elsewhere(kind: str | None) -> bool:
    """An engine whose server benchkit does not start (it chooses what it serves and where
    it puts it): the engine class says so itself."""
    from benchkit import engines
    from benchkit.core.errors import BenchkitError

    try:
        return kind is not None and not engines.engine_class(kind).uses_model_file
    except (BenchkitError, ImportError):
        return False


def gives_decode(workload_kind: str | None) -> bool:
    """Whether a workload's tok/s is a decode rate."""
    return workload_kind in DECODE_KINDS


def gives_prompt(workload_kind: str | None) -> bool:
    """Whether a workload's tok/s is a prompt-processing rate."""
    return workload_kind in PROMPT_KINDS

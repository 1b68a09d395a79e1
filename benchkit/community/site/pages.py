"""The site's chip pages and result pages: what each chip measured, and every fact of one
result (its cases, environment and model)."""

from __future__ import annotations

from typing import Any

from benchkit.community.site.entries import (Entry, case_of, chip_name, fig, os_name, pct,
                                             pooled, tps)
from benchkit.core.units import fmt_bytes, fmt_mib

# --- chip and result pages ---------------------------------------------------------------


def chip_facts(chip: str, entries: list[Entry]) -> dict[str, Any]:
    from benchkit.projection.chips import load_chips

    db = load_chips().get(chip)
    facts = None
    if db is not None:
        facts = {"vendor": db.vendor, "gpu_cores": db.gpu_cores,
                 "bandwidth": f"{db.bandwidth_gbs:,.0f} GB/s"}
    return {"id": chip, "name": chip_name(chip, entries[0].doc), "db": facts}


def result_row(e: Entry) -> dict[str, Any]:
    env = e.doc["environment"]
    model = case_of(e.doc, None)["model"]
    return {"id": e.id, "model": model.get("name"), "synthetic": bool(model.get("synthetic")),
            "started_at": e.doc.get("started_at") or "",
            "tg": fig(pooled([e], "tg")), "pp": fig(pooled([e], "pp")),
            "backend": env.get("backend"), "os": os_name(env),
            "memory": fmt_bytes(env.get("memory_bytes"))}


def result_page(e: Entry) -> dict[str, Any]:
    doc, env = e.doc, e.doc["environment"]
    model = case_of(doc, None)["model"]
    community = doc.get("community") if isinstance(doc.get("community"), dict) else {}
    return {
        "id": e.id, "chip": e.chip, "chip_name": chip_name(e.chip, doc),
        "model": model.get("name"), "synthetic": bool(model.get("synthetic")),
        "suite": doc["suite"]["name"], "notes": community.get("notes") or "",
        "cases": [_case_row(c) for c in doc["cases"]],
        "environment": _env_facts(doc, env), "model_facts": _model_facts(model),
        "warnings": [f"{c['test']}: {w}" for c in doc["cases"] for w in c.get("warnings") or []],
    }


def _case_row(c: dict[str, Any]) -> dict[str, Any]:
    s, p = c["summary"], c.get("placement") or {}
    engine = c.get("engine") or {}
    buffers = p.get("buffers") or []

    def buf(kind: str) -> str:
        sizes = [b["mib"] for b in buffers if b.get("kind") == kind and b.get("mib") is not None]
        return fmt_mib(sum(sizes)) if sizes else "—"

    return {
        "test": c["test"], "n": s.get("n"), "warmup": c.get("warmup", "—"),
        "median": tps(s.get("tps_median")), "mean": tps(s.get("tps_mean")),
        "stdev": tps(s.get("tps_stdev")), "cv": pct(s.get("tps_cv")),
        "ci": f"{tps(s.get('tps_ci95_low'))} – {tps(s.get('tps_ci95_high'))}",
        "min": tps(s.get("tps_min")), "max": tps(s.get("tps_max")),
        "iteration_values": ", ".join(tps(it["tps"]) for it in c["iterations"]),
        "layers": (f"{p.get('layers_offloaded')}/{p.get('layers_total')}"
                   if p.get("layers_total") is not None else "—"),
        "devices": ", ".join(map(str, p.get("devices") or [])) or "—",
        "model_mib": buf("model"), "kv_mib": buf("kv"), "compute_mib": buf("compute"),
        "flash_attn": {True: "on", False: "off"}.get(p.get("flash_attn"), "—"),
        "engine": " ".join(f"{k}={engine[k]}" for k in sorted(engine)),
    }


def _env_facts(doc: dict[str, Any], env: dict[str, Any]) -> list[tuple[str, str]]:
    chip, cpu = env.get("chip") or {}, env.get("cpu") or {}
    gpus = "; ".join(f"{g.get('name')} ({fmt_bytes(g.get('memory_bytes'))})"
                     for g in env.get("gpus") or []) or "none"
    versions = env.get("versions") or {}
    return [
        ("chip", f"{chip.get('name') or '?'} ({chip.get('kind')})"
                 + (f", {chip['gpu_cores']} GPU cores" if chip.get("gpu_cores") else "")),
        ("GPUs", gpus),
        ("backend", str(env.get("backend"))),
        ("CPU", f"{cpu.get('model') or '?'}, {cpu.get('cores_physical') or '?'} physical / "
                f"{cpu.get('cores_logical') or '?'} logical cores, {cpu.get('arch') or '?'}"),
        ("memory", fmt_bytes(env.get("memory_bytes"))),
        ("OS", os_name(env)),
        ("llama.cpp system info", str(env.get("llama_cpp_system_info") or "—")),
        ("versions", f"benchkit {versions.get('benchkit')}, llama-cpp-python "
                     f"{versions.get('llama_cpp_python')}, Python {env.get('python') or '?'}"),
        ("measured", f"{doc.get('started_at')} to {doc.get('finished_at') or '?'}"),
        ("command", " ".join(map(str, doc.get("command") or [])) or "—"),
    ]


def _model_facts(model: dict[str, Any]) -> list[tuple[str, str]]:
    source = model.get("source") or {}
    return [
        ("file", str(model.get("name"))),
        ("source", ", ".join(f"{k}: {v}" for k, v in sorted(source.items())) or "—"),
        ("size", f"{model.get('size_bytes'):,} bytes ({fmt_bytes(model.get('size_bytes'))})"
                 if model.get("size_bytes") else "—"),
        ("sha256", str(model.get("sha256") or "—")),
        ("architecture", str(model.get("architecture") or "—")),
        ("parameters", f"{model['n_params']:,}" if model.get("n_params") else "—"),
        ("quantization", str(model.get("quantization") or "—")),
        ("layers", str(model.get("n_layers") or "—")),
        ("synthetic", "yes: a shape-exact stand-in with random weights"
                      + (f" for {model['standin_for']}" if model.get("standin_for") else "")
         if model.get("synthetic") else "no"),
    ]

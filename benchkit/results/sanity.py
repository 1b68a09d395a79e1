"""Plausibility of the figures in a result document: what the JSON Schema cannot say.

The schema says that `tps` is a number; it does not say that -5 tok/s, 10^30 tok/s or an
iteration of 10^12 seconds are not measurements. Every reader (report, compare, project,
validate, site, `load_results`) gets documents through `result.read_result`, which calls
`check_figures`, so a hand-edited or corrupted file is refused in one line naming the
field, rather than drawn in a chart or crashing a formatter three modules later.

The bounds are generous on purpose: they refuse what no hardware can do (the fastest
prompt processing ever published is in the hundreds of thousands of tok/s; 10^8 is
beyond any of it), never a fast machine. Whether a figure fits the chip that made it is
the community check's job (benchkit.community.validate: memory bandwidth per chip).

Checks run on any JSON value (not only schema-valid documents: `validate` reads with the
schema check deferred), so every step looks at types before it looks at values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

from benchkit.core.errors import BenchkitError

MAX_TPS = 1e8                    # tok/s: two orders of magnitude beyond any published figure
MAX_SECONDS = 1e6                # one iteration or one load: 11.6 days
MAX_COUNT = 2**31 - 1            # tokens, layers, cores: llama.cpp keeps them in C ints
MAX_BYTES = 2**53                # memory and file sizes: 9 PB
MAX_PARAMS = 1e15                # parameters: a thousand times the largest published model
MAX_MIB = MAX_BYTES / 2**20
MAX_CV = 1e3                     # a coefficient of variation (stdev / mean)


@dataclass(frozen=True)
class Bound:
    """What a figure may be: its unit (for the message), whether it must be whole, and
    its range."""

    unit: str
    high: float
    integer: bool = False
    low: float = 0.0


TPS = Bound("tok/s", MAX_TPS)
SIGNED_TPS = Bound("tok/s", MAX_TPS, low=-MAX_TPS)   # a CI bound below 0 is legitimate
SECONDS = Bound("s", MAX_SECONDS)
COUNT = Bound("", MAX_COUNT, integer=True)
BYTES = Bound("bytes", MAX_BYTES, integer=True)
PARAMS = Bound("parameters", MAX_PARAMS, integer=True)
MIB = Bound("MiB", MAX_MIB)
RATIO = Bound("", MAX_CV)

ITERATION = {
    "tokens": COUNT, "seconds": SECONDS, "tps": TPS, "ttft_s": SECONDS, "total_s": SECONDS,
    "decode_tps": TPS, "n_prompt": COUNT, "n_generated": COUNT,
    "client_seconds": SECONDS, "client_tps": TPS, "server_seconds": SECONDS,
    "server_tps": TPS,
    # a serve request's counts and times, as the server reported them
    # (benchkit.workloads.serve.workload.iteration_of)
    "tokens_in": COUNT, "cache_n": COUNT, "prompt_n": COUNT, "draft_n": COUNT,
    "draft_accepted": COUNT, "reasoning_tokens": COUNT, "retries": COUNT,
    "ttft_answer_s": SECONDS, "level_s": SECONDS, "think_s": SECONDS,
}
SUMMARY = {
    "n": COUNT, "tps_mean": TPS, "tps_median": TPS, "tps_stdev": TPS, "tps_min": TPS,
    "tps_max": TPS, "tps_cv": RATIO, "tps_ci95_low": SIGNED_TPS, "tps_ci95_high": TPS,
    "ttft_median_s": SECONDS, "ttft_mean_s": SECONDS, "total_median_s": SECONDS,
    "token_latency_median_s": SECONDS,
}
# the ppl workload's summary (benchkit.workloads.ppl.workload, benchkit.workloads.ppl.metrics): what the report's
# quality section formats
_BIG = Bound("", 1e30)
_SIGNED = Bound("", 1e30, low=-1e30)
QUALITY = {
    **{k: _BIG for k in ("ppl", "ppl_stderr", "kld_mean", "kld_stderr", "same_top_p",
                         "same_top_p_stderr", "dp_rms", "dp_rms_stderr", "dp_stderr",
                         "dp_max_abs", "ppl_base", "ppl_base_stderr", "ppl_ratio",
                         "ppl_ratio_stderr", "ppl_kld_pass", "ppl_kld_pass_stderr",
                         "ln_ppl_ratio_stderr")},
    **{k: _SIGNED for k in ("dp_mean", "ln_ppl_ratio", "ln_ppl_correlation")},
    **{k: COUNT for k in ("n_ctx", "chunks", "tokens_scored", "tokens_evaluated",
                          "kld_tokens")},
}
QUALITY_TYPES = {"text": str, "text_sha256": str, "kld_percentiles": dict,
                 "dp_percentiles": dict, "reference": dict}
# a serve level's summary and requests (benchkit.workloads.serve): what the report's serve
# section, compare and the frame's serve_ columns compute with
RPS = Bound("requests/s", 1e9)
FRACTION = Bound("", MAX_CV)        # shares of 0..1, bounded loosely: a server reports some
SERVER_COUNT = Bound("", 1e15)      # a server's own Prometheus counters (floats)
SERVE = {
    **{k: COUNT for k in ("concurrency", "requests", "requests_ok", "output_tokens",
                          "input_tokens", "slo_met", "sessions", "search_levels",
                          "requests_first_turn", "requests_later_turns",
                          "cache_reported_requests", "cached_prompt_tokens",
                          "computed_prompt_tokens", "draft_tokens", "draft_accepted_tokens",
                          "prompt_seed")},
    **{k: SECONDS for k in ("level_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s",
                            "tpot_p50_s", "tpot_p99_s", "itl_p50_s", "itl_p99_s",
                            "e2e_p50_s", "e2e_p99_s", "ttft_p50_first_turn_s",
                            "ttft_p50_later_turns_s", "ttft_p99_first_turn_s",
                            "ttft_p99_later_turns_s")},
    **{k: FRACTION for k in ("error_rate", "cache_hit_rate", "cache_hit_rate_first_turn",
                             "cache_hit_rate_later_turns", "draft_acceptance")},
    **{k: SERVER_COUNT for k in ("server_cached_prompt_tokens",
                                 "server_draft_accepted_tokens", "server_draft_tokens",
                                 "server_generated_tokens", "server_prompt_tokens",
                                 "server_requests_deferred", "server_requests_running")},
    **{k: COUNT for k in ("bound_requests", "server_samples")},
    **{k: SECONDS for k in ("bound_duration_s", "server_sample_period_s")},
    **{k: SERVER_COUNT for k in ("server_kv_cache_usage_max", "server_kv_cache_usage_mean",
                                 "server_requests_deferred_max",
                                 "server_requests_deferred_mean",
                                 "server_requests_running_max",
                                 "server_requests_running_mean", "speculative_speedup")},
    "rate": RPS, "requests_per_s": RPS, "goodput_rps": RPS, "slo_max_load": RPS,
    "output_tps": TPS, "input_tps": TPS,
}
SLO = {"ttft_ms": Bound("ms", MAX_SECONDS * 1e3), "tpot_ms": Bound("ms", MAX_SECONDS * 1e3),
       "error_rate": FRACTION}
SERVE_TYPES = {"errors": dict, "slo": dict, "search": list, "search_slo": dict, "cache": str,
               "search_over": str, "slo_max_load_note": str, "ended_by": str,
               "server_kv_cache_source": str, "speculative_baseline": dict,
               "speculative_baseline_note": str}
# a serve figure this table does not list yet is still named with its unit (frame.py)
SERVE_SUFFIXES = {"_s": SECONDS, "_tps": TPS, "_rps": RPS}
SERVE_REQUEST = {
    **{k: COUNT for k in ("tokens_in", "prompt_n", "cache_n", "draft_n", "draft_accepted",
                          "retries", "request", "session", "turn", "prompt_seed")},
    **{k: SECONDS for k in ("start_s", "level_s", "think_s", "ttft_answer_s", "scheduled_s")},
    "load": RPS,
}
MODEL = {"size_bytes": BYTES, "n_params": PARAMS, "n_layers": COUNT}
LOAD = {"seconds": SECONDS, "rss_after_load_bytes": BYTES, "peak_rss_bytes": BYTES}
PLACEMENT = {"layers_offloaded": COUNT, "layers_total": COUNT, "n_ctx": COUNT}
WORKLOAD = {"n_prompt": COUNT, "n_gen": COUNT, "depth": COUNT,
            # a serve level's settings, as the report's serve section prints them
            "concurrency": COUNT, "rate": RPS, "requests": COUNT,
            "duration_s": SECONDS, "timeout_s": SECONDS, "stall_timeout_s": SECONDS,
            "temperature": Bound("", 1e3), "seed": COUNT}
ENVIRONMENT = {"memory_bytes": BYTES}
# case.telemetry, as benchkit.run.telemetry writes it and its report section reads it
TELEMETRY = {"interval_s": SECONDS, "window_s": SECONDS, "seconds": SECONDS,
             "samples": COUNT, "tokens": COUNT}
PERCENT = Bound("%", 1e6)
ENERGY = {"energy_j": Bound("J", 1e15), "power_w_mean": Bound("W", 1e7),
          "joules_per_token": Bound("J", 1e15), "tokens_per_joule": Bound("tokens/J", 1e15)}
TELEMETRY_BLOCKS = {
    "cpu": {"cpu_seconds": SECONDS, "wall_seconds": SECONDS, "percent": PERCENT,
            "logical_cores": COUNT},
    "memory": {"rss_start_bytes": BYTES, "rss_end_bytes": BYTES, "peak_rss_bytes": BYTES,
               "peak_tree_rss_bytes": BYTES, "children": COUNT},
    "nvidia": ENERGY, "rapl": ENERGY, "powermetrics": ENERGY,
}
GPU_MEMORY = {"peak_bytes": BYTES, "delta_bytes": Bound("bytes", MAX_BYTES, True, -MAX_BYTES)}
DEVICE_STATS = {"util_percent": PERCENT, "sm_clock_busy_mhz": Bound("MHz", 1e6),
                "temperature_c": Bound("°C", 1e4, low=-300)}
CPU = {"cores_physical": COUNT, "cores_logical": COUNT}

# Containers the readers iterate: where present and not null, each must be this type.
TOP_TYPES = {"environment": dict, "suite": dict, "cases": list, "command": list}
CASE_TYPES = {"model": dict, "engine": dict, "workload": dict, "summary": dict,
              "iterations": list, "warnings": list, "load": dict, "placement": dict,
              "engine_info": dict, "telemetry": dict}
PLACEMENT_TYPES = {"buffers": list, "devices": list, "log": list, "per_device": list}
TELEMETRY_TYPES = {key: dict for key in ("sampler", "memory", "cpu", "nvidia", "rapl",
                                         "powermetrics")}


def check_figures(doc: Any, file: str | None = None) -> None:
    """Refuse a negative, absurd or mistyped figure anywhere a reader looks for one."""
    for field, value, bound in _figures(doc):
        problem = judge(value, bound)
        if problem:
            raise BenchkitError(problem, file=file, field=field)
    for field, value, expected, nullable in _containers(doc):
        if not (value is None and nullable) and not isinstance(value, expected):
            raise BenchkitError(f"must be {_article(expected)}, not {_json_type(value)}",
                                file=file, field=field)
    for field, message in _missing_figures(doc):
        raise BenchkitError(message, file=file, field=field)
    for field, message in _timeless_iterations(doc):
        raise BenchkitError(message, file=file, field=field)


def _timeless_iterations(doc: Any) -> Iterator[tuple[str, str]]:
    """An iteration that made tokens in no time at all: a clock that did not run (a
    server's timings of 0 ms) is no measurement, and its tok/s would read 0."""
    if not isinstance(doc, dict):
        return
    for i, case in _items(doc.get("cases")):
        for j, it in _items(case.get("iterations") if isinstance(case, dict) else None):
            if not isinstance(it, dict):
                continue
            tokens, seconds = it.get("tokens"), it.get("seconds")
            if _number(tokens) and _number(seconds) and tokens > 0 and seconds == 0:
                yield (f"cases.{i}.iterations.{j}.seconds",
                       f"0 s for {tokens} tokens is not a measurement (a clock that did "
                       "not run)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _missing_figures(doc: Any) -> Iterator[tuple[str, str]]:
    """Figures that must be there: a summary of n iterations has its mean, median, min
    and max (and a stdev from two on), as `result.summarize` writes them; a buffer has
    its size."""
    if not isinstance(doc, dict):
        return
    for i, case in _items(doc.get("cases")):
        if not isinstance(case, dict):
            continue
        summary = case.get("summary")
        n = summary.get("n") if isinstance(summary, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
            needed = ("tps_mean", "tps_median", "tps_min", "tps_max") + (
                ("tps_stdev",) if n >= 2 else ())
            for key in needed:
                if summary.get(key) is None:
                    yield (f"cases.{i}.summary.{key}",
                           f"missing: a summary of {n} iterations has its {key}")
            yield from _order(summary, f"cases.{i}.summary")
        placement = case.get("placement")
        if isinstance(placement, dict):
            for j, buf in _items(placement.get("buffers")):
                if isinstance(buf, dict) and buf.get("mib") is None:
                    yield (f"cases.{i}.placement.buffers.{j}.mib",
                           "missing: a buffer has its size in MiB")
        yield from _missing_device_figures(case.get("telemetry"), f"cases.{i}.telemetry")


def _missing_device_figures(tel: Any, where: str) -> Iterator[tuple[str, str]]:
    """A GPU in the telemetry has its index, and each statistic its min, max and mean."""
    nvidia = tel.get("nvidia") if isinstance(tel, dict) else None
    for j, device in _items(nvidia.get("devices") if isinstance(nvidia, dict) else None):
        if not isinstance(device, dict):
            continue
        here = f"{where}.nvidia.devices.{j}"
        if device.get("index") is None:
            yield f"{here}.index", "missing: a GPU's telemetry names its index"
        for key in DEVICE_STATS:
            stats = device.get(key)
            for part in ("min", "max", "mean"):
                if isinstance(stats, dict) and stats.get(part) is None:
                    yield f"{here}.{key}.{part}", f"missing: a statistic has its {part}"


def _by_suffix(summary: Any) -> dict[str, Bound]:
    """Bounds of a summary's other figures, from the unit their name ends with."""
    if not isinstance(summary, dict):
        return {}
    return {key: bound for key in summary if key not in SERVE and key not in SUMMARY
            for suffix, bound in SERVE_SUFFIXES.items() if key.endswith(suffix)}


def judge(value: Any, bound: Bound) -> str | None:
    """Why `value` is not a plausible figure of this kind, or None when it is."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, not {_json_type(value)}"
    unit = f" {bound.unit}" if bound.unit else ""
    try:
        x = float(value)
    except OverflowError:              # an integer beyond a double
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits:,} digits is not a plausible figure"
    if not math.isfinite(x):
        return f"{value!r} is not a finite number"
    if bound.integer and not x.is_integer():
        return f"{value!r} must be a whole number"
    if x < bound.low:
        return (f"{_shown(value)}{unit} is negative: no measurement gives that"
                if bound.low == 0 else f"{_shown(value)}{unit} is below {bound.low:,.0f}")
    if x > bound.high:
        return (f"{_shown(value) if abs(x) >= 1e15 else f'{value:,}'}{unit} is not a "
                f"plausible figure (above {bound.high:,.0f})")
    return None


def _shown(value: float | int) -> str:
    """A figure in a message: as written, or in scientific notation past 10^15 (a
    server's 10^300 would fill the line)."""
    return f"{float(value):.3g}" if abs(value) >= 1e15 else repr(value)


def _figures(doc: Any) -> Iterator[tuple[str, Any, Bound]]:
    """(field, value, bound) for every figure of the document, in file order."""
    if not isinstance(doc, dict):
        return
    env = doc.get("environment")
    if isinstance(env, dict):
        yield from _fields(env, ENVIRONMENT, "environment")
        yield from _fields(env.get("cpu"), CPU, "environment.cpu")
        chip = env.get("chip")
        if isinstance(chip, dict) and "gpu_cores" in chip:
            yield "environment.chip.gpu_cores", chip["gpu_cores"], COUNT
        for i, gpu in _items(env.get("gpus")):
            yield from _fields(gpu, {"memory_bytes": BYTES}, f"environment.gpus.{i}")
    for i, case in _items(doc.get("cases")):
        yield from _case_figures(case, f"cases.{i}")


def _case_figures(case: Any, where: str) -> Iterator[tuple[str, Any, Bound]]:
    if not isinstance(case, dict):
        return
    if "warmup" in case and case["warmup"] != "auto":     # auto: warm until stable
        yield f"{where}.warmup", case["warmup"], COUNT
    if "warmup_used" in case:
        yield f"{where}.warmup_used", case["warmup_used"], COUNT
    yield from _fields(case.get("model"), MODEL, f"{where}.model")
    workload = case.get("workload")
    yield from _fields(workload, WORKLOAD, f"{where}.workload")
    if isinstance(workload, dict):
        yield from _fields(workload.get("slo"), SLO, f"{where}.workload.slo")
    yield from _fields(case.get("load"), LOAD, f"{where}.load")
    placement = case.get("placement")
    yield from _fields(placement, PLACEMENT, f"{where}.placement")
    if isinstance(placement, dict):
        for j, buf in _items(placement.get("buffers")):
            yield from _fields(buf, {"mib": MIB}, f"{where}.placement.buffers.{j}")
    for j, it in _items(case.get("iterations")):
        here = f"{where}.iterations.{j}"
        yield from _fields(it, {**ITERATION, **SERVE_REQUEST}, here)
        if isinstance(it, dict):
            latencies = it.get("token_latencies_s")
            for k, value in _items(latencies):
                yield f"{here}.token_latencies_s.{k}", value, SECONDS
    summary = case.get("summary")
    yield from _fields(summary, {**SUMMARY, **QUALITY, **SERVE, **_by_suffix(summary)},
                       f"{where}.summary")
    if isinstance(summary, dict):
        errors, slo = summary.get("errors"), summary.get("slo")
        if isinstance(errors, dict):
            yield from _fields(errors, dict.fromkeys(errors, COUNT), f"{where}.summary.errors")
        yield from _fields(slo, SLO, f"{where}.summary.slo")
    for key in ("kld_percentiles", "dp_percentiles"):
        block = summary.get(key) if isinstance(summary, dict) else None
        if isinstance(block, dict):
            yield from _fields(block, dict.fromkeys(block, _SIGNED), f"{where}.summary.{key}")
    yield from _telemetry_figures(case.get("telemetry"), f"{where}.telemetry")


def _telemetry_figures(tel: Any, where: str) -> Iterator[tuple[str, Any, Bound]]:
    if not isinstance(tel, dict):
        return
    yield from _fields(tel, TELEMETRY, where)
    for block, spec in TELEMETRY_BLOCKS.items():
        yield from _fields(tel.get(block), spec, f"{where}.{block}")
    memory = tel.get("memory")
    if isinstance(memory, dict):
        yield from _fields(memory.get("gpu"), GPU_MEMORY, f"{where}.memory.gpu")
    nvidia = tel.get("nvidia")
    for j, device in _items(nvidia.get("devices") if isinstance(nvidia, dict) else None):
        here = f"{where}.nvidia.devices.{j}"
        yield from _fields(device, {"index": COUNT, "samples": COUNT}, here)
        for key, bound in DEVICE_STATS.items():
            stats = device.get(key) if isinstance(device, dict) else None
            yield from _fields(stats, {"min": bound, "max": bound, "mean": bound},
                               f"{here}.{key}")
        reasons = device.get("clock_event_reasons") if isinstance(device, dict) else None
        if isinstance(reasons, dict):
            yield from _fields(reasons, dict.fromkeys(reasons, COUNT),
                               f"{here}.clock_event_reasons")


def _order(summary: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    """min <= median, mean <= max: a summary out of order was not computed, it was typed."""
    low, high = summary.get("tps_min"), summary.get("tps_max")
    if not all(isinstance(v, (int, float)) for v in (low, high)):
        return
    for key in ("tps_median", "tps_mean"):
        value = summary.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                low * (1 - 1e-9) <= value <= high * (1 + 1e-9)):
            yield (f"{where}.{key}", f"{value!r} lies outside the summary's own range "
                   f"(tps_min {low!r} to tps_max {high!r})")


def _containers(doc: Any) -> Iterator[tuple[str, Any, type, bool]]:
    """(field, value, expected type, whether null is allowed): objects where present may
    be null; items of a list never are."""
    if not isinstance(doc, dict):
        return
    for key, expected in TOP_TYPES.items():
        if key in doc:
            yield key, doc[key], expected, key == "command"
    for i, case in _items(doc.get("cases")):
        yield f"cases.{i}", case, dict, False
        if not isinstance(case, dict):
            continue
        for key, expected in CASE_TYPES.items():
            if key in case:
                yield f"cases.{i}.{key}", case[key], expected, True
        telemetry = case.get("telemetry")
        if isinstance(telemetry, dict):
            yield from _telemetry_containers(telemetry, f"cases.{i}.telemetry")
        workload = case.get("workload")
        if isinstance(workload, dict):
            for key in ("slo", "sessions", "search"):
                if key in workload:
                    yield f"cases.{i}.workload.{key}", workload[key], dict, True
        summary = case.get("summary")
        if isinstance(summary, dict):
            for key, expected in {**QUALITY_TYPES, **SERVE_TYPES}.items():
                if key in summary:
                    yield f"cases.{i}.summary.{key}", summary[key], expected, True
            reference = summary.get("reference")
            if isinstance(reference, dict):
                for key in ("settings", "overrides"):
                    if key in reference:
                        yield (f"cases.{i}.summary.reference.{key}", reference[key], dict,
                               True)
        placement = case.get("placement")
        if isinstance(placement, dict):
            for key, expected in PLACEMENT_TYPES.items():
                if key in placement:
                    yield f"cases.{i}.placement.{key}", placement[key], expected, True
            for j, buf in _items(placement.get("buffers")):
                yield f"cases.{i}.placement.buffers.{j}", buf, dict, False
            for j, device in _items(placement.get("devices")):
                yield f"cases.{i}.placement.devices.{j}", device, str, False
            for j, entry in _items(placement.get("per_device")):
                yield f"cases.{i}.placement.per_device.{j}", entry, dict, False
                if isinstance(entry, dict):
                    for key in ("device", "kind"):
                        if key in entry:
                            yield (f"cases.{i}.placement.per_device.{j}.{key}", entry[key],
                                   str, True)
                    if "spread_over" in entry:
                        yield (f"cases.{i}.placement.per_device.{j}.spread_over",
                               entry["spread_over"], list, True)
        for j, it in _items(case.get("iterations")):
            yield f"cases.{i}.iterations.{j}", it, dict, False
            if isinstance(it, dict) and "token_latencies_s" in it:
                yield (f"cases.{i}.iterations.{j}.token_latencies_s", it["token_latencies_s"],
                       list, True)


def _telemetry_containers(tel: dict[str, Any],
                          where: str) -> Iterator[tuple[str, Any, type, bool]]:
    for key, expected in TELEMETRY_TYPES.items():
        if key in tel:
            yield f"{where}.{key}", tel[key], expected, True
    memory = tel.get("memory")
    if isinstance(memory, dict) and "gpu" in memory:
        yield f"{where}.memory.gpu", memory["gpu"], dict, True
    nvidia = tel.get("nvidia")
    if isinstance(nvidia, dict) and "devices" in nvidia:
        yield f"{where}.nvidia.devices", nvidia["devices"], list, True
        for j, device in _items(nvidia["devices"]):
            here = f"{where}.nvidia.devices.{j}"
            yield here, device, dict, False
            if isinstance(device, dict):
                for key in (*DEVICE_STATS, "clock_event_reasons", "power_w"):
                    if key in device:
                        yield f"{here}.{key}", device[key], dict, True


def _fields(obj: Any, spec: dict[str, Bound], where: str) -> Iterator[tuple[str, Any, Bound]]:
    if isinstance(obj, dict):
        for key, bound in spec.items():
            if key in obj:
                yield f"{where}.{key}", obj[key], bound


def _items(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list) else iter(())


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _article(t: type) -> str:
    return {dict: "an object", list: "a list", str: "text"}.get(t, t.__name__)

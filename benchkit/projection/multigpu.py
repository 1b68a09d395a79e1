"""Several GPUs in one machine: llama.cpp's split modes projected from one GPU's figures.

A machine is a list of chips (`2xrtx3090`, `rtx3090+rtx4090`, or a YAML file) and the
link between them (benchkit/data/links.yaml: PCIe generations and lanes, NVLink). What
one GPU does with a share of the model comes from a callable passed in (`PerChip`:
seconds per token for a chip running that share of the layers), so that the projection's
own per-chip function, or a measured figure, plugs in; this module adds what splitting
costs and checks that each device's part fits its memory. Per split mode (llama.cpp's
`--split-mode`, src/llama-model.cpp and src/llama-context.cpp at 0c1e570):

- none: the main GPU does everything.
- layer: consecutive layers per GPU, the shares cut by tensor_split (default: each
  device's memory, as llama.cpp's default split is each device's free memory) with
  llama.cpp's own rule, the output layer on the last GPU. A token crosses every GPU in
  turn: the per-device times add up, plus at each boundary the hidden state (n_embd F32
  values a token) over the link and a fixed cost (`layer_boundary_us`). A prompt of
  several ubatches is pipelined (llama.cpp's pipeline parallelism): the first ubatch
  crosses all the GPUs, each later one adds the slowest GPU's stage.
- row: every matrix product split by rows across the GPUs, computed in parallel: the
  slowest device's share, plus per layer its 7 matrix products each scattering the input
  and gathering the output rows over the link (`row_sync_us` each, and the widths' bytes).
- tensor: llama.cpp's tensor parallelism: the same parallel work, plus two all-reduces of
  the hidden state a layer (`tensor_sync_us` each, ring traffic 2(k-1)/k of the bytes).

Memory: under layer split a GPU holds its layers' weights and KV cache (the output layer
on the last), under row split the matrices' rows by tensor_split and the KV cache on the
main GPU, under tensor split both by tensor_split; every GPU holds a compute buffer.

`project_multi` is a pure function of its arguments. `machine_projection` builds them
from benchkit's projection (a measurement, a model shape) for `benchkit project
--machine`; `validate_published` checks the model on the published multi-GPU series
(benchkit/data/multigpu_published.yaml), fitted on one chip's rows and checked on another's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from benchkit.core.errors import BenchkitError
from benchkit.projection.chips import Chip, get_chip, load_chips

LINKS_FILE = "benchkit/data/links.yaml"
PUBLISHED_FILE = "benchkit/data/multigpu_published.yaml"
MODES = ("none", "layer", "row", "tensor")
MAX_DEVICES = 16               # llama_max_devices()
ACT_BYTES = 4                  # the hidden state crosses devices as F32
MATMULS_PER_LAYER = 7          # q, k, v, o, gate, up, down: what row split splits
GB = 1e9
UNBOUNDED_GB = 1e9             # a chip's memory when only its time is asked of the projection

PerChip = Callable[[Chip, float], "float | None"]


@dataclass(frozen=True)
class Link:
    """An interconnect: its bandwidth in one direction (GB/s) and where that comes from."""

    id: str
    name: str
    gbs: float
    source: str


@dataclass(frozen=True)
class Overheads:
    """What a split costs beyond its bytes, in microseconds (links.yaml `overheads`)."""

    layer_boundary_us: float
    row_sync_us: float
    tensor_sync_us: float


@dataclass(frozen=True)
class Links:
    links: Mapping[str, Link]
    default: str
    overheads: Overheads


@dataclass(frozen=True)
class Device:
    """One GPU of a machine: its chip, its memory as sold, and how much of it the model
    may fill (None: not checked)."""

    chip: Chip
    memory_gb: float
    usable_gb: float | None = None


@dataclass(frozen=True)
class Machine:
    devices: tuple[Device, ...]
    link: Link
    tensor_split: tuple[float, ...] | None = None
    main_gpu: int = 0

    @property
    def label(self) -> str:
        """"2x rtx3090 over PCIe 4.0 x16", "rtx3090 + rtx4090 over ..."."""
        ids = [d.chip.id for d in self.devices]
        chips = f"{len(ids)}x {ids[0]}" if len(set(ids)) == 1 else " + ".join(ids)
        return f"{chips} over {self.link.name}"


@dataclass(frozen=True)
class ModelLoad:
    """What the model asks of the machine: layers, widths and memory (GB, 10^9 bytes).

    `layer_dims` is the sum of the input and output widths of one layer's matrix
    products (what row split moves a token); `output_gb` the output layer's weights,
    which layer split puts on the last GPU.
    """

    n_layers: int
    n_embd: int
    weights_gb: float
    kv_gb: float
    compute_gb: float
    layer_dims: float
    output_gb: float = 0.0
    name: str = "model"


def layer_dims_of(n_embd: int, matmul_params_per_layer: float) -> float:
    """A dense llama-style layer's input + output widths from its size: q, k, v, o, gate
    and up read n_embd, down reads n_ff; their outputs add up to n_embd + 2 n_kv + 2 n_ff
    + n_embd. With matmul params = 2 n_embd^2 + 2 n_embd n_kv + 3 n_embd n_ff this is
    7 n_embd + params / n_embd."""
    return 7 * n_embd + matmul_params_per_layer / n_embd


# --------------------------------------------------------------------------- data


def _read_yaml(path: str | Path | None, default: str) -> tuple[Any, str]:
    if path is None:
        text = resources.files("benchkit").joinpath(default.removeprefix("benchkit/")
                                                    ).read_text("utf-8")
        file = default
    else:
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchkitError(f"cannot read: {exc.strerror}", file=file) from None
    try:
        return yaml.safe_load(text), file
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BenchkitError("not valid YAML", file=file,
                            line=mark.line + 1 if mark else None) from None


def _positive(value: Any, file: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BenchkitError(f"must be a positive number, got {value!r}", file=file, field=field)
    return float(value)


@lru_cache(maxsize=4)
def load_links(path: str | None = None) -> Links:
    """The interconnects and overheads of links.yaml, checked field by field."""
    doc, file = _read_yaml(path, LINKS_FILE)
    if not isinstance(doc, dict) or not isinstance(doc.get("links"), list):
        raise BenchkitError("expected a mapping with a `links:` list", file=file, field="links")
    links: dict[str, Link] = {}
    for i, entry in enumerate(doc["links"]):
        where = f"links[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise BenchkitError("each link is a mapping with an id", file=file, field=where)
        for key in ("name", "source"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise BenchkitError("must be a non-empty string", file=file,
                                    field=f"{where}.{key}")
        links[entry["id"]] = Link(entry["id"], entry["name"],
                                  _positive(entry.get("gbs"), file, f"{where}.gbs"),
                                  entry["source"])
    default = doc.get("default_link")
    if default not in links:
        raise BenchkitError(f"must name a link, got {default!r}", file=file, field="default_link")
    over = doc.get("overheads") or {}
    values = {}
    for key in ("layer_boundary_us", "row_sync_us", "tensor_sync_us"):
        item = over.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        values[key] = _positive(value, file, f"overheads.{key}.value")
    return Links(links, default, Overheads(**values))


def get_link(link_id: str, links: Links | None = None, *, field: str = "link") -> Link:
    links = links or load_links()
    if link_id not in links.links:
        raise BenchkitError(f"unknown link {link_id!r} (known: {', '.join(links.links)})",
                            field=field)
    return links.links[link_id]


# --------------------------------------------------------------------------- machines


def parse_machine(spec: str, *, chips: Mapping[str, Chip] | None = None,
                  links: Links | None = None, field: str = "--machine") -> Machine:
    """A machine from `2xrtx3090`, `rtx3090+rtx4090`, either with `@LINK`
    (`2xrtx3090@nvlink3-ga102`), or a YAML file (see `machine_from_yaml`)."""
    links = links or load_links()
    if spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
        return machine_from_yaml(spec, chips=chips, links=links)
    body, _, link_id = spec.partition("@")
    devices: list[Device] = []
    for term in body.split("+"):
        count, _, chip_id = term.strip().partition("x") if _counted(term) else ("1", "", term)
        chip = get_chip(chip_id.strip(), chips, field=field)
        devices += [Device(chip, chip.memory_gb[-1])] * int(count)
    return _machine(devices, get_link(link_id or links.default, links, field=field), None, 0,
                    field=field)


def _counted(term: str) -> bool:
    """"2xrtx3090" is two of a chip; "rtx3090" (no leading count) one."""
    head, sep, _ = term.strip().partition("x")
    return bool(sep) and head.isdigit()


def machine_from_yaml(path: str, *, chips: Mapping[str, Chip] | None = None,
                      links: Links | None = None) -> Machine:
    """A machine file: `devices:` (chip ids, or {chip:, memory_gb:, count:}), and
    optionally `link:`, `tensor_split:` and `main_gpu:`. Errors name the file and field."""
    links = links or load_links()
    doc, file = _read_yaml(path, path)
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise BenchkitError("expected a mapping with a `devices:` list", file=file,
                            field="devices")
    devices: list[Device] = []
    for i, entry in enumerate(doc["devices"]):
        entry = {"chip": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("chip"), str):
            raise BenchkitError("a device is a chip id or a mapping with `chip:`", file=file,
                                field=f"devices[{i}]")
        try:
            chip = get_chip(entry["chip"], chips, field=f"devices[{i}].chip")
        except BenchkitError as exc:
            raise BenchkitError(exc.message, file=file, field=f"devices[{i}].chip") from None
        memory = entry.get("memory_gb", chip.memory_gb[-1])
        count = entry.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BenchkitError(f"must be a whole number >= 1, got {count!r}", file=file,
                                field=f"devices[{i}].count")
        devices += [Device(chip, _positive(memory, file, f"devices[{i}].memory_gb"))] * count
    link = doc.get("link", links.default)
    if link not in links.links:
        raise BenchkitError(f"unknown link {link!r} (known: {', '.join(links.links)})",
                            file=file, field="link")
    split = doc.get("tensor_split")
    if split is not None:
        if not isinstance(split, list) or not split:
            raise BenchkitError("must be a list of proportions, one per device", file=file,
                                field="tensor_split")
        split = tuple(_positive_or_zero(x, file, f"tensor_split[{j}]") for j, x in enumerate(split))
    main = doc.get("main_gpu", 0)
    if isinstance(main, bool) or not isinstance(main, int):
        raise BenchkitError(f"must be a device index, got {main!r}", file=file, field="main_gpu")
    return _machine(devices, links.links[link], split, main, field="main_gpu", file=file)


def _positive_or_zero(value: Any, file: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BenchkitError(f"must be a number >= 0, got {value!r}", file=file, field=field)
    return float(value)


def _machine(devices: list[Device], link: Link, split: tuple[float, ...] | None, main: int,
             *, field: str, file: str | None = None) -> Machine:
    if not 1 <= len(devices) <= MAX_DEVICES:
        raise BenchkitError(f"a machine has 1 to {MAX_DEVICES} GPUs (llama.cpp's limit), "
                            f"got {len(devices)}", file=file, field=field)
    if split is not None and (len(split) != len(devices) or not any(split)):
        raise BenchkitError(f"tensor_split needs {len(devices)} proportions, not all 0",
                            file=file, field="tensor_split")
    if not 0 <= main < len(devices):
        raise BenchkitError(f"main_gpu must be a device index below {len(devices)}, got {main}",
                            file=file, field=field if file is None else "main_gpu")
    return Machine(tuple(devices), link, split, main)


def split_of(machine: Machine) -> list[float]:
    """The proportions per device, summing to 1: tensor_split, else each device's memory
    (llama.cpp's default split is each device's free memory)."""
    raw = machine.tensor_split or tuple(d.memory_gb for d in machine.devices)
    total = sum(raw)
    return [x / total for x in raw]


def layer_counts(n_layers: int, split: Sequence[float]) -> tuple[list[int], int]:
    """Repeating layers per device and the device of the output layer, by llama.cpp's
    rule (llama-model.cpp load_tensors): layer il of n_layers + 1 goes to the first
    device whose cumulative split exceeds il / (n_layers + 1)."""
    cumulative, total = [], 0.0
    for x in split:
        total += x
        cumulative.append(total)
    cumulative = [c / total for c in cumulative]
    counts = [0] * len(split)

    def device(il: int) -> int:
        x = il / (n_layers + 1)
        return min(next((i for i, c in enumerate(cumulative) if c > x), len(split) - 1),
                   len(split) - 1)

    for il in range(n_layers):
        counts[device(il)] += 1
    return counts, device(n_layers)


# --------------------------------------------------------------------------- the projection


def project_multi(machine: Machine, model: ModelLoad, mode: str, decode: PerChip,
                  prompt: PerChip | None = None, *, n_prompt: int = 512, ubatch: int = 512,
                  overheads: Overheads | None = None) -> dict[str, Any]:
    """Decode and prompt tok/s of `model` on `machine` split by `mode`, each device's
    share, layers and memory, and the same on the main GPU alone.

    `decode(chip, share)` / `prompt(chip, share)`: seconds per token (per prompt token)
    for one GPU of that chip running that share of the layers (None: unknown).
    """
    if mode not in MODES:
        raise BenchkitError(f"unknown split mode {mode!r} (llama.cpp's: {', '.join(MODES)})",
                            field="split_mode")
    over = overheads or load_links().overheads
    shares, layers, out_dev = _shares(machine, model, mode)
    used = [i for i, s in enumerate(shares) if s > 0]
    rows = [_device_row(machine, model, mode, i, shares, layers, out_dev) for i in
            range(len(machine.devices))]
    t_dec = [decode(machine.devices[i].chip, shares[i]) if i in used else None
             for i in range(len(shares))]
    t_pp = [prompt(machine.devices[i].chip, shares[i]) if prompt and i in used else None
            for i in range(len(shares))]
    for i, row in enumerate(rows):
        row["decode_ms"] = None if t_dec[i] is None else t_dec[i] * 1e3
        row["prompt_ms_per_token"] = None if t_pp[i] is None else t_pp[i] * 1e3
    k = len(used)
    dec_link = _link_seconds(machine, model, mode, k, tokens=1, over=over)
    tg = _combine([t_dec[i] for i in used], mode, dec_link)
    pp, pipelined, pp_link = _prompt(machine, model, mode, [t_pp[i] for i in used], n_prompt,
                                     ubatch, over)
    main = machine.devices[machine.main_gpu]
    one = _one_gpu(main, model, decode, prompt)
    return {
        "machine": machine.label, "mode": mode, "link": machine.link.id,
        "link_name": machine.link.name, "link_gbs": machine.link.gbs, "model": model.name,
        "devices": rows, "gpus_used": k,
        "tg_tps": 1 / tg if tg else None, "pp_tps": n_prompt / pp if pp else None,
        "n_prompt": n_prompt, "ubatch": ubatch, "pipelined": pipelined,
        "link_ms_per_token": dec_link * 1e3, "prompt_link_ms": pp_link * 1e3,
        "fits": all(r["fits"] is not False for r in rows),
        "one_gpu": one,
        "tg_speedup": _ratio(1 / tg if tg else None, one["tg_tps"]),
        "pp_speedup": _ratio(n_prompt / pp if pp else None, one["pp_tps"]),
        "overheads_us": {"layer_boundary": over.layer_boundary_us, "row_sync": over.row_sync_us,
                         "tensor_sync": over.tensor_sync_us},
    }


def _shares(machine: Machine, model: ModelLoad, mode: str
            ) -> tuple[list[float], list[int] | None, int | None]:
    """Each device's share of the work, the layer counts (layer split) and the device of
    the output layer."""
    n = len(machine.devices)
    if mode == "none":
        return [1.0 if i == machine.main_gpu else 0.0 for i in range(n)], None, machine.main_gpu
    split = split_of(machine)
    if mode == "layer":
        counts, out_dev = layer_counts(model.n_layers, split)
        return [c / model.n_layers for c in counts], counts, out_dev
    return split, None, None


def _device_row(machine: Machine, model: ModelLoad, mode: str, i: int, shares: list[float],
                layers: list[int] | None, out_dev: int | None) -> dict[str, Any]:
    """What device i holds (GB) and whether it fits."""
    d, s = machine.devices[i], shares[i]
    body = model.weights_gb - model.output_gb
    if mode == "layer":
        weights = body * s + (model.output_gb if i == out_dev else 0.0)
        kv = model.kv_gb * s
    elif mode == "row":
        weights, kv = model.weights_gb * s, (model.kv_gb if i == machine.main_gpu else 0.0)
    else:                                   # none (s is 1 or 0), tensor
        weights, kv = model.weights_gb * s, model.kv_gb * s
    holds = s > 0 or (i == out_dev and mode == "layer")
    compute = model.compute_gb if holds else 0.0
    need = weights + kv + compute
    return {"index": i, "chip": d.chip.id, "name": d.chip.name, "memory_gb": d.memory_gb,
            "usable_gb": d.usable_gb, "share": s,
            "layers": layers[i] if layers is not None else None,
            "output_layer": i == out_dev if mode == "layer" else None,
            "weights_gb": weights, "kv_gb": kv, "compute_gb": compute, "need_gb": need,
            "fits": None if d.usable_gb is None or not holds else need <= d.usable_gb}


def _link_seconds(machine: Machine, model: ModelLoad, mode: str, k: int, *, tokens: int,
                  over: Overheads) -> float:
    """What splitting adds to one pass of `tokens` tokens through the model (s)."""
    if k <= 1 or mode == "none":
        return 0.0
    bw = machine.link.gbs * GB
    hidden = tokens * model.n_embd * ACT_BYTES
    if mode == "layer":
        return (k - 1) * (over.layer_boundary_us * 1e-6 + hidden / bw)
    if mode == "row":
        moved = tokens * model.layer_dims * ACT_BYTES * (k - 1) / k
        return model.n_layers * (2 * MATMULS_PER_LAYER * over.row_sync_us * 1e-6 + moved / bw)
    ring = 2 * hidden * 2 * (k - 1) / k            # two all-reduces a layer
    return model.n_layers * (2 * over.tensor_sync_us * 1e-6 + ring / bw)


def _combine(times: list[float | None], mode: str, link_s: float) -> float | None:
    """One pass: the devices one after another (layer, none) or side by side."""
    if not times or any(t is None for t in times):
        return None
    work = sum(times) if mode in ("layer", "none") else max(times)
    return work + link_s


def _prompt(machine: Machine, model: ModelLoad, mode: str, per_token: list[float | None],
            n_prompt: int, ubatch: int, over: Overheads) -> tuple[float | None, bool, float]:
    """Seconds for the whole prompt, whether its ubatches pipeline, and the link's part."""
    if not per_token or any(t is None for t in per_token):
        return None, False, 0.0
    n_ub = math.ceil(n_prompt / ubatch)
    tokens = min(ubatch, n_prompt)
    stages = [t * tokens for t in per_token]
    link = _link_seconds(machine, model, mode, len(stages), tokens=tokens, over=over)
    pipelined = mode == "layer" and len(stages) > 1 and n_ub > 1
    if pipelined:
        boundary = link / (len(stages) - 1)
        return (sum(stages) + link + (n_ub - 1) * (max(stages) + boundary), True,
                link + (n_ub - 1) * boundary)
    one = _combine(stages, mode, link)
    return n_ub * one, False, n_ub * link


def _one_gpu(main: Device, model: ModelLoad, decode: PerChip, prompt: PerChip | None
             ) -> dict[str, Any]:
    """The main GPU alone with the whole model: the figure each extra GPU is set against."""
    tg, pp = decode(main.chip, 1.0), prompt(main.chip, 1.0) if prompt else None
    need = model.weights_gb + model.kv_gb + model.compute_gb
    return {"chip": main.chip.id, "tg_tps": 1 / tg if tg else None,
            "pp_tps": 1 / pp if pp else None, "need_gb": need,
            "fits": None if main.usable_gb is None else need <= main.usable_gb}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


# --------------------------------------------------------------------------- validation


def load_published(path: str | None = None) -> list[dict[str, Any]]:
    """The published multi-GPU series (multigpu_published.yaml), checked enough to read."""
    doc, file = _read_yaml(path, PUBLISHED_FILE)
    series = doc.get("series") if isinstance(doc, dict) else None
    if not isinstance(series, list) or not series:
        raise BenchkitError("expected a `series:` list", file=file, field="series")
    for i, s in enumerate(series):
        for key in ("id", "source", "link", "models", "rows", "fit_on", "check_on"):
            if key not in (s if isinstance(s, dict) else {}):
                raise BenchkitError(f"missing {key}", file=file, field=f"series[{i}].{key}")
    return series


def published_cases(series: dict[str, Any]) -> list[dict[str, Any]]:
    """One case per chip, GPU count above one and model, with its one-GPU figures where
    the same source measured the model on one GPU of the chip."""
    tests = ("tg", "pp", "pp_pipelined")
    out = []
    for chip, by_count in series["rows"].items():
        single = by_count.get(1) or {}
        for count, models in by_count.items():
            if int(count) == 1:
                continue
            for model, figures in models.items():
                out.append({"chip": chip, "gpus": int(count), "model": model,
                            "measured": dict(zip(tests, figures)),
                            "single": dict(zip(tests, single[model])) if model in single
                            else None})
    return out


def fit_boundary(cases: list[dict[str, Any]], series: dict[str, Any]) -> float:
    """layer_boundary_us from decode: each case's time beyond its one-GPU time and the
    hidden state's bytes, per boundary; the median over the cases given (those with a
    one-GPU figure)."""
    link = get_link(series["link"])
    per = []
    for c in cases:
        if not c["single"]:
            continue
        n_embd = _preset(series["models"][c["model"]]["preset"]).n_embd
        extra = 1 / c["measured"]["tg"] - 1 / c["single"]["tg"]
        per.append((extra / (c["gpus"] - 1) - n_embd * ACT_BYTES / (link.gbs * GB)) * 1e6)
    if not per:
        raise BenchkitError("no case with a one-GPU figure to fit on", file=PUBLISHED_FILE)
    return statistics.median(per)


def validate_published(path: str | None = None, *, boundary_us: float | None = None
                       ) -> dict[str, Any]:
    """Project every published multi-GPU case from its one-GPU figure and score it.

    layer_boundary_us is fitted on the series' `fit_on` chip (unless given) and the
    errors are reported for the fit set and, apart, for the `check_on` chip. Cases of a
    model no single GPU held take their per-chip time from the one-GPU figure of the
    series' model of the same quantization scaled by file size (a bandwidth-only stand-in for the
    projection's per-chip function, said so in the case's `per_chip`).
    """
    out: dict[str, Any] = {"series": [], "cases": []}
    for series in load_published(path):
        cases = published_cases(series)
        fit_set = [c for c in cases if c["chip"] == series["fit_on"]]
        b = boundary_us if boundary_us is not None else fit_boundary(fit_set, series)
        base = load_links().overheads
        over = Overheads(b, base.row_sync_us, base.tensor_sync_us)
        out["series"].append({"id": series["id"], "source": series["source"],
                              "fit_on": series["fit_on"], "check_on": series["check_on"],
                              "layer_boundary_us": b})
        for c in cases:
            role = "fit" if c["chip"] == series["fit_on"] else (
                "check" if c["chip"] == series["check_on"] else "other")
            out["cases"].append({**c, "series": series["id"], "role": role,
                                 **_project_case(c, series, over)})
    out["summary"] = _summary(out["cases"])
    return out


def _project_case(c: dict[str, Any], series: dict[str, Any], over: Overheads) -> dict[str, Any]:
    chip = get_chip(c["chip"])
    model = series["models"][c["model"]]
    preset = _preset(model["preset"])
    single, per_chip = c["single"], "the same model on one GPU (same source)"
    if single is None:
        small = _stand_in(series, c["chip"], model)
        ratio = model["size_gb"] / series["models"][small]["size_gb"]
        single = {t: v / ratio for t, v in zip(("tg", "pp", "pp_pipelined"),
                                               series["rows"][c["chip"]][1][small])}
        per_chip = f"{small} on one GPU x file size ratio {ratio:.2f} (bandwidth only)"
    load = ModelLoad(preset.n_layers, preset.n_embd, model["size_gb"], 0.0, 0.0,
                     layer_dims_of(preset.n_embd, model["size_gb"] * GB / preset.n_layers),
                     name=c["model"])
    machine = Machine(tuple(Device(chip, chip.memory_gb[-1]) for _ in range(c["gpus"])),
                      get_link(series["link"]))
    projected = {}
    for test, n_prompt in (("tg", 1), ("pp", 512), ("pp_pipelined", 1024)):
        rate = single[test]
        r = project_multi(machine, load, series.get("split_mode", "layer"),
                          lambda _c, s, rate=rate: s / rate, lambda _c, s, rate=rate: s / rate,
                          n_prompt=max(n_prompt, 1), ubatch=512, overheads=over)
        projected[test] = r["tg_tps"] if test == "tg" else r["pp_tps"]
    errors = {t: projected[t] / c["measured"][t] - 1 for t in projected}
    return {"projected": projected, "errors": errors, "per_chip": per_chip}


def _stand_in(series: dict[str, Any], chip: str, model: dict[str, Any]) -> str:
    """The model one GPU of `chip` measured that is nearest `model`: same quantization,
    largest file."""
    measured = series["rows"][chip].get(1) or {}
    same = [k for k in measured if series["models"][k]["quant"] == model["quant"]]
    pool = same or list(measured)
    if not pool:
        raise BenchkitError(f"no one-GPU figure of {chip} to scale from", file=PUBLISHED_FILE,
                            field=f"rows.{chip}.1")
    return max(pool, key=lambda k: series["models"][k]["size_gb"])


def _summary(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean absolute error per role, per-chip source and test."""
    groups: dict[tuple[str, bool, str], list[float]] = {}
    for c in cases:
        same = c["single"] is not None
        for test, err in c["errors"].items():
            groups.setdefault((c["role"], same, test), []).append(abs(err))
    return [{"role": role, "per_chip": "same model, one GPU" if same else "size-scaled",
             "test": test, "n": len(errs), "mape": sum(errs) / len(errs)}
            for (role, same, test), errs in sorted(groups.items())]


def _preset(key: str) -> Any:
    from benchkit.models.presets import get_preset

    return get_preset(key, file=PUBLISHED_FILE, field="preset")


# --------------------------------------------------------------------------- from benchkit's projection


def machine_projection(spec: str, mode: str, measurements: Sequence[Any], *,
                       shape: Any = None, depth: int = 0, method: str = "roofline"
                       ) -> dict[str, Any]:
    """`benchkit project --machine`: the machine of `spec`, the per-chip times from
    benchkit's single-chip projection (`projection.api.project`) of the anchor onto each
    chip for a model of that share of the layers, the memory from its model shape."""
    from benchkit.projection.api import project
    from benchkit.projection.physics import memory_breakdown, usable_memory_gb
    from benchkit.projection.priors import load_priors
    from benchkit.projection.shapes import guess_shape

    priors = load_priors()
    anchor = measurements[0]
    shape = shape or anchor.shape or guess_shape(anchor.n_params, anchor.model_bytes,
                                                 anchor.n_layers, anchor.quant, priors,
                                                 anchor.preset)
    machine = parse_machine(spec)
    machine = replace(machine, devices=tuple(
        replace(d, usable_gb=usable_memory_gb(d.chip, d.memory_gb, priors))
        for d in machine.devices))
    need = memory_breakdown(shape, priors, depth)
    extra = need["memory_needed_gb"] - need["weights_gb"] - need["kv_gb"]
    load = ModelLoad(shape.n_layers, shape.n_embd, need["weights_gb"], need["kv_gb"], extra,
                     layer_dims_of(shape.n_embd, shape.matmul_params / shape.n_layers),
                     output_gb=shape.embedding_bytes / GB, name=shape.source)
    figures = _per_chip_figures(project, measurements, shape, depth, method, mode)
    result = project_multi(machine, load, mode, lambda c, s: figures(c, s)[0],
                           lambda c, s: figures(c, s)[1], n_prompt=anchor.pp_tokens)
    result["per_chip"] = (f"benchkit's {method} projection of the anchor ({anchor.chip_id}) "
                          "onto each chip, for a model of that share of the layers")
    return result


def _per_chip_figures(project: Callable[..., list[dict[str, Any]]], measurements: Sequence[Any],
                      shape: Any, depth: int, method: str, mode: str
                      ) -> Callable[[Chip, float], tuple[float | None, float | None]]:
    """(decode s/token, prompt s/token) of a chip running `share` of the model, cached:
    the shape cut to that share of the layers (layer split) or of every matrix (row and
    tensor split keep every layer)."""
    cache: dict[tuple[str, float], tuple[float | None, float | None]] = {}

    def figures(chip: Chip, share: float) -> tuple[float | None, float | None]:
        key = (chip.id, round(share, 6))
        if key not in cache:
            layers = shape.n_layers if mode in ("row", "tensor") else max(
                1, round(shape.n_layers * share))
            part = share_of(shape, share, layers)
            # the time only: whether the part fits is project_multi's check, per device
            roomy = replace(chip, memory_gb=(UNBOUNDED_GB,))
            row = project(measurements, method=method, shape=part, chips=[roomy],
                          depth=depth)[0]
            # projected at every share, the whole model too: one source for all of them
            tg, pp = row["tg_tps"], row["pp_tps"]
            cache[key] = (1 / tg if tg else None, 1 / pp if pp else None)
        return cache[key]

    return figures


def share_of(shape: Any, share: float, n_layers: int) -> Any:
    """The model shape of `share` of a model's layers: its layers' weights scaled, the
    untied token embedding whole (llama.cpp looks it up on the CPU, so no GPU streams it
    and the shape subtracts it once from each part), the file's bytes per weight kept."""
    embedding = 0.0 if shape.tied_embeddings else float(shape.n_vocab * shape.n_embd)
    params = (shape.n_params - embedding) * share + embedding
    per_weight = shape.model_bytes / shape.n_params if shape.n_params else 0.0
    return replace(shape, n_params=params, model_bytes=params * per_weight or
                   shape.model_bytes * share, n_layers=n_layers)


# --------------------------------------------------------------------------- output


def format_multi(result: dict[str, Any], fmt: str = "md") -> str:
    """A machine projection as Markdown (the devices, then the figures against one GPU)
    or JSON."""
    import json

    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    from benchkit.core.units import fmt_tps

    r, one = result, result["one_gpu"]
    lines = [f"Machine: {r['machine']} ({r['link_gbs']:g} GB/s a direction), split mode "
             f"{r['mode']}, model {r['model']}.", ""]
    if r.get("per_chip"):
        lines += [f"Per-GPU times: {r['per_chip']}.", ""]
    lines += ["| GPU | chip | layers | share | weights GB | KV GB | compute GB | needs GB | "
              "usable GB | fits |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
              "---: | --- |"]
    for d in r["devices"]:
        lines.append(
            f"| {d['index']} | {d['chip']} | {_cell(d['layers'])}"
            f"{' + output' if d['output_layer'] else ''} | {d['share']:.1%} | "
            f"{d['weights_gb']:.2f} | {d['kv_gb']:.2f} | {d['compute_gb']:.2f} | "
            f"{d['need_gb']:.2f} | {_cell(d['usable_gb'], '{:.1f}')} | "
            f"{ {True: 'yes', False: 'NO', None: '—'}[d['fits']] } |")
    lines += ["", "| figure | this machine | one " + one["chip"] + " | ratio |",
              "| --- | ---: | ---: | ---: |",
              f"| decode tok/s (tg) | {fmt_tps(r['tg_tps'])} | {fmt_tps(one['tg_tps'])}"
              f"{'' if one['fits'] is not False else ' (does not fit)'} | "
              f"{_cell(r['tg_speedup'], '{:.2f}x')} |",
              f"| prompt tok/s (pp{r['n_prompt']}) | {fmt_tps(r['pp_tps'])} | "
              f"{fmt_tps(one['pp_tps'])} | {_cell(r['pp_speedup'], '{:.2f}x')} |", "",
              f"Splitting adds {r['link_ms_per_token']:.3f} ms a generated token and "
              f"{r['prompt_link_ms']:.2f} ms a pp{r['n_prompt']} prompt"
              f"{' (ubatches pipelined)' if r['pipelined'] else ''}; overheads "
              + ", ".join(f"{k} {v:g} us" for k, v in r["overheads_us"].items())
              + " (benchkit/data/links.yaml).",
              "" if r["fits"] else "The model does NOT fit this machine's memory as split."]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any, fmt: str = "{}") -> str:
    return "—" if value is None else fmt.format(value)

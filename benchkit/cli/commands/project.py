"""`benchkit project`: project a measurement onto other chips, or check how well that works."""

from __future__ import annotations

import click

from benchkit.cli.output import say
from benchkit.core.errors import BenchkitError


def _sizes(value: str | None) -> list[float] | None:
    """"1,3,7,13,70" -> [1, 3, 7, 13, 70]; a bad list is one clear error."""
    if value is None:
        return None
    try:
        sizes = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise BenchkitError(f"expected billions of parameters separated by commas, got {value!r}",
                            field="--sizes") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise BenchkitError(f"sizes must be positive, got {value!r}", field="--sizes")
    return sizes


@click.command()
@click.option("--anchor", metavar="CHIP", help="Chip the measurement ran on (e.g. m4max, h100).")
@click.option("--from", "from_file", metavar="FILE", help="Take the measurement from this result file.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR",
              help="Folder searched (recursively) for results when --tg / --from are not given.")
@click.option("--tg", type=float, metavar="TPS", help="Measured decode (token generation) tok/s.")
@click.option("--pp", type=float, metavar="TPS", help="Measured prompt processing tok/s.")
@click.option("--model-gb", type=float, metavar="SIZE", help="Model file size in GB (10^9 bytes).")
@click.option("--layers", type=int, metavar="N", help="Model layer count (estimated from size if absent).")
@click.option("--gguf", "gguf_file", metavar="FILE",
              help="Project this model: size, layers and KV shape from its GGUF header.")
@click.option("--preset", metavar="NAME",
              help="Project this preset's shape (benchkit models list), in --quant.")
@click.option("--depth", type=int, default=None, metavar="N",
              help="Context depth (tokens already in the KV cache, llama-bench -d) to project at "
                   "(default: the anchor's, 0 for --tg/--pp).")
@click.option("--chip-spec", "chip_spec", metavar="FILE.yaml",
              help="Project onto a chip that is not listed, from a YAML file with the chip "
                   "database's fields (id, name, backend, gpu_cores, bandwidth_gbs, memory_gb, ...).")
@click.option("--method", type=click.Choice(["roofline", "bandwidth"]), default="roofline",
              show_default=True, help="roofline: calibrated physical model; bandwidth: tok/s x BW ratio.")
@click.option("--chips", "chip_set", metavar="LIST",
              help="Chips to list: ids separated by commas, apple, nvidia, amd or all "
                   "(default: the anchor's vendor).")
@click.option("--sizes", metavar="B,B,...", help="Model-size table instead: sizes in billions of parameters.")
@click.option("--quant", default=None, help="GGUF type for --sizes / --preset (default Q4_K_M) and of "
              "the --tg/--pp anchor's model.")
@click.option("--chip", "size_chip", metavar="CHIP", help="Chip for --sizes (default: the anchor).")
@click.option("--validate", is_flag=True,
              help="Project every measured chip from every other and print the errors of both methods.")
@click.option("--anchor-only", is_flag=True,
              help="Calibrate on the anchor's measurement alone, not on other results of the model.")
@click.option("--measured", metavar="PRESET:QUANT|FILE.gguf",
              help="The model the anchor figures measured, when it is not the projected one "
                   "(--preset / --gguf): e.g. llama-2-7b:Q4_0.")
@click.option("--backend", type=click.Choice(["cuda", "hip", "vulkan", "sycl", "metal", "cpu",
                                              "mlx"]),
              help="Backend the measurement ran on (default: the anchor chip's usual one); "
                   "chips that run it are projected on it too.")
@click.option("--fa", "fa", metavar="on|off|auto",
              help="Flash attention of the projection (default: as measured).")
@click.option("--measured-fa", metavar="on|off|auto",
              help="Flash attention the --tg / --pp figures ran with (default: as --fa).")
@click.option("--n-gpu-layers", "-ngl", "n_gpu_layers", type=int, metavar="N",
              help="Project a partial offload: N layers on the GPU (llama.cpp -ngl).")
@click.option("--n-cpu-moe", type=int, metavar="N",
              help="Project with the experts of the first N layers in system RAM.")
@click.option("--cpu-bw", type=float, metavar="GB/S",
              help="Host memory read bandwidth, for a partial offload: measured "
                   "(scripts/host_evidence.sh), else the DIMMs' peak (dual-channel DDR5-6000: "
                   "96; reads reach about 75-90% of it).")
@click.option("--link-gbs", type=float, metavar="GB/S",
              help="Host-GPU link bandwidth (default 31.5: PCIe 4.0 x16).")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md",
              show_default=True)
@click.option("--list-chips", is_flag=True, help="Print the chip database and exit.")
@click.option("--machine", metavar="SPEC",
              help="Project onto several GPUs in one machine: 2xrtx3090, rtx3090+rtx4090, "
                   "either with @LINK (2xrtx3090@nvlink3-ga102), or a YAML file.")
@click.option("--split-mode", type=click.Choice(["none", "layer", "row", "tensor"]),
              default="layer", show_default=True, help="llama.cpp's split mode for --machine.")
def project(anchor, from_file, results_dir, tg, pp, model_gb, layers, gguf_file, preset, depth,
            chip_spec, method, chip_set, sizes, quant, size_chip, validate, anchor_only,
            measured, backend, fa, measured_fa, n_gpu_layers, n_cpu_moe, cpu_bw, link_gbs, fmt,
            list_chips, machine, split_mode) -> None:
    """Project measured throughput onto other Apple Silicon chips and GPUs.

    \b
    Examples:
      benchkit project --anchor m4max --tg 198 --model-gb 0.67
      benchkit project --anchor m4max --tg 198 --method bandwidth
      benchkit project --from results/<run>.json --chips all --format json
      benchkit project --anchor m4max --tg 198 --model-gb 0.67 --sizes 1,3,7,13,70
      benchkit project --anchor h100 --tg 330 --pp 12000 --preset llama-2-7b --quant Q4_0 --depth 4096
      benchkit project --anchor rtx4090 --tg 128 --model-gb 4.9 --chip-spec my-gpu.yaml
      benchkit project --anchor rtx4090 --tg 186 --pp 11990 --measured llama-2-7b:Q4_0 \\
          --preset gpt-oss-20b --quant MXFP4 --chips all
      benchkit project --preset qwen3-30b-a3b --quant Q4_K_M --chips rtx4090,m4max
      benchkit project --anchor rtx4090 --tg 120 --preset qwen3-30b-a3b --n-cpu-moe 24 --cpu-bw 96
      benchkit project --validate
      benchkit project --anchor rtx3090 --tg 111.7 --pp 3865 --preset llama-3-8b --machine 2xrtx3090
      benchkit project --from results/<run>.json --preset llama-3-70b --machine 4xrtx3090 --split-mode row

    Without --anchor / --tg / --from, a --preset or --gguf model is projected from the
    calibration data benchkit ships and the results found, with no anchor of its own
    (wider ranges). `benchkit plan` lists the placements that fit a machine.
    """
    from benchkit.projection import output as F
    from benchkit.projection.api import project as project_rows, select_chips, size_table
    from benchkit.projection.measurements import (find_result_files, gather_measurements,
                                                  measurements_from_results)
    from benchkit.projection.validation import validate as validate_all
    from benchkit.projection.chips import get_chip, load_chip_spec, load_chips
    from benchkit.models.quants import bits_per_weight

    if list_chips:
        say(F.chip_list(load_chips().values(), fmt), nl=False)
        return
    if depth is not None and depth < 0:
        raise BenchkitError(f"must be 0 or more, got {depth}", field="--depth")
    from benchkit.core.safeio import require_regular_file

    # a FIFO or a device would block (or never end) the read: refused from its stat
    for given, what in ((chip_spec, "chip spec (--chip-spec)"), (gguf_file, "model (--gguf)")):
        if given:
            require_regular_file(given, what)
    spec = load_chip_spec(chip_spec) if chip_spec else None
    if quant is not None:
        bits_per_weight(quant, field="--quant")
    if validate:
        _check_validate_options({"--tg": tg, "--pp": pp, "--model-gb": model_gb,
                                 "--layers": layers, "--gguf": gguf_file, "--preset": preset,
                                 "--depth": depth, "--chip-spec": chip_spec, "--sizes": sizes,
                                 "--chip": size_chip, "--chips": chip_set,
                                 "--quant": quant, "--anchor-only": anchor_only or None})
        paths = [from_file] if from_file else find_result_files(results_dir)
        ms = measurements_from_results(paths)
        anchors = [get_chip(anchor, field="--anchor").id] if anchor else None
        result = validate_all(ms, anchors=anchors) if ms else {
            "pairs": [], "methods": ["bandwidth", "roofline"], "per_chip": {}, "mape": {}}
        say(F.format_validation(result, fmt), nl=False)
        return
    from benchkit.projection import targets

    config = targets.run_config(fa, n_gpu_layers, n_cpu_moe)
    host = targets.host(cpu_bw, link_gbs, needed=bool(config and config.partial))
    shape = _shape(gguf_file, preset, quant, model_gb)
    if not (anchor or from_file or tg is not None or pp is not None):
        if shape is None:
            raise BenchkitError("give an anchor (--anchor CHIP with --tg / --pp, or --from "
                                "FILE), or name a model (--preset / --gguf) to project it from "
                                "the calibration data alone", field="--anchor")
        _unanchored(shape, chip_set, spec, config, host, depth, method, fmt, results_dir)
        return
    ms = gather_measurements(anchor, from_file=from_file, results_dir=results_dir, tg=tg,
                             pp=pp, model_gb=model_gb, layers=layers, anchor_only=anchor_only,
                             depth=depth or 0, quant=quant)
    ms[0] = _anchor_settings(ms[0], shape, measured, quant, backend, measured_fa, fa,
                             command_line=tg is not None or pp is not None,
                             model_gb=model_gb)
    if machine:
        _project_machine(machine, split_mode, ms, shape, depth or 0, method, fmt)
        return
    header = [f"Anchor: {F.describe_measurement(ms[0])}."]
    if len(ms) > 1:
        header.append(f"Calibrated on {len(ms)} measurements (the anchor and other results "
                      "of the same model or chip).")
    size_list = _sizes(sizes)
    _check_table_options(size_list, size_chip, chip_set)
    if size_list:
        chip = spec or get_chip(size_chip or ms[0].chip_id, field="--chip")
        rows = size_table(chip, ms, sizes_b=size_list, quant=quant or "Q4_K_M", method=method,
                          depth=depth or 0)
        header.insert(0, f"Expected throughput on {chip.name} ({chip.id}), method {method}.")
        say(F.format_sizes(rows, fmt, header=header), nl=False)
        return
    anchor_chip = get_chip(ms[0].chip_id)
    chips = ([spec] + select_chips(chip_set or anchor_chip.id, anchor_chip, load_chips())
             if spec else chip_set)
    rows = project_rows(ms, method=method, chips=chips, depth=depth, shape=shape,
                        config=config, host=host, backend=backend)
    header.insert(0, f"Projection by the {method} method.")
    if shape is not None or config is not None:
        from benchkit.projection.placement import RunConfig
        from benchkit.projection.measurements import shape_of
        from benchkit.projection.priors import load_priors

        target = shape or shape_of(ms[0], load_priors())
        if target is not None:
            header.insert(2, F.describe_target(target, config or ms[0].config or RunConfig()))
    say(F.format_projection(rows, fmt, header=header), nl=False)


def _anchor_settings(anchor, shape, measured, quant, backend, measured_fa, fa, *,
                     command_line: bool, model_gb):
    """The anchor with what the command line says of it: the model it measured
    (--measured, else --gguf / --preset for figures given as numbers), its backend and
    its flash attention."""
    from dataclasses import replace

    from benchkit.projection import targets

    got = None
    if measured:
        got = targets.model_shape(measured, "--measured", quant)
    elif shape is not None and command_line and model_gb is None:
        got = shape
    if got is not None:
        anchor = replace(anchor, model_bytes=got.model_bytes, n_layers=got.n_layers,
                         n_params=got.n_params, quant=got.quant, shape=got,
                         model_key=f"measured:{got.source}:{got.quant}",
                         model_name=f"{got.source} ({got.quant})")
    if backend:
        anchor = replace(anchor, backend=backend)
    if command_line and (measured_fa or fa):
        word = measured_fa or fa
        anchor = replace(anchor, config=replace(
            anchor.config, flash_attn=targets.flash_attn(word, "--measured-fa")))
    return anchor


def _unanchored(shape, chip_set, spec, config, host, depth, method, fmt, results_dir) -> None:
    """`project --preset X` with no anchor: from the shipped calibration data and the
    results found, every chip unless --chips says otherwise."""
    from benchkit.projection import output as F
    from benchkit.projection.api import project as project_rows
    from benchkit.projection.placement import RunConfig
    from benchkit.projection.published import calibration_measurements

    if method != "roofline":
        raise BenchkitError("without an anchor only the roofline method projects",
                            field="--method")
    ms = calibration_measurements(results_dir)
    chips = chip_set
    if spec:
        from benchkit.projection.api import select_chips
        from benchkit.projection.chips import load_chips

        chips = [spec] + (select_chips(chip_set, spec, load_chips()) if chip_set else [])
    rows = project_rows(ms, chips=chips, depth=depth or 0, shape=shape, config=config,
                        host=host, anchored=False)
    sources = sorted({m.source for m in ms})
    header = [f"Projection of {shape.source} ({shape.quant}) by the roofline method, with no "
              f"anchor: calibrated on {len(ms)} measurements from {len(sources)} sources "
              "(the published series and benchkit runs in benchkit/data/published.yaml and "
              "under results/), each chip on its usual backend; ranges include the error of "
              "projecting across models.", F.describe_target(shape, config or RunConfig())]
    say(F.format_projection(rows, fmt, header=header), nl=False)


def _project_machine(spec: str, split_mode: str, ms: list, shape, depth: int, method: str,
                     fmt: str) -> None:
    """--machine: the anchor projected onto several GPUs of one machine
    (benchkit.projection.multigpu); csv has no shape for a machine's two tables."""
    from benchkit.projection.multigpu import format_multi, machine_projection

    if fmt == "csv":
        raise BenchkitError("a machine projection prints as md or json", field="--format")
    result = machine_projection(spec, split_mode, ms, shape=shape, depth=depth, method=method)
    say(format_multi(result, fmt), nl=False)


def _check_validate_options(given: dict[str, object]) -> None:
    """--validate projects every measured chip from every other, each at its own model and
    depth: an option that sets up one projection would be ignored, so it is refused."""
    for name, value in given.items():
        if value is not None:
            raise BenchkitError("does not apply to --validate, which projects every measured "
                                "chip from every other at their own models and depths "
                                "(--anchor and --from choose which results)", field=name)


def _check_table_options(size_list: list[float] | None, size_chip: str | None,
                         chip_set: str | None) -> None:
    """--chip belongs to the size table and --chips to the chip table: an option of the
    other table would be ignored without a word, so it is refused."""
    if size_chip and not size_list:
        raise BenchkitError(f"picks the chip of a --sizes table; to project onto chosen chips, "
                            f"list them with --chips {size_chip},...", field="--chip")
    if chip_set and size_list:
        raise BenchkitError("lists the chips of a projection; a --sizes table is for one chip, "
                            "named with --chip", field="--chips")


def _shape(gguf_file: str | None, preset: str | None, quant: str | None,
           model_gb: float | None):
    """The model to project, from --gguf or --preset (None: the anchor's own)."""
    from benchkit.projection.shapes import GB, shape_from_gguf, shape_from_preset

    if gguf_file and preset:
        raise BenchkitError("give the model either as --gguf FILE or as --preset NAME",
                            field="--preset")
    if gguf_file:
        return shape_from_gguf(gguf_file)
    if preset:
        from benchkit.projection.targets import model_shape

        shape = model_shape(preset, "--preset", quant)
        if model_gb:
            shape = shape_from_preset(preset, shape.quant, model_gb * GB)
        return shape
    return None

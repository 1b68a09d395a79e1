"""`benchkit project`: project a measurement onto other chips, or check how well that works."""

from __future__ import annotations

import click


def _sizes(value: str | None) -> list[float] | None:
    """"1,3,7,13,70" -> [1, 3, 7, 13, 70]; a bad list is one clear error."""
    if value is None:
        return None
    from benchkit.errors import BenchkitError

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
@click.option("--method", type=click.Choice(["roofline", "bandwidth"]), default="roofline",
              show_default=True, help="roofline: calibrated physical model; bandwidth: tok/s x BW ratio.")
@click.option("--chips", "chip_set", metavar="LIST",
              help="Chips to list: ids separated by commas, apple, nvidia, amd or all "
                   "(default: the anchor's vendor).")
@click.option("--sizes", metavar="B,B,...", help="Model-size table instead: sizes in billions of parameters.")
@click.option("--quant", default="Q4_K_M", show_default=True, help="GGUF type for --sizes.")
@click.option("--chip", "size_chip", metavar="CHIP", help="Chip for --sizes (default: the anchor).")
@click.option("--validate", is_flag=True,
              help="Project every measured chip from every other and print the errors of both methods.")
@click.option("--anchor-only", is_flag=True,
              help="Calibrate on the anchor's measurement alone, not on other results of the model.")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md",
              show_default=True)
@click.option("--list-chips", is_flag=True, help="Print the chip database and exit.")
def project(anchor, from_file, results_dir, tg, pp, model_gb, layers, method, chip_set, sizes,
            quant, size_chip, validate, anchor_only, fmt, list_chips) -> None:
    """Project measured throughput onto other Apple Silicon chips and GPUs.

    \b
    Examples:
      benchkit project --anchor m4max --tg 198 --model-gb 0.67
      benchkit project --anchor m4max --tg 198 --method bandwidth
      benchkit project --from results/<run>.json --chips all --format json
      benchkit project --anchor m4max --tg 198 --model-gb 0.67 --sizes 1,3,7,13,70
      benchkit project --validate
    """
    from benchkit import projection as P
    from benchkit import projection_format as F
    from benchkit.chips import get_chip, load_chips
    from benchkit.quants import bits_per_weight

    if list_chips:
        click.echo(F.chip_list(load_chips().values(), fmt), nl=False)
        return
    if validate:
        paths = [from_file] if from_file else P.find_result_files(results_dir)
        ms = P.measurements_from_results(paths)
        anchors = [get_chip(anchor, field="--anchor").id] if anchor else None
        result = P.validate(ms, anchors=anchors) if ms else {
            "pairs": [], "methods": ["bandwidth", "roofline"], "per_chip": {}, "mape": {}}
        click.echo(F.format_validation(result, fmt), nl=False)
        return
    ms = P.gather_measurements(anchor, from_file=from_file, results_dir=results_dir, tg=tg,
                               pp=pp, model_gb=model_gb, layers=layers, anchor_only=anchor_only)
    header = [f"Anchor: {F.describe_measurement(ms[0])}."]
    if len(ms) > 1:
        header.append(f"Calibrated on {len(ms)} measurements (the anchor and other results "
                      "of the same model or chip).")
    size_list = _sizes(sizes)
    if size_list:
        bits_per_weight(quant, field="--quant")
        chip = get_chip(size_chip or ms[0].chip_id, field="--chip")
        rows = P.size_table(chip.id, ms, sizes_b=size_list, quant=quant, method=method)
        header.insert(0, f"Expected throughput on {chip.name} ({chip.id}), method {method}.")
        click.echo(F.format_sizes(rows, fmt, header=header), nl=False)
        return
    rows = P.project(ms, method=method, chips=chip_set)
    header.insert(0, f"Projection by the {method} method.")
    click.echo(F.format_projection(rows, fmt, header=header), nl=False)

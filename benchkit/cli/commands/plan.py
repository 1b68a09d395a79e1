"""`benchkit plan`: will this model run on this machine, in which quantization and
placement, and how fast."""

from __future__ import annotations

import click

from benchkit.cli.output import say
from benchkit.core.errors import BenchkitError


@click.command()
@click.option("--preset", metavar="NAME", help="The model, as a preset (benchkit models list).")
@click.option("--gguf", "gguf_file", metavar="FILE", help="The model, as a GGUF file (its own "
              "quantization only).")
@click.option("--quant", "quants", metavar="Q,Q,...",
              help="Quantizations to consider (default: Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K; "
                   "MXFP4 for gpt-oss, published so).")
@click.option("--chip", metavar="CHIP", help="The GPU (benchkit project --list-chips).")
@click.option("--vram", type=float, metavar="GB", help="GPU memory (default: the chip's largest).")
@click.option("--ram", type=float, required=True, metavar="GB", help="System RAM.")
@click.option("--cpu-bw", type=float, required=True, metavar="GB/S",
              help="System RAM read bandwidth: measured (scripts/host_evidence.sh), else the "
                   "DIMMs' peak (dual-channel DDR5-6000: 96; reads reach about 75-90% of it).")
@click.option("--link-gbs", type=float, metavar="GB/S",
              help="Host-GPU link (default 31.5: PCIe 4.0 x16).")
@click.option("--ctx", type=int, default=8192, show_default=True, metavar="TOKENS",
              help="Context length the KV cache must hold.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR",
              help="Results that join the calibration data.")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md",
              show_default=True)
def plan(preset, gguf_file, quants, chip, vram, ram, cpu_bw, link_gbs, ctx, results_dir,
         fmt) -> None:
    """Will it run, and how fast: the quantizations and placements of a model that fit a
    machine at a context length, fastest first, each with projected decode and prompt
    tok/s (90% interval) and the llama-server command for it.

    \b
    Examples:
      benchkit plan --preset gpt-oss-20b --chip rtx4090 --ram 64 --cpu-bw 96
      benchkit plan --preset qwen3-30b-a3b --chip rtx3060 --ram 32 --cpu-bw 51 --ctx 32768
      benchkit plan --gguf model.gguf --vram 12 --ram 32 --cpu-bw 51

    A placement keeps every layer on the GPU if it fits; else, for a mixture of experts,
    the experts of the fewest layers in system RAM (--n-cpu-moe); else the most layers
    the GPU holds (-ngl). Nothing that does not fit is listed; a plan using over 90% of a
    memory is marked. Without --chip only memory is planned.
    """
    from benchkit.projection import targets
    from benchkit.projection.chips import get_chip
    from benchkit.projection.output import format_plan
    from benchkit.projection.plan import default_quants, machine, plan as make_plan
    from benchkit.projection.priors import load_priors
    from benchkit.projection.published import calibration_measurements

    priors = load_priors()
    host = targets.host(cpu_bw, link_gbs, ram, needed=True)
    gpu = get_chip(chip, field="--chip") if chip else None
    m = machine(gpu, vram, ram, host, priors)
    if bool(preset) == bool(gguf_file):
        raise BenchkitError("name the model: --preset NAME or --gguf FILE (one of them)",
                            field="--preset")
    if gguf_file:
        if quants:
            raise BenchkitError("a GGUF file has its own quantization; use --preset to compare "
                                "quantizations", field="--quant")
        shapes = [targets.model_shape(gguf_file, "--gguf")]
    else:
        names = ([q.strip() for q in quants.split(",") if q.strip()] if quants
                 else list(default_quants(preset)))
        shapes = [targets.model_shape(f"{preset}:{q}", "--quant") for q in names]
    ms = calibration_measurements(results_dir) if gpu else []
    rows = make_plan(shapes, m, ctx, ms, priors=priors)
    where = (f"{gpu.name} ({m.vram_gb:.1f} GB usable)" if gpu else
             f"a GPU with {m.vram_gb:.1f} GB usable") + \
        f", {ram:g} GB RAM at {cpu_bw:g} GB/s, link {host.link_gbs:g} GB/s"
    header = [f"Will {shapes[0].source} run on {where}, with a {ctx}-token context?",
              "Decode = tg128, prompt = pp512 at an empty context, tok/s projected by the "
              "roofline from benchkit's calibration data (no anchor), in brackets the 90% "
              "prediction interval; memory in GB (10^9 bytes): weights, KV cache (F16) at "
              "the context, compute buffer."]
    say(format_plan(rows, fmt, header=header), nl=False)

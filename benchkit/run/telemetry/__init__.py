"""Telemetry of one case: memory, CPU, power and energy while its timed iterations run.

A `Sampler` reads its sources in a background thread (10 Hz by default), never inside
the timed loop: the thread sleeps between samples, and the few readings taken on the
caller's thread (at the start, at the end, and where the timed iterations begin) happen
between iterations. What it measures, for the case's window:

- memory: the peak resident set of the benchmark process over the window (Linux: the
  kernel's exact high-water mark, reset at the window's start through
  /proc/PID/clear_refs; elsewhere the peak of the samples), the summed RSS of the process
  and its children (a server or tool it started), and on an NVIDIA GPU the peak device
  memory: NVML's per-process figure where the driver gives it, else the device's used
  memory and its rise from before the case, labelled as such;
- CPU: utilisation of the process and its children (CPU seconds / wall seconds);
- NVIDIA GPUs through NVML (nvidia-ml-py): utilisation, memory, SM clock, power,
  temperature, the clock event ("throttle") reasons, and energy from the board's
  counter (nvmlDeviceGetTotalEnergyConsumption, mJ) read at both ends of the window;
- Linux CPUs through RAPL (powercap energy_uj counters, wraparound handled);
- Apple Silicon through `powermetrics` (needs root).

A source that cannot be read says why (`{"unavailable": reason}`), never a guess. With
the case's tokens and seconds, `finish` adds joules per token and tokens per joule.
`warnings` turns dropped clocks and reported throttling into the case's warnings.

The window is the timed iterations: `on_iteration` wraps the plan's progress callback
and moves the window's start to the end of each warmup. An engine that reports its
iterations only after running them all (llama-bench) gives no usable boundary, and one
that reports no warmup may have run its own; the window is then the whole measurement
and says so.

Modules: `sampler.py` (the sampling loop, the window and the summary), `span.py` (the window
one summary covers), one module per source (`process.py`: psutil and the kernel's RSS
high-water mark; `nvidia.py`: NVML, with the clock and throttling warnings; `rapl.py`:
Linux RAPL; `powermetrics.py`: Apple Silicon).
"""

from __future__ import annotations

from benchkit.run.telemetry.nvidia import warnings
from benchkit.run.telemetry.sampler import Sampler

__all__ = ["Sampler", "warnings"]

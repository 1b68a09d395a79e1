"""The machine a result was measured on: what a reader needs to compare or reproduce it.

OS, CPU, memory, the accelerator (Apple chip and its GPU core count, NVIDIA GPUs), the
backend llama.cpp was compiled with, and versions. Never the host name, the user name
or a home path: result files are meant to be shared.

Every probe is best effort: a missing tool (no `nvidia-smi`, no `system_profiler`)
leaves its field empty rather than failing the run.
"""

from __future__ import annotations

import platform
import re
import subprocess
from typing import Any

from benchkit.core.version import __version__

_PROBE_TIMEOUT_S = 10


def collect() -> dict[str, Any]:
    """The `environment` object of a result file."""
    import psutil

    system_info = _system_info()
    devices = _ggml_devices()
    cpu_model = _cpu_model()
    gpus = _nvidia_gpus() or [
        {"name": d["description"] or d["name"], "memory_bytes": d["memory_bytes"], "driver": None}
        for d in devices if d["type"] in ("gpu", "igpu")]
    backend = detect_backend(system_info, devices)
    return {
        "os": _os(),
        "cpu": {"model": cpu_model, "cores_physical": psutil.cpu_count(logical=False),
                "cores_logical": psutil.cpu_count(logical=True), "arch": platform.machine()},
        "memory_bytes": int(psutil.virtual_memory().total),
        "chip": _chip(cpu_model, gpus, backend),
        "gpus": gpus,
        "backend": backend,
        "devices": devices,
        "llama_cpp_system_info": system_info,
        "python": platform.python_version(),
        "versions": {"benchkit": __version__, "llama_cpp_python": _llama_cpp_version()},
    }


def detect_backend(system_info: str, devices: list[dict[str, Any]]) -> str:
    """The GPU backend compiled into llama.cpp (cuda, metal, vulkan, hip, sycl) or cpu.

    Read from ggml's device registry first (the devices that exist), then from the
    system-info line (the backends compiled in).
    """
    names = " ".join(f"{d['name']} {d['description']}" for d in devices
                     if d["type"] != "cpu")
    return backend_in(f"{names} | {system_info}")


# llama.cpp's names of its GPU backends, in order of precedence when several appear
_BACKENDS = (("cuda", re.compile(r"\bCUDA")), ("metal", re.compile(r"\bMetal|\bMTL")),
             ("hip", re.compile(r"\bROCm|\bHIP")), ("vulkan", re.compile(r"\bVulkan")),
             ("sycl", re.compile(r"\bSYCL")))


def backend_in(text: str) -> str:
    """The GPU backend (cuda, metal, hip, vulkan, sycl) a llama.cpp text names, or cpu:
    a device list, a system-info line, llama-bench's `backends` column. One reading for
    runs and imported files, so that both file a result under the same backend."""
    return next((backend for backend, pattern in _BACKENDS if pattern.search(text)), "cpu")


def cpu_slug(cpu_model: str | None) -> str:
    """A stable id for a CPU model, used as device_id when the CPU did the work."""
    slug = re.sub(r"\((r|tm)\)|cpu|processor|\d+-core", "", (cpu_model or "unknown").lower())
    slug = re.sub(r"@.*$", "", slug)
    return "cpu-" + (re.sub(r"[^a-z0-9]+", "-", slug).strip("-") or "unknown")


def _os() -> dict[str, Any]:
    system = platform.system()
    version = platform.version()
    if system == "Darwin":
        version = f"macOS {platform.mac_ver()[0]}"
    return {"system": system, "release": platform.release(), "version": version,
            "machine": platform.machine()}


def _cpu_model() -> str | None:
    if platform.system() == "Darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out.strip()
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
        return info.get("brand_raw") or None
    except Exception:  # noqa: BLE001 - py-cpuinfo probes the CPU in many fragile ways
        return platform.processor() or None


def _chip(cpu_model: str | None, gpus: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    """The accelerator that does the work when layers are offloaded, or the CPU."""
    if platform.system() == "Darwin" and (cpu_model or "").startswith("Apple"):
        cores = _apple_gpu_cores()
        return {"kind": "apple", "name": cpu_model, "id": identify_chip(cpu_model, cores),
                "gpu_cores": cores}
    if gpus:
        name = gpus[0]["name"]
        kind = "nvidia" if backend == "cuda" or "NVIDIA" in name.upper() else (
            "amd" if backend == "hip" or re.search(r"\bAMD|Radeon|Instinct", name) else "other")
        return {"kind": kind, "name": name, "id": identify_chip(name, None), "gpu_cores": None}
    return {"kind": "cpu", "name": cpu_model, "id": None, "gpu_cores": None}


def _apple_gpu_cores() -> int | None:
    out = _run(["system_profiler", "SPDisplaysDataType"])
    m = re.search(r"Total Number of Cores:\s*(\d+)", out or "")
    return int(m[1]) if m else None


def _nvidia_gpus() -> list[dict[str, Any]]:
    return parse_nvidia_smi(_run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv,noheader,nounits"]) or "")


def parse_nvidia_smi(out: str) -> list[dict[str, Any]]:
    """`nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits`
    (memory in MiB) as the `gpus` list of a result."""
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0]:
            mib = int(parts[1]) if parts[1].isdigit() else None
            gpus.append({"name": parts[0], "memory_bytes": mib * 1024 * 1024 if mib else None,
                         "driver": parts[2] or None})
    return gpus


def identify_chip(name: str | None, gpu_cores: int | None) -> str | None:
    """The chip id from benchkit.projection.chips, when that module knows the chip."""
    if not name:
        return None
    try:
        from benchkit.projection.chips import identify
    except ImportError:
        return None
    try:
        return identify(name, gpu_cores)
    except Exception:  # noqa: BLE001 - an unknown chip is not a reason to fail a run
        return None


def _system_info() -> str | None:
    from benchkit.engines.llama_cpp.native import system_info

    try:
        return system_info()
    except ImportError:          # llama-cpp-python missing: the run will say so itself
        return None


def _ggml_devices() -> list[dict[str, Any]]:
    from benchkit.engines.llama_cpp.native import iter_devices

    try:
        return list(iter_devices())
    except (ImportError, OSError, AttributeError):
        return []


def _llama_cpp_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return None


def _run(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None

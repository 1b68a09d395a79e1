"""The environment block: backend detection, GPU parsing, and nothing that names the host."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

from benchkit.run.environment import collect, cpu_slug, detect_backend, parse_nvidia_smi


def test_collect_on_this_machine() -> None:
    env = collect()
    assert env["cpu"]["cores_logical"] >= 1 and env["memory_bytes"] > 0
    assert env["backend"] in ("cpu", "cuda", "metal", "vulkan", "hip", "sycl")
    assert env["versions"]["llama_cpp_python"] == "0.3.36"
    assert any(d["type"] == "cpu" for d in env["devices"])
    text = json.dumps(env)
    assert socket.gethostname() not in text
    assert f'"{getpass.getuser()}"' not in text
    home = str(Path.home())
    if home not in ("/", ""):
        assert home + "/" not in text


def test_backend_from_devices_and_system_info() -> None:
    cpu = [{"name": "CPU", "description": "AMD EPYC", "type": "cpu"}]
    assert detect_backend("CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 |", cpu) == "cpu"
    cuda = cpu + [{"name": "CUDA0", "description": "NVIDIA H200", "type": "gpu"}]
    assert detect_backend("CPU : AVX2 = 1 |", cuda) == "cuda"
    assert detect_backend("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 |", cpu) == "metal"


def test_nvidia_smi_line_as_printed_on_an_h200() -> None:
    gpus = parse_nvidia_smi("NVIDIA H200, 143771, 580.159.04\n")
    assert gpus == [{"name": "NVIDIA H200", "memory_bytes": 143771 * 2**20,
                     "driver": "580.159.04"}]
    assert parse_nvidia_smi("") == []


def test_cpu_slug() -> None:
    assert cpu_slug("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz") == "cpu-intel-xeon-e5-2690-v4"
    assert cpu_slug("AMD EPYC") == "cpu-amd-epyc"
    assert cpu_slug(None) == "cpu-unknown"

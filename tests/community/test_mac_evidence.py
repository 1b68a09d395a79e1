"""scripts/mac_evidence.sh: its check step on a real MLX result made here (MLX's CPU
backend: refused as Mac evidence) and on Mac-shaped copies of it (Metal, MLX on the GPU,
powermetrics energy from the documented plist format parsed by benchkit's own parser),
and `benchkit submit` taking an MLX standard-suite result.

NOT RUN ON A MAC: the Mac-shaped results are this machine's result with the fields a Mac
run writes set by hand (chip, backend, placement, telemetry)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

from benchkit.run.telemetry.powermetrics import parse_powermetrics_plist, powermetrics_energy, \
    split_plist_stream

from conftest import run_benchkit  # noqa: E402
from mlx_support import SMOLLM2_REDUCED, mlx_standin  # noqa: E402
from paths import REPO  # noqa: E402

SCRIPT = REPO / "scripts" / "mac_evidence.sh"

# HAND-WRITTEN, not recorded: one sample as `powermetrics --samplers cpu_power,gpu_power -f
# plist` is documented to write it on Apple Silicon (power in mW under `processor`)
_PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>elapsed_ns</key><integer>{ns}</integer>
<key>processor</key><dict>
<key>cpu_power</key><real>1200.0</real><key>gpu_power</key><real>8800.0</real>
<key>ane_power</key><real>0.0</real><key>combined_power</key><real>10000.0</real>
</dict></dict></plist>
"""

STANDARD = """\
name: standard-mlx-test
standard: true
allow_synthetic: true
models:
  - path: {folder}
engines:
  - mlx
workloads:
  - pp: 16
  - tg: 4
warmup: 0
iterations: 3
"""


@pytest.fixture(scope="module")
def mlx_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real run of a small standard MLX suite on this CPU: (result, suites folder)."""
    suites = tmp_path_factory.mktemp("suites")
    (suites / "standard-mlx-test.yaml").write_text(
        STANDARD.format(folder=mlx_standin("smollm2-135m", SMOLLM2_REDUCED)))
    out = tmp_path_factory.mktemp("out")
    proc = run_benchkit("run", str(suites / "standard-mlx-test.yaml"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("*.json")
    return path, suites


def check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), "check", *map(str, files)],
                          capture_output=True, text=True, timeout=60)


def as_mac(doc: dict, *, engine: str = "mlx", backend: str = "metal") -> dict:
    """The result as an M3 Max run writes it: the chip, llama.cpp's Metal backend, the case's
    placement on the GPU, powermetrics' energy over each case (one 10 W sample a second)."""
    mac = copy.deepcopy(doc)
    mac["environment"]["chip"] = {"kind": "apple", "name": "Apple M3 Max", "id": "m3max",
                                  "gpu_cores": 40}
    mac["environment"]["backend"] = backend
    for case in mac["cases"]:
        secs = sum(it["seconds"] for it in case["iterations"])
        docs, _ = split_plist_stream((_PLIST.format(ns=10**9) + "\x00").encode())
        sample = parse_powermetrics_plist(docs[0])
        samples = [(float(t + 1), sample) for t in range(int(secs) + 1)]
        joules = powermetrics_energy(samples, 0.0, secs)
        assert joules is not None
        tokens = sum(it["tokens"] for it in case["iterations"])
        case["telemetry"]["powermetrics"] = {
            "energy_by_unit_j": joules, "counted": "combined (CPU + GPU + ANE)",
            "energy_j": joules["combined"], "joules_per_token": joules["combined"] / tokens}
        case["engine"]["kind"] = engine
        if engine == "mlx":
            case["placement"].update(device_kind="gpu", devices=["Device(gpu, 0)"])
        else:
            case["placement"] = {"layers_offloaded": 31, "layers_total": 31,
                                 "device_kind": "gpu", "devices": ["Metal"]}
    return mac


def test_check_refuses_mlx_on_a_cpu(mlx_result: tuple[Path, Path]) -> None:
    path, _ = mlx_result
    proc = check(path)
    assert proc.returncode == 1
    assert "mlx-cpu" in proc.stdout and "not on the GPU: mlx pp16 ran on mlx-cpu" in proc.stdout
    assert "[client clock]" in proc.stdout and "(3)" in proc.stdout


@pytest.mark.parametrize("engine,backend,ok,shown", [
    ("mlx", "metal", True, "mlx-gpu"),
    ("llama-cpp-python", "metal", True, "metal"),
    ("llama-cpp-python", "cpu", False, "not on the GPU: llama-cpp-python pp16 ran on cpu"),
])
def test_check_on_mac_shaped_results(mlx_result: tuple[Path, Path], tmp_path: Path,
                                     engine: str, backend: str, ok: bool, shown: str) -> None:
    path, _ = mlx_result
    mac = as_mac(json.loads(path.read_text()), engine=engine, backend=backend)
    f = tmp_path / "mac.json"
    f.write_text(json.dumps(mac))
    proc = check(f)
    assert proc.returncode == (0 if ok else 1), proc.stdout + proc.stderr
    assert shown in proc.stdout
    jpt = mac["cases"][0]["telemetry"]["powermetrics"]["joules_per_token"]
    assert f"{jpt:.4f}" in proc.stdout                        # J/token from powermetrics


def test_submit_files_an_mlx_standard_result(mlx_result: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    path, suites = mlx_result
    root = tmp_path / "community"
    proc = run_benchkit("submit", str(path), "--root", str(root), "--suites", str(suites))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (filed,) = root.rglob("*.json")
    doc = json.loads(filed.read_text())
    assert {c["engine"]["kind"] for c in doc["cases"]} == {"mlx"}
    assert doc["cases"][0]["placement"]["backend"] == "mlx"
    mac = tmp_path / "mac.json"
    mac.write_text(json.dumps(as_mac(json.loads(path.read_text()))))
    mac_root = tmp_path / "community-mac"     # the same iterations twice would be a copy
    proc = run_benchkit("submit", str(mac), "--root", str(mac_root), "--suites", str(suites))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (filed,) = mac_root.rglob("*.json")
    assert filed.relative_to(mac_root).parts[0] == "m3max"


def test_script_is_short_and_refuses_a_non_mac_machine() -> None:
    assert len(SCRIPT.read_text().splitlines()) < 300
    proc = subprocess.run(["bash", str(SCRIPT), "run", "/nonexistent"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mac_evidence: not macOS (Linux)")


def test_an_mlx_result_projects_onto_apple_chips_as_its_own_backend(
        mlx_result: tuple[Path, Path], tmp_path: Path) -> None:
    """An MLX figure from a Mac calibrates the `mlx` backend: other Apple chips are
    projected on MLX (not on llama.cpp's Metal figures), marked as outside the calibrated
    range, and NVIDIA chips, which do not run MLX, get no prompt figure from it."""
    path, _ = mlx_result
    mac = tmp_path / "mac.json"
    mac.write_text(json.dumps(as_mac(json.loads(path.read_text()))))
    proc = run_benchkit("project", "--from", str(mac), "--chips", "m3max,m4max,rtx4090",
                        "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {r["chip"]: r for r in (doc if isinstance(doc, list) else doc["rows"])}
    assert rows["m4max"]["backend"] == "mlx" and rows["m4max"]["tg_tps"]
    assert "mlx" in rows["m4max"]["range_note"]
    assert rows["m3max"]["status"] == "measured"
    assert rows["rtx4090"]["backend"] == "cuda" and rows["rtx4090"]["pp_tps"] is None

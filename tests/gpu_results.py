"""GPU result files for projection tests, derived from the real short SmolLM2 run.

This machine has no GPU, so the shared real run (conftest's `smollm2_result`) ran every
case on the CPU. A Metal or CUDA run of the same suite writes the same document except
for `environment.chip`, `environment.backend` and each case's placement; the copies
below change exactly those fields (and the start time, so that "newest" can be tested).
The tok/s inside stay the CPU's: tests on these files check how results are read,
grouped and matched, never what a GPU would measure.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from benchkit.results.io import read_result, write_result

KINDS = {"metal": "apple", "cuda": "nvidia", "hip": "amd"}


def gpu_copy(result: Path, out: Path, *, chip_id: str, name: str, gpu_cores: int | None,
             backend: str, started_at: str, scale: float = 1.0) -> Path:
    """Write `result` as if it had run fully offloaded on `chip_id`; tok/s times `scale`."""
    doc = copy.deepcopy(json.loads(result.read_text(encoding="utf-8")))
    doc["environment"]["chip"] = {"kind": KINDS[backend], "name": name, "id": chip_id,
                                  "gpu_cores": gpu_cores}
    doc["environment"]["backend"] = backend
    doc["started_at"] = started_at
    doc["run_id"] = f"{started_at.replace('-', '').replace(':', '')}-{chip_id}"
    for case in doc["cases"]:
        placement = case["placement"]
        placement["device_kind"] = "gpu"
        placement["layers_offloaded"] = placement["layers_total"]
        if scale != 1.0:
            for it in case["iterations"]:
                it["tps"] *= scale
                it["seconds"] /= scale
            for key in ("tps_mean", "tps_median", "tps_stdev", "tps_min", "tps_max",
                        "tps_ci95_low", "tps_ci95_high"):
                if case["summary"].get(key) is not None:
                    case["summary"][key] *= scale
    path = write_result(doc, out)
    read_result(path)  # still a valid benchkit result
    return path

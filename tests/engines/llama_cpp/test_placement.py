"""Placement per device from llama.cpp's log: on the log a real run recorded (an H200, one
GPU, committed under results/), and on multi-GPU logs written with the exact printf
formats of the vendored llama.cpp (0c1e570, tests/multigpu_support.py), since no multi-GPU
run is recorded here."""

from __future__ import annotations

import json

from benchkit.engines.llama_cpp.placement import Placement, parse_placement, per_device
from benchkit.results.facts import gpus_used

from multigpu_support import KV_BUF, MODEL_BUF, two_gpu_layer_log
from paths import REPO

H200_RUN = REPO / "results" / "nvidia-h200-v2" / "20261201T173609Z-telemetry-gpu-4c5be3.json"

def test_the_recorded_one_gpu_log_gives_one_device_entry() -> None:
    doc = json.loads(H200_RUN.read_text(encoding="utf-8"))
    case = doc["cases"][0]
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True)
    parse_placement(case["placement"]["log"], p)
    devices = {d["device"]: d for d in per_device(p)}
    assert set(devices) == {"CPU", "CUDA0", "CUDA_Host"}
    assert devices["CUDA0"]["kind"] == "gpu" and devices["CUDA_Host"]["kind"] == "host"
    # the same figures the recorded buffers carry, summed per device
    recorded = case["placement"]["buffers"]
    for kind in ("model", "kv", "compute"):
        want = sum(b["mib"] for b in recorded if b["device"] == "CUDA0" and b["kind"] == kind)
        assert devices["CUDA0"][f"{kind}_mib"] == want
    assert devices["CPU"]["model_mib"] == 35.16
    assert "layers" not in devices["CUDA0"]        # the debug lines were not in that log
    # and a reader of the recorded case finds the one GPU NVML saw it on
    assert gpus_used(case) == ["GPU 0"]


def test_two_gpus_split_by_layers() -> None:
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True,
                  asked={"split_mode": "layer", "main_gpu": 0, "tensor_split": None,
                         "devices_requested": None})
    parse_placement(two_gpu_layer_log(), p)
    d = p.to_dict()
    assert (d["layers_offloaded"], d["layers_total"]) == (33, 33)
    assert d["pipeline_parallel"] is True and d["split_mode"] == "layer"
    by = {e["device"]: e for e in d["per_device"]}
    assert [e["device"] for e in d["per_device"]] == ["CUDA0", "CUDA1", "CPU", "CUDA_Host"]
    assert (by["CUDA0"]["layers"], by["CUDA1"]["layers"]) == (17, 16)   # 15 + the output
    assert (by["CUDA0"]["output_layer"], by["CUDA1"]["output_layer"]) == (False, True)
    assert by["CUDA0"]["description"] == "NVIDIA GeForce RTX 3090"
    assert by["CUDA1"]["free_mib_at_load"] == 23958
    assert (by["CUDA1"]["model_mib"], by["CUDA1"]["kv_mib"], by["CUDA1"]["compute_mib"]) == (
        1711.84, 30.0, 104.02)
    assert by["CUDA_Host"]["kind"] == "host" and by["CUDA_Host"]["compute_mib"] == 24.02
    # the per-layer lines are counted, not kept: the log keeps what a reader needs
    assert not any("assigned to device" in line for line in d["log"])
    assert any("using device CUDA1" in line for line in d["log"])
    assert gpus_used({"placement": d}) == ["CUDA0", "CUDA1"]


def test_a_buffer_split_over_gpus_names_them() -> None:
    """Tensor split (llama.cpp's meta device) and the older CUDA row split print one model
    buffer for several GPUs."""
    p = Placement(n_gpu_layers_requested=-1, gpu_offload_supported=True)
    parse_placement([MODEL_BUF % ("load_tensors", "Meta(CUDA0,CUDA1)", 3636.88),
                     MODEL_BUF % ("load_tensors", "CUDA_Split", 3600.0),
                     KV_BUF % ("llama_kv_cache", "CUDA0", 64.0)], p)
    by = {e["device"]: e for e in per_device(p)}
    assert by["Meta(CUDA0,CUDA1)"]["kind"] == "split"
    assert by["Meta(CUDA0,CUDA1)"]["spread_over"] == ["CUDA0", "CUDA1"]
    assert by["CUDA_Split"]["kind"] == "split" and by["CUDA0"]["kv_mib"] == 64.0
    assert gpus_used({"placement": p.to_dict()}) == ["CUDA0", "CUDA1"]

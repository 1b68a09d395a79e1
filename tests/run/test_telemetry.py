"""benchkit.run.telemetry: real sampling of real processes (a busy child, the real SmolLM2 model
in llama.cpp), RAPL on a real powercap-shaped directory tree, NVML and powermetrics
unavailable with their reasons, the powermetrics parsers, and the report section.

This machine has no NVIDIA GPU, no readable RAPL zones and is not a Mac: those sources are
checked for saying why they are unavailable; their arithmetic is checked on inputs written
here (labelled where they are hand-written), and the GPU figures come from the H200 run
described in docs/telemetry.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from benchkit.run.telemetry import nvidia, process
from benchkit.run.telemetry.span import Span
from benchkit.run.telemetry.nvidia import decode_reasons
from benchkit.run.telemetry.powermetrics import (parse_powermetrics_plist,
                                                 parse_powermetrics_text, powermetrics_energy,
                                                 split_plist_stream)
from benchkit.run.telemetry.rapl import rapl_zones
from benchkit.run.telemetry.sampler import Sampler
from conftest import run_benchkit

MB = 1_000_000

# A child that holds 300 MB once BEFORE the window, then inside it touches 100 MB, frees
# it and burns 0.5 s of CPU time: the window's peak must see the 100 MB, not the 300 MB.
_CHILD = textwrap.dedent("""
    import sys, time

    def touch(n):
        b = bytearray(n)
        for i in range(0, n, 4096):
            b[i] = 1
        return b

    big = touch(300_000_000)
    del big
    print("ready", flush=True)
    sys.stdin.readline()
    b = touch(100_000_000)
    del b
    t = time.process_time()
    while time.process_time() - t < 0.5:
        pass
    print("done", flush=True)
    sys.stdin.readline()
""")


def _child(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _say(proc: subprocess.Popen[str], expect: str | None = None) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    if expect:
        assert proc.stdout.readline().strip() == expect


def _wait_for_samples(sampler: Sampler, n: int) -> None:
    """Block until the background thread has taken `n` readings (no sleep-and-hope; the
    bound only keeps a dead sampler thread from hanging the suite)."""
    import threading

    pause = threading.Event()
    for _ in range(int(120 / (sampler.interval_s / 4))):
        if len(sampler.readings) >= n:
            return
        pause.wait(sampler.interval_s / 4)
    pytest.fail(f"the sampler took {len(sampler.readings)} readings, expected {n}")


# --------------------------------------------------------------------------- processes

def test_busy_child_cpu_time_and_window_peak_memory() -> None:
    proc = _child(_CHILD)
    try:
        before = process.vm_hwm(proc.pid)
        sampler = Sampler(pid=proc.pid, nvidia=False, powermetrics=False)
        with sampler:
            _say(proc, "done")
        tel = sampler.finish(tokens=None, seconds=None)
    finally:
        _say(proc)
        proc.wait(timeout=30)
    assert before is not None and before >= 300 * MB      # the high-water mark since start
    mem, cpu = tel["memory"], tel["cpu"]
    assert mem["pid"] == proc.pid and mem["peak_rss_method"].startswith("kernel high-water")
    assert 100 * MB <= mem["peak_rss_bytes"] < 250 * MB     # this window's, not since start
    assert mem["rss_end_bytes"] < 100 * MB                  # freed before the end
    # 0.5 s of CPU time by construction (process_time loop), inside the window
    assert 0.49 <= cpu["cpu_seconds"] <= 0.9
    assert tel["window"].startswith("whole measurement: no warmup was reported")
    assert tel["samples"] >= 2
    assert tel["nvidia"] == {"unavailable": "not asked for"}
    assert "unavailable" in tel["memory"]["gpu"]


_BURNER = "import sys, time\nsys.stdin.readline()\nt = time.process_time()\n" \
          "while time.process_time() - t < 2.0:\n    pass\n"
_REAPER = textwrap.dedent(f"""
    import subprocess, sys
    g = subprocess.Popen([sys.executable, "-c", {_BURNER!r}], stdin=subprocess.PIPE, text=True)
    print("ready", flush=True)
    sys.stdin.readline()
    g.stdin.write("\\n"); g.stdin.flush(); g.wait()
    print("done", flush=True)
    sys.stdin.readline()
""")
_GRANDPARENT = textwrap.dedent(f"""
    import subprocess, sys
    c = subprocess.Popen([sys.executable, "-c", {_REAPER!r}], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert c.stdout.readline().strip() == "ready"
    print("ready", flush=True)
    sys.stdin.readline()
    c.stdin.write("\\n"); c.stdin.flush()
    print(c.stdout.readline().strip(), flush=True)
    sys.stdin.readline()
    c.stdin.write("\\n"); c.stdin.flush(); c.wait()
""")


def test_a_grandchild_that_exits_keeps_its_cpu_time() -> None:
    """The measured process's child starts a grandchild that burns 2 s of CPU and reaps
    it: the grandchild's time leaves the tree's total when it exits (it moves into a
    process whose children's times are not summed), which made the window's CPU time
    negative. The rises between readings keep it."""
    proc = _child(_GRANDPARENT)
    try:
        sampler = Sampler(pid=proc.pid, nvidia=False, powermetrics=False)
        with sampler:
            _say(proc, "done")            # the grandchild has burned its time and exited
            _wait_for_samples(sampler, len(sampler.readings) + 2)
        tel = sampler.finish(tokens=None, seconds=None)
    finally:
        _say(proc)
        proc.wait(timeout=30)
    assert 1.0 <= tel["cpu"]["cpu_seconds"] <= 3.0, tel["cpu"]


def test_children_count_in_the_process_tree() -> None:
    holder = textwrap.dedent("""
        import sys
        b = bytearray(150_000_000)
        for i in range(0, len(b), 4096):
            b[i] = 1
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    proc = _child(holder)
    try:
        sampler = Sampler(nvidia=False, powermetrics=False)     # this process, its child
        with sampler:
            _wait_for_samples(sampler, 3)
        tel = sampler.finish()
    finally:
        _say(proc)
        proc.wait(timeout=30)
    mem = tel["memory"]
    assert mem["pid"] == os.getpid() and mem["children"] >= 1
    assert mem["peak_tree_rss_bytes"] >= mem["rss_start_bytes"] + 140 * MB


def test_real_smollm2_tg_measured_with_the_window_on_the_timed_iterations(
        smollm2_model: Path) -> None:
    from benchkit.engines.base import ModelFile, Plan
    from benchkit.engines.llama_cpp.in_process import LlamaCppPython, Options
    from benchkit.workloads import tokens

    engine = LlamaCppPython(Options(n_threads=1, n_gpu_layers=0))
    workload = tokens.parse({"tg": 8})[0]
    with engine.open(ModelFile(str(smollm2_model), "test")) as session:   # LlamaModel inside
        session.prepare(workload)
        sampler = Sampler()
        with sampler:
            plan = Plan(warmup=2, iterations=2, on_iteration=sampler.on_iteration())
            its = session.measure(workload, plan)
        tel = sampler.finish(tokens=sum(i.tokens for i in its),
                             seconds=sum(i.seconds for i in its))
    assert tel["window"] == "timed iterations" and tel["tokens"] == 16
    # the window starts after the second warmup and ends after the last timed iteration
    assert sampler.t_start < sampler.t_timed < sampler.t_end
    assert tel["window_s"] >= tel["seconds"] > 0
    assert tel["window_s"] < sampler.t_end - sampler.t_start
    mem = tel["memory"]
    assert mem["peak_rss_bytes"] >= max(mem["rss_start_bytes"], mem["rss_end_bytes"])
    assert mem["peak_rss_bytes"] > 50 * MB                  # the model's pages are resident
    assert tel["cpu"]["cpu_seconds"] > 0 and tel["cpu"]["percent"] > 0
    assert tel["sampler"]["cpu_seconds"] >= 0
    json.dumps(tel)                                         # goes into the result file as is


def test_an_engine_that_reports_afterwards_gets_the_whole_window() -> None:
    """llama-bench runs every repetition, then reports: no usable warmup boundary."""
    sampler = Sampler(nvidia=False, powermetrics=False)
    with sampler:
        _wait_for_samples(sampler, 3)           # the work happens here
        report = sampler.on_iteration()
        for tps in (None, 10.0, 10.0):
            report(tps)
    tel = sampler.finish(tokens=20, seconds=0.2)
    assert tel["window"].startswith("whole measurement: the engine reported its iterations")
    assert tel["window_s"] == pytest.approx(sampler.t_end - sampler.t_start)


# --------------------------------------------------------------------------- NVML

def test_nvml_reports_why_it_is_unavailable_or_measures() -> None:
    sampler = Sampler(powermetrics=False)
    with sampler:
        _wait_for_samples(sampler, 2)
    nv = sampler.finish(tokens=10, seconds=0.1)["nvidia"]
    try:
        import pynvml
    except ImportError:
        assert nv == {"unavailable": "nvidia-ml-py is not installed (pip install nvidia-ml-py)"}
        return
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        assert nv == {"unavailable": f"NVML did not start ({exc}): no NVIDIA driver or GPU"}
        return
    assert nv["devices"] and all("energy_method" in d for d in nv["devices"])


def test_nvml_module_missing_is_unavailable_with_the_reason() -> None:
    code = ("import sys, json; sys.modules['pynvml'] = None\n"
            "from benchkit.run.telemetry import Sampler\n"
            "s = Sampler(powermetrics=False).start(); t = s.finish()\n"
            "print(json.dumps([t['nvidia'], t['memory']['gpu']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    reason = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    assert json.loads(out) == [{"unavailable": reason}, {"unavailable": reason}]


def test_throttle_reason_names_match_nvml() -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py not installed")
    for bit, name in nvidia.THROTTLE_REASONS.items():
        assert getattr(pynvml, f"nvmlClocksEventReason{name}") == bit
    assert decode_reasons(0x1 | 0x4 | 0x40) == ["GpuIdle", "SwPowerCap", "HwThermalSlowdown"]
    assert decode_reasons(0x1000) == ["0x1000"]


def test_warnings_on_dropped_clocks_and_throttling() -> None:
    """Hand-written device summaries (the shape NvidiaSource produces; no GPU here)."""
    steady = {"index": 0, "name": "NVIDIA H200", "samples": 40,
              "sm_clock_busy_mhz": {"min": 1950.0, "mean": 1975.0, "max": 1980.0},
              "clock_event_reasons": {"GpuIdle": 3}}
    dropped = {**steady, "sm_clock_busy_mhz": {"min": 1410.0, "mean": 1800.0, "max": 1980.0},
               "clock_event_reasons": {"SwPowerCap": 12, "GpuIdle": 2}}
    assert nvidia.warnings({"nvidia": {"devices": [steady]}}) == []
    assert nvidia.warnings({"nvidia": {"unavailable": "x"}}) == []
    assert nvidia.warnings({"nvidia": {"devices": [dropped]}}) == [
        "GPU 0 (NVIDIA H200): SM clock dropped to 1,410 MHz from 1,980 MHz during the case "
        "(below 90% of its maximum, busy samples)",
        "GPU 0 (NVIDIA H200): throttling reported during the case: SwPowerCap (12 of 40 "
        "samples)"]


def _nv(util: int, clock: int, mw: int, mj: int, reasons: int = 0,
        proc: int | None = 2_000_000_000, used: int = 3_000_000_000) -> list[dict]:
    return [{"util": util, "mem_util": 40, "mem_used": used, "sm_clock": clock,
             "power_mw": mw, "temp": 61, "reasons": reasons, "energy_mj": mj,
             "proc_mem": proc}]


def test_nvidia_summary_arithmetic() -> None:
    """HAND-WRITTEN readings in the shape NvidiaSource.read takes them (no GPU here): energy
    from the counter's two ends, the idle sample left out of the busy clock, reasons
    counted, device memory per process or else as the device's rise."""
    src = nvidia.NvidiaSource(lambda: {1})
    src.devices = [{"index": 0, "name": "NVIDIA H200", "uuid": "GPU-0", "max_sm_clock_mhz": 1980,
                    "power_limit_w": 700.0}]
    before = {"nvidia": _nv(0, 345, 80_000, 900_000, reasons=0x1, used=2_000_000_000)}
    rows = [(10.0, {"nvidia": _nv(0, 345, 80_000, 1_000_000, reasons=0x1)}),
            (10.5, {"nvidia": _nv(99, 1980, 650_000, 1_300_000)}),
            (11.0, {"nvidia": _nv(98, 1755, 700_000, 1_650_000, reasons=0x4)})]
    nv = src.summarize(Span(10.0, 11.0, rows, before, tokens=1300))
    (d,) = nv["devices"]
    assert d["energy_j"] == 650.0 and d["energy_method"] == "board energy counter (NVML, mJ)"
    assert nv["energy_j"] == 650.0 and nv["power_w_mean"] == 650.0
    assert nv["joules_per_token"] == 0.5 and nv["tokens_per_joule"] == 2.0
    assert d["sm_clock_busy_mhz"] == {"mean": 1867.5, "min": 1755, "max": 1980}
    assert d["sm_clock_mhz"]["min"] == 345
    assert d["clock_event_reasons"] == {"GpuIdle": 1, "SwPowerCap": 1}
    assert d["power_w"] == {"mean": pytest.approx(1430 / 3), "min": 80.0, "max": 700.0}
    assert len(nvidia.warnings({"nvidia": nv})) == 2
    span = Span(10.0, 11.0, rows, before, tokens=1300)
    assert nvidia.gpu_memory(nv, span) == {
        "peak_bytes": 2_000_000_000,
        "method": "NVML per-process used memory, peak of the samples"}
    no_proc = [(t, {"nvidia": [{**r["nvidia"][0], "proc_mem": None}]}) for t, r in rows]
    nv2 = src.summarize(Span(10.0, 11.0, no_proc, before, tokens=1300))
    mem = nvidia.gpu_memory(nv2, span)
    assert (mem["peak_bytes"], mem["before_bytes"], mem["delta_bytes"]) == (
        3_000_000_000, 2_000_000_000, 1_000_000_000)
    assert mem["method"].startswith("device used memory (all processes")


def test_two_gpus_are_summed_sample_by_sample() -> None:
    """HAND-WRITTEN readings of two GPUs in the shape NvidiaSource.read takes them (no GPU
    here): each device's own figures, their energy shares, and power and used memory
    summed per sample (a sample where one GPU gave no power is left out of the sum)."""
    src = nvidia.NvidiaSource(lambda: {1})
    src.devices = [{"index": i, "name": "NVIDIA GeForce RTX 3090", "uuid": f"GPU-{i}",
                    "max_sm_clock_mhz": 1695, "power_limit_w": 350.0} for i in (0, 1)]

    def two(mw0: int | None, mj0: int, mw1: int, mj1: int, used0: int, used1: int) -> list:
        return [_nv(90, 1695, mw0, mj0, used=used0)[0], _nv(80, 1695, mw1, mj1, used=used1)[0]]

    before = {"nvidia": two(30_000, 0, 30_000, 0, 1_000, 1_000)}
    rows = [(1.0, {"nvidia": two(300_000, 1_000_000, 200_000, 2_000_000, 5_000, 7_000)}),
            (1.5, {"nvidia": two(None, 1_150_000, 210_000, 2_100_000, 6_000, 7_000)}),
            (2.0, {"nvidia": two(320_000, 1_300_000, 220_000, 2_200_000, 6_000, 8_000)})]
    nv = src.summarize(Span(1.0, 2.0, rows, before, tokens=100))
    d0, d1 = nv["devices"]
    assert (d0["energy_j"], d1["energy_j"]) == (300.0, 200.0)
    assert nv["energy_j"] == 500.0 and nv["joules_per_token"] == 5.0
    assert (d0["energy_share"], d1["energy_share"]) == (0.6, 0.4)
    total = nv["total"]
    assert total["gpus"] == 2 and total["energy_j"] == 500.0
    assert total["power_w"] == {"mean": 520.0, "min": 500.0, "max": 540.0}
    assert total["memory_used_bytes"] == {"mean": 13_000, "min": 12_000, "max": 14_000}


# --------------------------------------------------------------------------- RAPL

def _set(path: Path, value: int) -> None:
    """Replace a counter file at once, as the kernel's value changes (no half-written read)."""
    tmp = path.with_suffix(".new")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def _zone(root: Path, zone: str, name: str, uj: int, max_uj: int = 262_143_328_850) -> Path:
    d = root / zone
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def _powercap(root: Path) -> Path:
    """Laid out like /sys/class/powercap on a two-socket server."""
    (root / "intel-rapl").mkdir(parents=True)          # the control type: no energy_uj
    _zone(root, "intel-rapl:0", "package-0", 262_143_000_000)   # wraps during the test
    _zone(root, "intel-rapl:0:0", "dram", 5_000_000)
    _zone(root, "intel-rapl:1", "package-1", 1_000_000)
    _zone(root, "intel-rapl:1:0", "core", 500_000)
    _zone(root, "intel-rapl-mmio:0", "package-0", 7)   # another driver: not counted
    return root


def test_rapl_energy_with_wraparound_on_a_powercap_tree(tmp_path: Path) -> None:
    root = _powercap(tmp_path / "powercap")
    zones, reason = rapl_zones(root)
    assert reason is None
    assert [(z["id"], z["name"], z["package"]) for z in zones] == [
        ("intel-rapl:0", "package-0", True), ("intel-rapl:0:0", "dram", False),
        ("intel-rapl:1", "package-1", True), ("intel-rapl:1:0", "core", False)]
    sampler = Sampler(rapl_root=root, nvidia=False, powermetrics=False)
    with sampler:
        _wait_for_samples(sampler, 2)
        # package-0 passes its range (262,143,328,850 uJ) and starts again from 0
        _set(root / "intel-rapl:0" / "energy_uj", 671_150)
        _set(root / "intel-rapl:0:0" / "energy_uj", 7_000_000)
        _set(root / "intel-rapl:1" / "energy_uj", 31_000_000)
        _wait_for_samples(sampler, len(sampler.readings) + 1)
    tel = sampler.finish(tokens=100, seconds=1.0)
    rapl = tel["rapl"]
    by_zone = {z["zone"]: z["energy_j"] for z in rapl["zones"]}
    assert by_zone["intel-rapl:0"] == pytest.approx(1.0)      # 328,850 + 671,150 uJ
    assert by_zone["intel-rapl:0:0"] == pytest.approx(2.0)
    assert by_zone["intel-rapl:1"] == pytest.approx(30.0)
    assert rapl["energy_j"] == pytest.approx(31.0)            # packages only
    assert rapl["joules_per_token"] == pytest.approx(0.31)
    assert rapl["tokens_per_joule"] == pytest.approx(100 / 31)
    assert rapl["power_w_mean"] == pytest.approx(31.0 / tel["window_s"])


def test_rapl_absent(tmp_path: Path) -> None:
    assert rapl_zones(tmp_path) == ([], f"absent: no intel-rapl:* zone with energy_uj under "
                                        f"{tmp_path}")
    tel = Sampler(rapl_root=tmp_path / "nothing", nvidia=False, powermetrics=False).start().finish()
    assert tel["rapl"] == {"unavailable": "absent: no intel-rapl:* zone with energy_uj under "
                                          f"{tmp_path / 'nothing'}"}


def test_rapl_not_readable_says_permission() -> None:
    """energy_uj is root-only on current kernels. As root, the check runs in a child that
    has given up the capabilities that let root read any file."""
    root = Path(tempfile.mkdtemp(prefix="powercap-"))
    try:
        root.chmod(0o755)
        _zone(root, "intel-rapl:0", "package-0", 1000).joinpath("energy_uj").chmod(0)
        code = ("import sys; from pathlib import Path; from benchkit.run.telemetry.rapl import "
                f"rapl_zones; print(rapl_zones(Path({str(root)!r}))[1])")
        cmd = [sys.executable, "-c", code]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root and setpriv (util-linux) is not installed")
            caps = "-dac_override,-dac_read_search"
            cmd = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        shutil.rmtree(root)
    assert out.startswith("not readable: permission denied on ")
    assert "intel-rapl:0/energy_uj" in out


# --------------------------------------------------------------------------- powermetrics

# HAND-WRITTEN, not recorded: two samples in the plist format that
# `powermetrics --samplers cpu_power,gpu_power -i 100 -f plist` is documented to write on
# Apple Silicon (one plist per sample, NUL-separated; power in mW under `processor`),
# then the start of a third sample still being written. Not run on a Mac here.
_PLIST_SAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
<key>is_delta</key><true/>
<key>elapsed_ns</key><integer>{ns}</integer>
<key>hw_model</key><string>Mac15,9</string>
<key>processor</key>
<dict>
<key>clusters</key><array></array>
<key>cpu_energy</key><integer>{cpu_mj}</integer>
<key>cpu_power</key><real>{cpu}</real>
<key>gpu_power</key><real>{gpu}</real>
<key>ane_power</key><real>0.0</real>
<key>combined_power</key><real>{combined}</real>
</dict>
<key>gpu</key>
<dict>
<key>freq_hz</key><real>1398</real>
<key>idle_ratio</key><real>0.05</real>
<key>gpu_energy</key><integer>{gpu_mj}</integer>
</dict>
</dict>
</plist>
"""

_TEXT_SAMPLE = """Machine model: Mac15,9
OS version: 23E224

*** Sampled system activity (Tue Apr 16 10:00:00 2024 +0200) (100.52ms elapsed) ***

**** Processor usage ****

E-Cluster HW active frequency: 1020 MHz
P-Cluster HW active frequency: 3504 MHz

CPU Power: 4210 mW
GPU Power: 11020 mW
ANE Power: 0 mW
Combined Power (CPU + GPU + ANE): 15230 mW

**** GPU usage ****

GPU HW active frequency: 1398 MHz
GPU idle residency:   5.00%
GPU Power: 11020 mW

*** Sampled system activity (Tue Apr 16 10:00:00 2024 +0200) (99.48ms elapsed) ***

**** Processor usage ****

CPU Power: 3900 mW
GPU Power: 10500 mW
ANE Power: 0 mW
Combined Power (CPU + GPU + ANE): 14400 mW
"""


def _plist(ns: int, cpu: float, gpu: float) -> bytes:
    return _PLIST_SAMPLE.format(ns=ns, cpu=cpu, gpu=gpu, combined=cpu + gpu,
                                cpu_mj=int(cpu * ns / 1e9), gpu_mj=int(gpu * ns / 1e9)).encode()


def test_powermetrics_plist_stream_is_split_and_parsed() -> None:
    stream = (_plist(100_000_000, 4000.0, 11000.0) + b"\x00"
              + _plist(100_000_000, 3000.0, 9000.0) + b"\x00" + _plist(1, 1.0, 1.0)[:120])
    docs, rest = split_plist_stream(stream)
    assert len(docs) == 2 and rest.startswith(b"<?xml")
    first = parse_powermetrics_plist(docs[0])
    assert first == {"elapsed_s": 0.1, "watts": {"cpu": 4.0, "gpu": 11.0, "ane": 0.0,
                                                 "combined": 15.0}}
    assert parse_powermetrics_plist(rest) is None          # an unfinished document
    samples = [(10.1, first), (10.2, parse_powermetrics_plist(docs[1]))]
    # window 10.05 .. 10.2: half of the first interval, all of the second
    joules = powermetrics_energy(samples, 10.05, 10.2)
    assert joules is not None
    assert joules["combined"] == pytest.approx(15.0 * 0.05 + 12.0 * 0.1)
    assert joules["gpu"] == pytest.approx(11.0 * 0.05 + 9.0 * 0.1)
    assert powermetrics_energy(samples, 11.0, 12.0) is None


def test_powermetrics_text_output_is_parsed() -> None:
    samples = parse_powermetrics_text(_TEXT_SAMPLE)
    assert samples == [
        {"elapsed_s": pytest.approx(0.10052),
         "watts": {"cpu": 4.21, "gpu": 11.02, "ane": 0.0, "combined": 15.23}},
        {"elapsed_s": pytest.approx(0.09948),
         "watts": {"cpu": 3.9, "gpu": 10.5, "ane": 0.0, "combined": 14.4}}]


@pytest.mark.skipif(sys.platform == "darwin", reason="on a Mac powermetrics may be usable")
def test_powermetrics_unavailable_off_macos() -> None:
    sampler = Sampler(nvidia=False)
    tel = sampler.start().finish()
    assert tel["powermetrics"] == {
        "unavailable": f"not macOS ({sys.platform}): powermetrics is Apple's tool"}


# --------------------------------------------------------------------------- report

_SUITE = """\
name: telemetry-test
models:
  - path: {model}
engine:
  n_gpu_layers: 0
  n_threads: 1
workloads:
  - tg: 8
warmup: 1
iterations: 2
"""


def _real_telemetry(smollm2_model: Path) -> dict:
    """Telemetry of a real tg8 on SmolLM2, measured here (so the section test does not
    depend on how the runner records it)."""
    from benchkit.engines.llama_cpp.native import LlamaModel
    from benchkit.engines.llama_cpp.options import LlamaCppOptions

    with LlamaModel(smollm2_model, LlamaCppOptions(n_threads=1, n_gpu_layers=0)) as model:
        model.new_context(16)
        sampler = Sampler()
        with sampler:
            model.time_tg(8)                    # the warmup
            sampler.begin_timed()
            seconds = sum(model.time_tg(8) for _ in range(2))
        return sampler.finish(tokens=16, seconds=seconds)


def _md_tables(text: str) -> list[list[list[str]]]:
    from markdown_it import MarkdownIt

    tables: list[list[list[str]]] = []
    rows: list[list[str]] | None = None
    row: list[str] = []
    for tok in MarkdownIt().enable("table").parse(text):
        if tok.type == "table_open":
            rows = []
        elif tok.type == "table_close" and rows is not None:
            tables.append(rows)
            rows = None
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and rows is not None:
            rows.append(row)
        elif tok.type == "inline" and rows is not None:
            row.append(tok.content)
    return tables


def test_report_section_shows_measured_figures_and_what_was_not_measured(
        smollm2_model: Path, tmp_path: Path) -> None:
    suite = tmp_path / "telemetry-test.yaml"
    suite.write_text(_SUITE.format(model=smollm2_model), encoding="utf-8")
    proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    (result,) = (tmp_path / "results").glob("*.json")
    doc = json.loads(result.read_text(encoding="utf-8"))
    tel = _real_telemetry(smollm2_model)
    for case in doc["cases"]:
        case["telemetry"] = tel
    result.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "report"
    proc = run_benchkit("report", str(result), "-o", str(out))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Power, energy and utilisation" in md
    power, usage = [t for t in _md_tables(md) if t[0][:2] == ["Configuration", "Test"]
                    and ("GPU power" in t[0] or "CPU utilisation" in t[0])]
    assert tel["window"] == "timed iterations"
    assert power[1][1] == "tg8" and power[1][3] == "—"          # no GPU power here
    assert usage[1][3] == f"{tel['cpu']['percent']:.0f}%"
    from benchkit.core.units import fmt_bytes

    assert usage[1][7] == fmt_bytes(tel["memory"]["peak_rss_bytes"])
    assert f"NVIDIA GPU (NVML): {tel['nvidia']['unavailable']} (1 case)" in md
    assert f"CPU energy (RAPL): {tel['rapl']['unavailable']}" in md
    html = out.with_suffix(".html").read_text(encoding="utf-8")
    assert '<section id="power-energy-and-utilisation">' in html

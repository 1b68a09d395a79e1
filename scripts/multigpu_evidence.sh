#!/usr/bin/env bash
# Several GPUs in one machine: llama-bench pp512 / tg128 at each split mode on 1..N GPUs,
# with every GPU's power sampled by nvidia-smi, on shape-exact stand-ins of LLaMA-2 7B and
# of a 70B-class dense and a 70B-class mixture-of-experts model.
#
#   scripts/multigpu_evidence.sh BUILD_DIR MODEL_DIR OUT
#
# BUILD_DIR  a CUDA build of llama.cpp (its bin/llama-bench), e.g. the build tree of
#            `scripts/cuda_evidence.sh build` or of scripts/build_llama_cuda.sh
# MODEL_DIR  where the stand-ins are (made here with `benchkit models synth` when absent:
#            needs benchkit's Python dependencies and llama-cpp-python for the quantizer)
# OUT        what this writes: multigpu.jsonl (one line per llama-bench test, with the GPU
#            count, split mode, devices and each GPU's power and energy), the raw llama-bench
#            jsonl and nvidia-smi samples of every run, failures.jsonl, the machine's GPUs
#            and topology, and README.md with every command as it ran
#
# With one GPU it measures each split mode on that GPU (none, layer, row, tensor with
# -dev CUDA0), and, where the build knows GGML_CUDA_DEVICES, layer and row over two
# virtual devices of the one GPU (the split's own cost without a link; said so per line).
# With N GPUs: none once (the main GPU), layer on 1..N GPUs, row and tensor on 2..N
# (-dev CUDA0/CUDA1/...).
#
# Knobs (environment): MODELS (preset:quant list; default "llama-2-7b:Q4_0
# llama-3.3-70b:Q4_K_M gpt-oss-120b:MXFP4"), SPLIT_MODES (default "none layer row tensor"),
# REPS (llama-bench -r, default 5), FILL (synth's --fill: normal, or zeros where the disk
# cannot hold a 70B F16 source of ~141 GB beside the output), SAMPLE_MS (default 100).
# A model that does not fit a GPU count fails that run: the failure is recorded in
# failures.jsonl with llama-bench's last lines and the next run goes on.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 3 ] || { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
build=$1 models=$2 out=$3
bench=$build/bin/llama-bench
[ -x "$bench" ] || bench=$build/llama-bench
[ -x "$bench" ] || { echo "error: no llama-bench in $build/bin or $build" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: an NVIDIA machine is needed" >&2; exit 2; }
mkdir -p "$models" "$out/raw"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
reps=${REPS:-5} sample_ms=${SAMPLE_MS:-100}
read -r -a specs <<< "${MODELS:-llama-2-7b:Q4_0 llama-3.3-70b:Q4_K_M gpt-oss-120b:MXFP4}"
read -r -a modes <<< "${SPLIT_MODES:-none layer row tensor}"
readme=$out/README.md
: > "$out/multigpu.jsonl"; : > "$out/failures.jsonl"

note() { printf '%s\n' "$*" >> "$readme"; }
ran() {   # run a command, and write it to the README as it ran
  note '```'; note "$(printf '%q ' "$@")"; note '```'
  "$@"
}

# --- the machine ---------------------------------------------------------------------------
{
  echo "# Multi-GPU llama.cpp evidence"
  echo
  echo "Made by \`scripts/multigpu_evidence.sh $build $models $out\` on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
  echo "Every figure is llama-bench's own (samples_ns, its clock); power is nvidia-smi's"
  echo "power.draw sampled every ${sample_ms} ms per GPU over the run."
  echo
} > "$readme"
nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,power.limit,clocks.max.sm,pcie.link.gen.max,pcie.link.width.max,driver_version \
  --format=csv > "$out/gpus.csv"
nvidia-smi topo -m > "$out/topology.txt" 2>&1 || echo "nvidia-smi topo -m failed" > "$out/topology.txt"
"$bench" --list-devices > "$out/devices.txt" 2>&1 || true
"$bench" --help > "$out/llama-bench-help.txt" 2>&1 || true
n=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
note "GPUs: $n (gpus.csv; how they are linked: topology.txt; llama.cpp's names: devices.txt)."
note ""; note '```'; cat "$out/gpus.csv" >> "$readme"; note '```'; note ""

# --- the stand-ins ------------------------------------------------------------------------
files=()
for spec in "${specs[@]}"; do
  preset=${spec%%:*} quant=${spec##*:}
  file=$models/$preset-$quant.gguf
  if [ ! -s "$file" ]; then
    note "Stand-in $preset $quant:"
    ran python3 -m benchkit.cli.main models synth "$preset" --quant "$quant" -o "$file" \
      --fill "${FILL:-normal}" --no-progress || { echo "synth $spec failed" >&2; continue; }
  fi
  files+=("$file")
done

# --- one llama-bench run with every GPU's power sampled --------------------------------------
measure() {   # NAME GPUS SPLIT DEVICES VIRTUAL MODEL TEST-ARGS...
  local name=$1 gpus=$2 sm=$3 devs=$4 virtual=$5 model=$6; shift 6
  local raw=$out/raw/$name
  nvidia-smi --query-gpu=timestamp,index,power.draw,memory.used,clocks.sm,utilization.gpu \
    --format=csv,noheader,nounits -lms "$sample_ms" > "$raw.power.csv" 2>/dev/null &
  local sampler=$!
  local t0 t1 rc
  t0=$(date +%s.%N)
  if [ "$virtual" = 1 ]; then
    note "($name: two virtual CUDA devices on one GPU, GGML_CUDA_DEVICES=2)"
    ran env GGML_CUDA_DEVICES=2 "$bench" -m "$model" "$@" -ngl 99 -r "$reps" -o jsonl -sm "$sm" \
      -dev "$devs" > "$raw.jsonl" 2> "$raw.stderr"
  else
    ran "$bench" -m "$model" "$@" -ngl 99 -r "$reps" -o jsonl -sm "$sm" -dev "$devs" \
      > "$raw.jsonl" 2> "$raw.stderr"
  fi
  rc=$?
  t1=$(date +%s.%N)
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  python3 - "$name" "$gpus" "$sm" "$devs" "$virtual" "$rc" "$t0" "$t1" "$raw" "$out" <<'PY'
import csv, datetime as dt, json, sys
name, gpus, sm, devs, virtual, rc, t0, t1, raw, out = sys.argv[1:]
t1 = float(t1)
def when(stamp):   # nvidia-smi's "2026/12/01 17:13:35.123", local time
    return dt.datetime.strptime(stamp.strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
samples = []
try:
    for row in csv.reader(open(raw + ".power.csv")):
        try:
            samples.append((when(row[0]), int(row[1]), float(row[2]), float(row[3])))
        except (ValueError, IndexError):
            pass
except OSError:
    pass
rows = [json.loads(l) for l in open(raw + ".jsonl") if l.strip().startswith("{")] if int(rc) == 0 else []
if int(rc) != 0 or not rows:
    tail = open(raw + ".stderr", errors="replace").read().strip().splitlines()[-5:]
    with open(out + "/failures.jsonl", "a") as f:
        f.write(json.dumps({"run": name, "gpus": int(gpus), "split_mode": sm, "devices": devs,
                            "virtual_devices": virtual == "1", "exit": int(rc),
                            "stderr_tail": tail}) + "\n")
    print(f"{name}: llama-bench failed (exit {rc}): {' | '.join(tail)[-300:]}")
    sys.exit(0)
with open(out + "/multigpu.jsonl", "a") as f:
    for r in rows:
        # the timed repetitions ran last: the window is their summed time before the exit
        window = sum(r["samples_ns"]) / 1e9
        lo = t1 - window
        per_gpu = {}
        for t, idx, watts, mib in samples:
            if lo <= t <= t1:
                per_gpu.setdefault(idx, []).append((watts, mib))
        gpus_out = [{"index": i, "power_w_mean": sum(w for w, _ in v) / len(v),
                     "energy_j": sum(w for w, _ in v) / len(v) * window,
                     "memory_used_mib_max": max(m for _, m in v), "samples": len(v)}
                    for i, v in sorted(per_gpu.items())]
        tokens = (r["n_prompt"] + r["n_gen"]) * len(r["samples_ns"])
        energy = sum(g["energy_j"] for g in gpus_out) if gpus_out else None
        test = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
        f.write(json.dumps({"run": name, "test": test, "gpus": int(gpus), "split_mode": sm,
                            "devices": devs, "virtual_devices": virtual == "1",
                            "model": r.get("model_filename"), "model_type": r.get("model_type"),
                            "avg_ts": r["avg_ts"], "stddev_ts": r["stddev_ts"],
                            "reps": len(r["samples_ns"]), "clock": "llama-bench samples_ns",
                            "power_window_s": window, "gpus_power": gpus_out,
                            "power_w_sum": sum(g["power_w_mean"] for g in gpus_out) or None,
                            "joules_per_token": energy / tokens if energy else None,
                            "power_method": "nvidia-smi power.draw, mean of the samples in the "
                                            "last sum(samples_ns) before llama-bench exited",
                            "llama_bench": r}) + "\n")
        print(f"{name} {test}: {r['avg_ts']:.2f} ± {r['stddev_ts']:.2f} tok/s "
              f"({len(r['samples_ns'])} reps, llama-bench's clock)"
              + (f", {sum(g['power_w_mean'] for g in gpus_out):.0f} W over {len(gpus_out)} GPUs"
                 if gpus_out else ""))
PY
}

devices_of() { local k=$1 i list=CUDA0; for ((i = 1; i < k; i++)); do list="$list/CUDA$i"; done; echo "$list"; }

for model in "${files[@]}"; do
  base=$(basename "$model" .gguf)
  note ""; note "## $base"; note ""
  for sm in "${modes[@]}"; do
    for k in $(seq 1 "$n"); do
      [ "$sm" = none ] && [ "$k" -gt 1 ] && continue     # none uses the main GPU only
      [ "$sm" != none ] && [ "$k" -eq 1 ] && [ "$n" -gt 1 ] && [ "$sm" != layer ] && continue
      for test in "-p 512 -n 0" "-p 0 -n 128"; do
        # shellcheck disable=SC2086
        measure "$base-sm$sm-${k}gpu-$(echo $test | tr -d ' -')" "$k" "$sm" "$(devices_of "$k")" 0 \
          "$model" $test
      done
    done
    if [ "$n" -eq 1 ] && [ "$sm" != none ] &&
       [ "$(GGML_CUDA_DEVICES=2 "$bench" --list-devices 2>/dev/null | grep -c '^ *CUDA[0-9]')" -ge 2 ]; then
      for test in "-p 512 -n 0" "-p 0 -n 128"; do
        # shellcheck disable=SC2086
        measure "$base-sm$sm-2virtual-$(echo $test | tr -d ' -')" 2 "$sm" CUDA0/CUDA1 1 "$model" $test
      done
    fi
  done
done

# --- benchkit in process: llama.cpp's per-device placement and NVML per GPU -----------------
# Where llama-cpp-python here is a CUDA build: the first stand-in on 1..N GPUs at split mode
# layer, through `benchkit run` (placement per device, telemetry per GPU) and its report.
if [ "${#files[@]}" -gt 0 ] && python3 -c "import llama_cpp, sys
sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)" 2>/dev/null; then
  suite=$out/multigpu-suite.yaml
  {
    echo "name: multigpu-in-process"
    echo "description: the split over 1..$n GPUs in process, per-device placement and power"
    echo "models: [{path: ${files[0]}}]"
    echo "engine:"
    echo "  n_gpu_layers: -1"
    echo "  split_mode: layer"
    printf '  devices: ['
    for k in $(seq 1 "$n"); do printf '[%s]%s' "$(devices_of "$k" | tr / ,)" "$([ "$k" -lt "$n" ] && echo ', ')"; done
    echo ']'
    echo "workloads: [{pp: 512}, {tg: 128}]"
    echo "warmup: 2"
    echo "iterations: 5"
  } > "$suite"
  note ""; note "## benchkit in process"; note ""
  ran python3 -m benchkit.cli.main run "$suite" -o "$out/benchkit" --no-progress || true
  ran python3 -m benchkit.cli.main report "$out/benchkit" -o "$out/benchkit/report" --format both || true
else
  note ""; note "(benchkit in process skipped: llama-cpp-python here is not a GPU build.)"
fi

# --- what it found -------------------------------------------------------------------------
note ""; note "## Results"; note ""
python3 - "$out" >> "$readme" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + "/multigpu.jsonl")]
print("| model | test | GPUs | split | tok/s (llama-bench, mean ± sd) | × 1 GPU | GPU W | J/token |")
print("|---|---|---:|---|---:|---:|---:|---:|")
one = {(r["model"], r["test"]): r["avg_ts"] for r in rows if r["gpus"] == 1 and r["split_mode"] == "none"}
for r in rows:
    base = one.get((r["model"], r["test"]))
    label = f"{r['gpus']}{' (virtual)' if r['virtual_devices'] else ''}"
    jpt = f"{r['joules_per_token']:.3g}" if r["joules_per_token"] else "—"
    watts = f"{r['power_w_sum']:.0f}" if r["power_w_sum"] else "—"
    ratio = f"{r['avg_ts'] / base:.2f}x" if base else "—"
    print(f"| {r['model']} | {r['test']} | {label} | {r['split_mode']} | "
          f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f} ({r['reps']} reps) | {ratio} | "
          f"{watts} | {jpt} |")
fails = [json.loads(l) for l in open(out + "/failures.jsonl")]
if fails:
    print("\nRuns that failed (failures.jsonl):\n")
    for f in fails:
        print(f"- {f['run']}: exit {f['exit']}: {' | '.join(f['stderr_tail'])[-200:]}")
PY
note ""
note "Project each from its one-GPU figure: \`python3 -m benchkit.cli.main project --anchor CHIP"
note "--tg TG --pp PP --preset PRESET --quant QUANT --machine NxCHIP --split-mode MODE\`."
echo "wrote $out/multigpu.jsonl and $readme"

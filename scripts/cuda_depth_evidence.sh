#!/usr/bin/env bash
# Context depth of models with and without sliding-window attention on one NVIDIA GPU: how the
# files under reports/nvidia/v3-depth/ were made. Needs an NVIDIA GPU, nvcc, cmake, ninja and
# benchkit's Python dependencies; no network once the inputs are unpacked.
#
#   scripts/cuda_depth_evidence.sh build SDIST_TGZ WORK [WHEEL_DIR]
#       llama.cpp from the llama-cpp-python source distribution (SDIST_TGZ) with CUDA for sm_90
#       and shared libraries: llama-bench, and the libraries under WORK/site for
#       llama-cpp-python's binding (the stand-ins' quantizer). WHEEL_DIR: wheels of benchkit's
#       and llama-cpp-python's dependencies to install offline (diskcache among them).
#   scripts/cuda_depth_evidence.sh synth WORK PRESET:QUANT ...
#       the shape-exact stand-ins (`benchkit models synth`, llama.cpp's quantizer of this build),
#       `benchkit models inspect` of each into WORK/inspect-PRESET.txt.
#   scripts/cuda_depth_evidence.sh depth WORK OUT [PRESET:QUANT ...]
#       llama-bench pp512 / tg128 at depth 0, 4096, 16384 and 32768 (DEPTHS), all layers on the
#       CUDA device, flash attention on, REPS repetitions (default 3): default qwen3-8b:Q4_K_M
#       (every layer attends to the whole context), gemma-3-12b:Q4_K_M (5 of 6 layers in a
#       1024-token window) and gpt-oss-20b:MXFP4 (every other layer in a 128-token window).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=$1
shift

py_env() {
  export PYTHONPATH="$work/site:$work/deps:$repo${PYTHONPATH:+:$PYTHONPATH}"
  export BENCHKIT_CACHE="$work/cache"
}
bk() { python3 -m benchkit.cli.main "$@"; }

case "$stage" in
  build)
    tgz=$1 work=$2 wheels=${3:-}
    mkdir -p "$work" && work=$(cd "$work" && pwd)
    if [ -n "$wheels" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/deps" "$wheels"/*.whl
    fi
    mkdir -p "$work/src"
    flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
           -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
           -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
           -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON)
    tar xzf "$tgz" -C "$work/src"
    sdist=$(ls -d "$work/src"/*/ | head -1)
    [ -n "${LLAMA_BUILD_COMMIT:-}" ] && flags+=(-DLLAMA_BUILD_COMMIT="$LLAMA_BUILD_COMMIT")
    [ -n "${LLAMA_BUILD_NUMBER:-}" ] && flags+=(-DLLAMA_BUILD_NUMBER="$LLAMA_BUILD_NUMBER")
    cmake -S "$sdist/vendor/llama.cpp" -B "$work/build" "${flags[@]}" > "$work/configure.log" 2>&1 ||
      { tail -30 "$work/configure.log"; exit 1; }
    grep -E "CUDA Toolkit found|CUDA found" "$work/configure.log" || true
    cmake --build "$work/build" --target llama-bench > "$work/build.log" 2>&1 ||
      { grep -E "error|Error" "$work/build.log" | head -20; tail -20 "$work/build.log"; exit 1; }
    # llama-cpp-python's binding over this tree's libraries: the stand-ins' quantizer
    mkdir -p "$work/site/llama_cpp/lib"
    cp -r "$sdist/llama_cpp/." "$work/site/llama_cpp/"
    cp -P "$work/build/bin/"*.so* "$work/site/llama_cpp/lib/"
    "$work/build/bin/llama-bench" --list-devices
    ;;
  synth)
    work=$(cd "$1" && pwd); shift
    py_env
    for spec in "$@"; do
      echo "== synth $spec $(date -u +%H:%M:%S)"
      bk models inspect --no-sha256 "$(bk models synth "${spec%%:*}" --quant "${spec##*:}" --no-progress)" \
        > "$work/inspect-${spec%%:*}.txt"
    done
    ;;
  depth)
    work=$(cd "$1" && pwd) out=$2; shift 2
    mkdir -p "$out"
    py_env
    models=("$@")
    [ ${#models[@]} -gt 0 ] || models=(qwen3-8b:Q4_K_M gemma-3-12b:Q4_K_M gpt-oss-20b:MXFP4)
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit \
      --format=csv | tee "$out/gpu.csv"
    for spec in "${models[@]}"; do
      name=$(echo "${spec%%:*}-${spec##*:}" | tr 'A-Z' 'a-z')
      file=$(bk models synth "${spec%%:*}" --quant "${spec##*:}" --no-progress)
      cp "$work/inspect-${spec%%:*}.txt" "$out/" 2>/dev/null || true
      echo "== llama-bench $name depth $(date -u +%H:%M:%S)"
      "$work/build/bin/llama-bench" -m "$file" -ngl 99 -fa 1 -dev CUDA0 -p 512 -n 128 \
        -d "${DEPTHS:-0,4096,16384,32768}" -r "${REPS:-3}" -o jsonl > "$out/llama-bench-$name-depth.jsonl" ||
        echo "== llama-bench $name depth failed (exit $?); the next goes on"
    done
    ;;
  *)
    echo "usage: $0 build SDIST_TGZ WORK [WHEEL_DIR] | synth WORK SPEC... | depth WORK OUT [SPEC...]" >&2
    exit 2
    ;;
esac

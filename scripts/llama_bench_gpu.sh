#!/usr/bin/env bash
# llama-bench on an NVIDIA GPU, three ways: built by `benchkit engines build` with the CUDA
# wheel's backend, run as a benchkit engine beside the in-process one (depths 0, 1024, 4096),
# and its own -o json / -o sql files imported and taken by report, compare and project.
#
# Needs the CUDA build of llama-cpp-python made by `scripts/cuda_evidence.sh build SDIST WORK`
# (WORK/site), nvcc, cmake and ninja.
#
#   scripts/llama_bench_gpu.sh build WORK SDIST [ARCH]   llama-bench, llama-server and
#       llama-perplexity from the unpacked llama-cpp-python sdist SDIST (the one WORK/site was
#       built from), for sm_ARCH (default 90: H100/H200)
#   scripts/llama_bench_gpu.sh run   WORK OUT       the suite, the files, the imports, reports
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=$1
work=$(cd "$2" && pwd)
export PYTHONPATH="$work/site:$work/deps:$repo${PYTHONPATH:+:$PYTHONPATH}"
export BENCHKIT_CACHE="$work/cache"
export LD_LIBRARY_PATH="$work/site/llama_cpp/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bk() { python3 -m benchkit.cli.main "$@"; }

case "$stage" in
  build)
    sdist=$(cd "$3" && pwd) arch=${4:-90}
    bk engines build --source "$sdist" --cmake-arg=-DCMAKE_CUDA_ARCHITECTURES="$arch"
    bk engines list
    ;;
  run)
    out=$3; mkdir -p "$out"
    lb=$(python3 -c "from benchkit.engines.llama_cpp.build import find_tool; print(find_tool('llama-bench'))")
    q4=$(bk models synth tinyllama-1.1b --quant Q4_K_M --no-progress)
    suite="$work/llama-bench-engines.yaml"
    cat > "$suite" <<YAML
name: llama-bench-engines-gpu
description: TinyLlama-1.1B Q4_K_M stand-in, in process and by llama-bench, all layers on the GPU
models:
  - path: $q4
engine:
  n_gpu_layers: -1
engines:
  - llama-cpp-python
  - {kind: llama-bench, binary: $lb}
workloads:
  - pp: 512
  - tg: 128
    depth: [0, 1024, 4096]
warmup: 3
iterations: 10
YAML
    bk run "$suite" -o "$out" --no-progress
    bk report "$(ls -t "$out"/*llama-bench-engines-gpu*.json | head -1)" -o "$out/llama-bench-engines-gpu"
    "$lb" -m "$q4" -p 512 -n 128 -ngl 99 -r 5 -o json > "$out/llama-bench-h200.json"
    "$lb" -m "$q4" -p 512 -n 128 -ngl 99 -r 5 -o sql > "$out/llama-bench-h200.sql"
    mapfile -t imported < <(bk import "$out/llama-bench-h200.json" "$out/llama-bench-h200.sql" -o "$out/imported")
    bk report "${imported[@]}" -o "$out/imported-report"
    bk compare "${imported[0]}" "${imported[1]}"
    bk project --from "${imported[0]}" --chips nvidia | head -20
    ;;
  *)
    echo "usage: $0 build|run WORK [...]" >&2; exit 2 ;;
esac

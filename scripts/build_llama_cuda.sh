#!/usr/bin/env bash
# Build llama-cpp-python with CUDA from its source distribution, and llama-bench, llama-server and
# llama-perplexity from the very same llama.cpp source and build tree, so that every engine
# measures one build.
#
# Usage: scripts/build_llama_cuda.sh SOURCE_DIR PREFIX [CUDA_ARCHITECTURES]
#   SOURCE_DIR  an unpacked llama-cpp-python sdist (pip download llama-cpp-python==VERSION --no-binary :all:)
#   PREFIX      where to put site/ (the Python package, importable with PYTHONPATH=PREFIX/site)
#               and build/ (the CMake tree; build/bin/llama-bench, llama-server, llama-perplexity)
#   CUDA_ARCHITECTURES  e.g. 90 for H100/H200 (default), 89 for RTX 4090/L40S, 86 for RTX 3090
# Needs nvcc, cmake, ninja and scikit-build-core in the running Python.
set -euo pipefail
src=$(cd "$1" && pwd)
prefix=$2
arch=${3:-90}
build="$prefix/build"
mkdir -p "$prefix"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# A source tree without git history reports build "unknown": name it from the tree when given.
info=()
[ -n "${LLAMA_BUILD_COMMIT:-}" ] && info+=(-C cmake.define.LLAMA_BUILD_COMMIT="$LLAMA_BUILD_COMMIT")
[ -n "${LLAMA_BUILD_NUMBER:-}" ] && info+=(-C cmake.define.LLAMA_BUILD_NUMBER="$LLAMA_BUILD_NUMBER")

python3 -m pip install --no-build-isolation --no-deps --no-compile --upgrade --target "$prefix/site" "$src" \
  -C build-dir="$build" \
  -C cmake.define.GGML_CUDA=ON \
  -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$arch" \
  -C cmake.define.LLAVA_BUILD=OFF "${info[@]}"

# Reconfigure the same tree with the tools enabled and build the three tools: the ggml and llama
# objects are reused, not rebuilt.
cmake -S "$src" -B "$build" -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF >/dev/null
cmake --build "$build" --target llama-bench llama-server llama-perplexity llama-quantize
echo "python package:   $prefix/site/llama_cpp"
for t in llama-bench llama-server llama-perplexity; do echo "$t: $build/bin/$t"; done

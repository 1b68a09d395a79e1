#!/usr/bin/env bash
# Build llama-bench with llama.cpp's Vulkan backend from the llama.cpp source that a
# llama-cpp-python sdist vendors: the same source as scripts/build_llama_cuda.sh, so that a
# Vulkan and a CUDA measurement on one GPU compare kernels, not builds.
#
# Usage: scripts/build_llama_vulkan.sh SOURCE_DIR PREFIX
#   SOURCE_DIR  an unpacked llama-cpp-python sdist (its vendor/llama.cpp is built) or a
#               llama.cpp checkout
#   PREFIX      where the CMake tree goes; PREFIX/bin/llama-bench is the result (ggml and
#               llama linked in statically: one file that runs where libvulkan.so.1 and a
#               C++ runtime as new as the compiler's are installed)
# Environment:
#   GLSLC           the shader compiler (default: glslc on PATH)
#   VULKAN_INCLUDE  Vulkan headers, when the system's are older than the shaders need
#   JOBS            parallel jobs (default: all cores)
#
# Needs cmake, ninja, a C++17 compiler, the Vulkan loader's development files and a glslc
# whose glslang knows GL_KHR_cooperative_matrix, GL_NV_cooperative_matrix2 and
# GL_EXT_integer_dot_product (shaderc 2025 or newer). llama.cpp's CMake drops each matrix-core
# path that the compiler lacks and builds scalar shaders instead: a build without them measures
# other kernels than users' builds run, so this script stops when CMake reports one missing.
set -euo pipefail
src=$(cd "$1" && pwd)
prefix=$2
[ -d "$src/vendor/llama.cpp/ggml" ] && src="$src/vendor/llama.cpp"
glslc=${GLSLC:-$(command -v glslc || true)}
[ -n "$glslc" ] || { echo "build_llama_vulkan.sh: no glslc (set GLSLC)" >&2; exit 2; }
mkdir -p "$prefix"
build=$(cd "$prefix" && pwd)
args=(-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
      -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
      -DLLAMA_BUILD_SERVER=OFF -DVulkan_GLSLC_EXECUTABLE="$glslc")
[ -n "${VULKAN_INCLUDE:-}" ] && args+=(-DVulkan_INCLUDE_DIR="$VULKAN_INCLUDE")
[ -n "${LLAMA_BUILD_COMMIT:-}" ] && args+=(-DLLAMA_BUILD_COMMIT="$LLAMA_BUILD_COMMIT")
cmake -S "$src" -B "$build" -G Ninja "${args[@]}" | tee "$build/configure.log"
for ext in GL_KHR_cooperative_matrix GL_NV_cooperative_matrix2 GL_EXT_integer_dot_product; do
  if grep -q "$ext not supported by glslc" "$build/configure.log"; then
    echo "build_llama_vulkan.sh: $glslc lacks $ext; use a newer shaderc (GLSLC=...)" >&2
    exit 2
  fi
done
cmake --build "$build" --target llama-bench -j "${JOBS:-$(nproc)}"
"$glslc" --version | head -3
echo "llama-bench: $build/bin/llama-bench"

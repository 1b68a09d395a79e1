#!/usr/bin/env bash
# The host side of a machine that ran partly offloaded llama.cpp figures: system RAM read
# bandwidth with every core (scripts/host/bandwidth.c, OpenMP) and host-to-device copy
# bandwidth from pageable and pinned memory (scripts/host/link.cu, CUDA events), the PCIe
# link as the driver reports it, and the CPU. Writes OUT/host-evidence.txt; the figures go
# into the run folder's host.yaml (benchkit/projection/bench_runs.py reads it).
#
#   scripts/host_evidence.sh OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "## lscpu"; lscpu | grep -E "Model name|^CPU\(s\)|Socket|NUMA node\(s\)" || true
  echo "## nproc $(nproc)"
  echo "## memory"; grep MemTotal /proc/meminfo
  echo "## bandwidth.c (gcc -O3 -fopenmp -march=native)"
  gcc -O3 -fopenmp -march=native -o "$work/bandwidth" "$here/host/bandwidth.c"
  "$work/bandwidth"
  if command -v nvcc >/dev/null 2>&1; then
    echo "## link.cu (nvcc -O2)"
    nvcc -O2 -o "$work/link" "$here/host/link.cu"
    "$work/link"
    echo "## nvidia-smi PCIe link"
    nvidia-smi --query-gpu=name,pcie.link.gen.max,pcie.link.gen.current,pcie.link.width.max \
      --format=csv || true
  fi
} 2>&1 | tee "$out/host-evidence.txt"

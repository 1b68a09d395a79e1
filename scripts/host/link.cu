// Host-to-device copy bandwidth over the GPU's link: 1 GiB from pageable memory (what
// llama.cpp's copies of weights kept in system RAM use) and from pinned memory, best of 5,
// GB/s (10^9 bytes/s) by CUDA events. Built and run by scripts/host_evidence.sh.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

static float copy_gbs(void *src, void *dst, size_t n) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best = 0;
  for (int i = 0; i < 5; i++) {
    cudaEventRecord(a);
    cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    float gbs = n / (ms / 1e3) / 1e9;
    if (gbs > best) best = gbs;
  }
  return best;
}

int main() {
  const size_t n = (size_t)1 << 30;
  void *dev = nullptr, *pinned = nullptr;
  if (cudaMalloc(&dev, n) != cudaSuccess) return 1;
  void *pageable = malloc(n);
  memset(pageable, 1, n);
  cudaMallocHost(&pinned, n);
  memset(pinned, 1, n);
  printf("pageable_h2d_gbs %.1f\n", copy_gbs(pageable, dev, n));
  printf("pinned_h2d_gbs %.1f\n", copy_gbs(pinned, dev, n));
  cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  printf("device %s\n", p.name);
  return 0;
}

/* Read bandwidth of system RAM with every core the process may use: each OpenMP thread sums
 * its own slice of a 4 GiB array, 5 passes; prints the best pass in GB/s (10^9 bytes/s).
 * Built and run by scripts/host_evidence.sh. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  const size_t n = (size_t)1 << 29; /* 2^29 x 8 bytes = 4 GiB */
  uint64_t *a = malloc(n * sizeof *a);
  if (!a) return 1;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) a[i] = i;
  double best = 0;
  uint64_t sink = 0;
  for (int pass = 0; pass < 5; pass++) {
    double t0 = now();
    uint64_t sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += a[i];
    double dt = now() - t0;
    sink += sum;
    double gbs = n * sizeof *a / dt / 1e9;
    if (gbs > best) best = gbs;
  }
  printf("threads %d\nread_gbs %.1f\n(checksum %llu)\n", omp_get_max_threads(), best,
         (unsigned long long)(sink & 0xff));
  free(a);
  return 0;
}

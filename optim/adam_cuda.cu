#include <cstdint>

#include "core/cuda_launch.cuh"
#include "optim/adam_math.h"

namespace sieve::cuda {
namespace {

// p <- p - lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps), m, v the moving moments of g (torch.optim.Adam/AdamW)
__global__ void adam_update_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamStep s) {
  // p, g, m, v: (n). One read of p, g, m, v and one write of p, m, v per element (m, v not read on the first step).
  SIEVE_GRID_STRIDE(i, n) {
    const float mi = s.first ? 0.f : m[i];
    const float vi = s.first ? 0.f : v[i];
    const AdamElement r = adam_element(p[i], g[i], mi, vi, s);
    p[i] = r.param;
    m[i] = r.exp_avg;
    v[i] = r.exp_avg_sq;
  }
}

}  // namespace

void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, AdamStep step) {
  launch("adam_update_kernel", n, 256, adam_update_kernel, param, grad, exp_avg, exp_avg_sq, n, step);
}

}  // namespace sieve::cuda

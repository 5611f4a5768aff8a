#include <cstdint>

#include "core/cuda_launch.cuh"
#include "optim/sgd_math.h"

namespace sieve::cuda {
namespace {

// p <- p - lr d, d = nesterov ? g' + mu v : v, v <- mu v + g' (or g' first), g' = g + lambda p (torch.optim.SGD)
__global__ void sgd_update_kernel(float* p, const float* g, float* v, int64_t n, SgdStep s) {
  // p, g, v: (n); v null without momentum. One read of p, g, v and one write of p, v per element.
  if (s.lr_cell != nullptr) s.lr = *s.lr_cell;
  SIEVE_GRID_STRIDE(i, n) {
    const float vi = (v != nullptr && !s.first) ? v[i] : 0.f;
    const SgdElement r = sgd_element(p[i], g[i], vi, s);
    p[i] = r.param;
    if (v != nullptr) v[i] = r.momentum;
  }
}

}  // namespace

void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step) {
  launch("sgd_update_kernel", n, 256, sgd_update_kernel, param, grad, momentum, n, step);
}

}  // namespace sieve::cuda

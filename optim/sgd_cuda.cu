#include <cstdint>

#include "core/cuda_check.h"
#include "optim/sgd_math.h"

namespace sieve::cuda {
namespace {

// p <- p - lr d, d = nesterov ? g' + mu v : v, v <- mu v + g' (or g' first), g' = g + lambda p (torch.optim.SGD)
__global__ void sgd_update_kernel(float* p, const float* g, float* v, long long n, SgdStep s) {
  // p, g, v: (n); v null without momentum. One read of p, g, v and one write of p, v per element.
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float vi = (v != nullptr && !s.first) ? v[i] : 0.f;
    const SgdElement r = sgd_element(p[i], g[i], vi, s);
    p[i] = r.param;
    if (v != nullptr) v[i] = r.momentum;
  }
}

}  // namespace

void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step) {
  if (n == 0) return;
  sgd_update_kernel<<<blocks_for(n), 256, 0, stream()>>>(param, grad, momentum, n, step);
  SIEVE_CUDA_CHECK_LAUNCH("sgd_update");
}

}  // namespace sieve::cuda

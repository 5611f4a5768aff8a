#include <cstdint>

#include "core/cuda_launch.cuh"
#include "sampling/hutchinson_math.h"

namespace sieve::cuda {
namespace {

// z_i = ±1 from the top bit of Philox word i (Rademacher probe of Hutchinson's estimator, diag(H) = E[z ⊙ Hz])
__global__ void rademacher_kernel(float* z, int64_t n, uint64_t seed, uint64_t offset) {
  // z: (n)
  SIEVE_GRID_STRIDE(i, n)
    z[i] = rademacher_element(seed, offset, static_cast<uint64_t>(i));
}

// m <- β1 m + (1−β1) g, s <- β2 s + (1−β2) (z hz)², sum <- sum + z hz (Note [hutchinson moving averages])
__global__ void hutchinson_accumulate_kernel(const float* z, const float* hz, const float* g, int64_t n,
                                             HutchinsonStep step, float* m, float* s, float* sum) {
  // z, hz, g, m, s, sum: (n). Three reads and three read-writes per element.
  SIEVE_GRID_STRIDE(i, n) {
    const HutchinsonElement r = hutchinson_element(z[i], hz[i], g[i], m[i], s[i], sum[i], step);
    m[i] = r.grad_ema;
    s[i] = r.hess_sq_ema;
    sum[i] = r.diagonal_sum;
  }
}

// g = m / (1 − β1ᵗ), h = √(s / (1 − β2ᵗ)) + eps (bias-corrected averages of the quadratic model)
__global__ void hutchinson_moments_kernel(const float* m, const float* s, int64_t n, HutchinsonMoments c, float* g_out,
                                          float* h_out) {
  // m, s, g_out, h_out: (n)
  SIEVE_GRID_STRIDE(i, n) {
    g_out[i] = corrected_gradient(m[i], c);
    h_out[i] = corrected_hessian(s[i], c);
  }
}

}  // namespace

void rademacher_fill(float* z, int64_t n, uint64_t seed, uint64_t offset) {
  launch("rademacher_kernel", n, 256, rademacher_kernel, z, n, seed, offset);
}

void hutchinson_accumulate(const float* z, const float* hz, const float* grad, int64_t n, HutchinsonStep step,
                           float* grad_ema, float* hess_sq_ema, float* diagonal_sum) {
  launch("hutchinson_accumulate_kernel", n, 256, hutchinson_accumulate_kernel, z, hz, grad, n, step, grad_ema,
         hess_sq_ema, diagonal_sum);
}

void hutchinson_moments(const float* grad_ema, const float* hess_sq_ema, int64_t n, HutchinsonMoments m,
                        float* grad_out, float* hess_out) {
  launch("hutchinson_moments_kernel", n, 256, hutchinson_moments_kernel, grad_ema, hess_sq_ema, n, m, grad_out,
         hess_out);
}

}  // namespace sieve::cuda

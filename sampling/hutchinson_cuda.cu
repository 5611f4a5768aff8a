#include <cstdint>

#include "core/cuda_check.h"
#include "sampling/hutchinson_math.h"

namespace sieve::cuda {
namespace {

// z_i = ±1 from the top bit of Philox word i (Rademacher probe of Hutchinson's estimator, diag(H) = E[z ⊙ Hz])
__global__ void rademacher_kernel(float* z, long long n, unsigned long long seed, unsigned long long offset) {
  // z: (n)
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    z[i] = rademacher_element(seed, offset, static_cast<uint64_t>(i));
}

// m <- β1 m + (1−β1) g, s <- β2 s + (1−β2) (z hz)², sum <- sum + z hz (Note [hutchinson moving averages])
__global__ void hutchinson_accumulate_kernel(const float* z, const float* hz, const float* g, long long n,
                                             HutchinsonStep step, float* m, float* s, float* sum) {
  // z, hz, g, m, s, sum: (n). Three reads and three read-writes per element.
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const HutchinsonElement r = hutchinson_element(z[i], hz[i], g[i], m[i], s[i], sum[i], step);
    m[i] = r.grad_ema;
    s[i] = r.hess_sq_ema;
    sum[i] = r.diagonal_sum;
  }
}

// g = m / (1 − β1ᵗ), h = √(s / (1 − β2ᵗ)) + eps (bias-corrected averages of the quadratic model)
__global__ void hutchinson_moments_kernel(const float* m, const float* s, long long n, HutchinsonMoments c,
                                          float* g_out, float* h_out) {
  // m, s, g_out, h_out: (n)
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    g_out[i] = corrected_gradient(m[i], c);
    h_out[i] = corrected_hessian(s[i], c);
  }
}

}  // namespace

void rademacher_fill(float* z, int64_t n, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  rademacher_kernel<<<blocks_for(n), 256, 0, stream()>>>(z, n, seed, offset);
  SIEVE_CUDA_CHECK_LAUNCH("rademacher");
}

void hutchinson_accumulate(const float* z, const float* hz, const float* grad, int64_t n, HutchinsonStep step,
                           float* grad_ema, float* hess_sq_ema, float* diagonal_sum) {
  if (n == 0) return;
  hutchinson_accumulate_kernel<<<blocks_for(n), 256, 0, stream()>>>(z, hz, grad, n, step, grad_ema, hess_sq_ema,
                                                                    diagonal_sum);
  SIEVE_CUDA_CHECK_LAUNCH("hutchinson_accumulate");
}

void hutchinson_moments(const float* grad_ema, const float* hess_sq_ema, int64_t n, HutchinsonMoments m,
                        float* grad_out, float* hess_out) {
  if (n == 0) return;
  hutchinson_moments_kernel<<<blocks_for(n), 256, 0, stream()>>>(grad_ema, hess_sq_ema, n, m, grad_out, hess_out);
  SIEVE_CUDA_CHECK_LAUNCH("hutchinson_moments");
}

}  // namespace sieve::cuda

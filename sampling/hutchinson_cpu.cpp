#include "sampling/hutchinson.h"
#include "sampling/hutchinson_math.h"

namespace sieve::cpu {

void rademacher_fill(float* z, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) z[i] = rademacher_element(seed, offset, static_cast<uint64_t>(i));
}

void hutchinson_accumulate(const float* z, const float* hz, const float* grad, int64_t n, HutchinsonStep step,
                           float* grad_ema, float* hess_sq_ema, float* diagonal_sum) {
  for (int64_t i = 0; i < n; ++i) {
    const HutchinsonElement r =
        hutchinson_element(z[i], hz[i], grad[i], grad_ema[i], hess_sq_ema[i], diagonal_sum[i], step);
    grad_ema[i] = r.grad_ema;
    hess_sq_ema[i] = r.hess_sq_ema;
    diagonal_sum[i] = r.diagonal_sum;
  }
}

void hutchinson_moments(const float* grad_ema, const float* hess_sq_ema, int64_t n, HutchinsonMoments m,
                        float* grad_out, float* hess_out) {
  for (int64_t i = 0; i < n; ++i) {
    grad_out[i] = corrected_gradient(grad_ema[i], m);
    hess_out[i] = corrected_hessian(hess_sq_ema[i], m);
  }
}

}  // namespace sieve::cpu

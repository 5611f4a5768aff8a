// The per-element arithmetic of the Hutchinson estimator, shared by the CPU loops and the CUDA kernels (Note [one
// meaning] in core/host_device.h). Products and sums are rounded one by one (mul_add_unfused), so nvcc's contraction
// into fused multiply-adds cannot make the GPU differ from the CPU.
#pragma once

#include <math.h>

#include "core/host_device.h"
#include "core/philox.h"
#include "sampling/hutchinson.h"

namespace sieve {

// z_i = ±1 from the top bit of the i-th Philox word of (seed, offset).
SIEVE_HD float rademacher_element(uint64_t seed, uint64_t offset, uint64_t i) {
  return (philox_word(seed, offset, i) >> 31) ? 1.f : -1.f;
}

// β a + (1 − β) x, each product and the sum rounded separately.
SIEVE_HD float ema_element(float beta, float average, float x) {
  const float kept = beta * average;
  return mul_add_unfused(kept, 1.f - beta, x);
}

struct HutchinsonElement {
  float grad_ema;
  float hess_sq_ema;
  float diagonal_sum;
};

// One probe (Note [hutchinson moving averages] in sampling/hutchinson.h): d = z hz; m <- β1 m + (1 − β1) g;
// s <- β2 s + (1 − β2) d²; sum <- sum + d.
SIEVE_HD HutchinsonElement hutchinson_element(float z, float hz, float g, float m, float s, float sum,
                                              const HutchinsonStep& step) {
  const float d = z * hz;
  const float d2 = d * d;
  return {ema_element(step.beta1, m, g), ema_element(step.beta2, s, d2), sum + d};
}

SIEVE_HD float corrected_gradient(float m, const HutchinsonMoments& c) { return m / c.correction1; }
SIEVE_HD float corrected_hessian(float s, const HutchinsonMoments& c) { return sqrtf(s / c.correction2) + c.eps; }

}  // namespace sieve

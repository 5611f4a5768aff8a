// The per-element update of Adam and AdamW, shared by the CPU loop and the CUDA kernel (Note [one meaning]).
#pragma once

#include <math.h>

#include "core/host_device.h"
#include "optim/adam.h"

namespace sieve {

struct AdamElement {
  float param;
  float exp_avg;
  float exp_avg_sq;
};

// torch.optim.Adam/AdamW's _single_tensor_adam, in its order of operations: p <- decay p (AdamW);
// g <- g + l2 p (Adam); m <- m + (1 - beta1)(g - m) (lerp); v <- beta2 v + (1 - beta2) g g;
// p <- p - step_size m / (sqrt(v) / bias2_sqrt + eps).
SIEVE_HD AdamElement adam_element(float p, float g, float m, float v, const AdamStep& s) {
  if (s.decay != 1.f) p = p * s.decay;
  if (s.l2 != 0.f) g = g + s.l2 * p;
  m = m + s.one_minus_beta1 * (g - m);
  v = s.beta2 * v + s.one_minus_beta2 * (g * g);
  const float denom = sqrtf(v) / s.bias2_sqrt + s.eps;
  return {p - s.step_size * (m / denom), m, v};
}

}  // namespace sieve

// Per-element batch-norm arithmetic shared by the CPU and CUDA backends (Note [one meaning]). sqrtf and the
// division are correctly rounded on both (nvcc's defaults -prec-sqrt=true -prec-div=true), so equal statistics
// give equal bits.
#pragma once

#include <cstdint>

#include <math.h>

#include "core/host_device.h"

namespace sieve {

SIEVE_HD float bn_invstd(float var, float eps) { return 1.f / sqrtf(var + eps); }

SIEVE_HD float bn_xhat(float x, float mean, float invstd) { return (x - mean) * invstd; }

SIEVE_HD float bn_forward(float x, float mean, float invstd, float gamma, float beta) {
  return gamma * bn_xhat(x, mean, invstd) + beta;
}

// Note [batch-norm running statistics]: as torch.nn.BatchNorm2d, running = (1 - m) running + m batch, where the
// batch variance is the unbiased one (times count / (count - 1)) although normalisation used the biased one.
SIEVE_HD void bn_update_running(float* running_mean, float* running_var, float mean, float biased_var, int64_t count,
                                float momentum) {
  const float unbiased = biased_var * (static_cast<float>(count) / static_cast<float>(count - 1));
  *running_mean = (1.f - momentum) * *running_mean + momentum * mean;
  *running_var = (1.f - momentum) * *running_var + momentum * unbiased;
}

// d loss / d x. training (the statistics depend on x):
//   gamma invstd (dy - sum_dy / M - x_hat sum_dy_xhat / M);  evaluation (they do not): gamma invstd dy.
SIEVE_HD float bn_backward(float dy, float x, float mean, float invstd, float gamma, float sum_dy, float sum_dy_xhat,
                           float inv_count, bool training) {
  if (!training) return gamma * invstd * dy;
  const float xhat = bn_xhat(x, mean, invstd);
  return gamma * invstd * (dy - sum_dy * inv_count - xhat * (sum_dy_xhat * inv_count));
}

}  // namespace sieve

// Per-row softmax arithmetic shared by the CPU and CUDA backends (Note [one meaning]). Rows are
// max-shifted before exponentiation so that logits of any magnitude stay finite.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace sieve {

SIEVE_HD float row_max(const float* x, int64_t cols) {
  float m = x[0];
  for (int64_t j = 1; j < cols; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// log sum_j exp(x_j), computed as m + log sum_j exp(x_j - m).
SIEVE_HD float row_logsumexp(const float* x, int64_t cols) {
  const float m = row_max(x, cols);
  float s = 0.f;
  for (int64_t j = 0; j < cols; ++j) s += expf(x[j] - m);
  return m + logf(s);
}

// y = softmax(x) or log_softmax(x) of one row.
SIEVE_HD void softmax_row(const float* x, float* y, int64_t cols, bool log) {
  const float lse = row_logsumexp(x, cols);
  for (int64_t j = 0; j < cols; ++j) y[j] = log ? x[j] - lse : expf(x[j] - lse);
}

// softmax: gx_j = y_j (gy_j - sum_k gy_k y_k); log_softmax: gx_j = gy_j - exp(y_j) sum_k gy_k.
SIEVE_HD void softmax_row_backward(const float* y, const float* gy, float* gx, int64_t cols, bool log) {
  float s = 0.f;
  for (int64_t j = 0; j < cols; ++j) s += log ? gy[j] : gy[j] * y[j];
  for (int64_t j = 0; j < cols; ++j) gx[j] = log ? gy[j] - expf(y[j]) * s : y[j] * (gy[j] - s);
}

// Cross-entropy of one row: logsumexp(z) - z_label. An out-of-range label gives NaN (GPU labels are not
// checked on the host; the NaN makes the bad label visible in the loss).
SIEVE_HD float cross_entropy_row(const float* z, int32_t label, int64_t cols) {
  if (label < 0 || label >= cols) return NAN;
  return row_logsumexp(z, cols) - z[label];
}

// d loss / d z_j scaled by g: g (softmax(z)_j - [j == label]).
SIEVE_HD void cross_entropy_row_backward(const float* z, int32_t label, float g, float* gz, int64_t cols) {
  const float lse = row_logsumexp(z, cols);
  for (int64_t j = 0; j < cols; ++j) gz[j] = g * (expf(z[j] - lse) - (j == label ? 1.f : 0.f));
}

}  // namespace sieve

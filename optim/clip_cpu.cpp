#include <cmath>

#include "optim/clip.h"
#include "optim/clip_math.h"

namespace sieve::cpu {

void sum_squares_partials(const float* x, int64_t n, float* partials) {
  // Partial j holds the squares of elements j, j + kNormPartials, ... (the GPU's blocks split the work another
  // way; only the total is part of the contract), each accumulated in double.
  for (int64_t j = 0; j < kNormPartials; ++j) {
    double acc = 0.0;
    for (int64_t i = j; i < n; i += kNormPartials) acc += static_cast<double>(x[i]) * x[i];
    partials[j] = static_cast<float>(acc);
  }
}

void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm, float* scale) {
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) total += partials[i];
  *norm = static_cast<float>(std::sqrt(total));
  *scale = clip_coefficient(*norm, max_norm);
}

void scale_if_clipping(float* x, int64_t n, const float* scale) {
  const float c = *scale;
  if (!clip_applies(c)) return;
  for (int64_t i = 0; i < n; ++i) x[i] *= c;
}

}  // namespace sieve::cpu

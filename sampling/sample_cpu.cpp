// CPU reference of sampling by prefix sum and of τ: a sequential scan, then the shared per-draw search.
#include <cmath>

#include "sampling/sample.h"
#include "sampling/score_math.h"

namespace sieve::cpu {

void sample_with_replacement(const float* scores, int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                             float* prefix, int32_t* positions, float* weights) {
  float running = 0.f;
  for (int64_t i = 0; i < count; ++i) {
    SIEVE_CHECK(scores[i] >= 0.f && std::isfinite(scores[i]), "sample_with_replacement: score ", i, " is ",
                scores[i], ", expected a finite value >= 0");
    running += scores[i];
    prefix[i] = running;
  }
  draw_by_prefix_sum(scores, prefix, count, n, seed, offset, positions, weights);
}

void draw_by_prefix_sum(const float* scores, const float* prefix, int64_t count, int64_t n, uint64_t seed,
                        uint64_t offset, int32_t* positions, float* weights) {
  for (int64_t j = 0; j < n; ++j) {
    sieve::draw_by_prefix_sum(scores, prefix, count, seed, offset, j, positions + j, weights + j);
  }
}

void tau_estimate(const float* scores, int64_t count, float* tau) {
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    sum += scores[i];
    sum_sq += static_cast<double>(scores[i]) * scores[i];
  }
  *tau = tau_from_sums(sum, sum_sq, count);
}

}  // namespace sieve::cpu

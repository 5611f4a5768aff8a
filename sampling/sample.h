// Sampling with replacement in proportion to scores, with the unbiased re-weighting of importance sampling
// (Algorithm 1, lines 8-9, of Katharopoulos & Fleuret 2018), and the τ estimate of eq. 26 that decides when it pays.
#pragma once

#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"

namespace sieve {

struct WeightedSample {
  Tensor positions;  // int32 [n]: positions into the scored batch, in [0, B)
  Tensor weights;    // float32 [n]: (sum_j s_j / B) / s_i = 1 / (B g_i)
};

// n draws with replacement from scores [B] (float32, finite, >= 0) with P(i) = s_i / sum_j s_j, on the device of
// the scores (nothing is copied to the host). Uses n counters of `gen`, so the CPU and GPU draw the same uniforms;
// with integer-valued scores (exact prefix sums) they return the same positions. When every score is zero the
// draws are uniform with weight 1. Negative or non-finite scores are rejected on the CPU and undefined on the GPU.
WeightedSample sample_with_replacement(const Tensor& scores, int64_t n, Generator& gen);

// The same draws from scores whose inclusive prefix sum is already known (float32 [B], non-decreasing, on the
// scores' device): for a distribution that stays fixed over many draws, such as online batch selection's rank
// probabilities, whose prefix is summed once in double on the host. No scan per call, and the CPU and the GPU then
// search the same prefix and return the same positions.
WeightedSample sample_with_replacement(const Tensor& scores, const Tensor& prefix, int64_t n, Generator& gen);

// τ = sqrt(B sum s_i^2) / sum s_i for scores [B]: eq. 26 with g = s / sum(s) (derivation in sampling/score_math.h),
// the batch-size increase worth as much variance reduction as importance sampling by these scores. 1 when every
// score is zero, NaN when one is NaN or infinite. A 0-d float32 tensor on the device of the scores.
Tensor tau_estimate(const Tensor& scores);

// Backends. prefix is a workspace of `count` floats (the inclusive scan of the scores); draw j uses the Philox
// counter offset + j of `seed`. draw_by_prefix_sum takes the prefix as given.
namespace cpu {
void sample_with_replacement(const float* scores, int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                             float* prefix, int32_t* positions, float* weights);
void draw_by_prefix_sum(const float* scores, const float* prefix, int64_t count, int64_t n, uint64_t seed,
                        uint64_t offset, int32_t* positions, float* weights);
void tau_estimate(const float* scores, int64_t count, float* tau);
}  // namespace cpu
namespace cuda {
void sample_with_replacement(const float* scores, int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                             float* prefix, int32_t* positions, float* weights);
void draw_by_prefix_sum(const float* scores, const float* prefix, int64_t count, int64_t n, uint64_t seed,
                        uint64_t offset, int32_t* positions, float* weights);
void tau_estimate(const float* scores, int64_t count, float* tau);
}  // namespace cuda

}  // namespace sieve

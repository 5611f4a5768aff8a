// Per-element arithmetic of CREST's selection, shared by the CPU and CUDA backends (Note [one meaning] in
// core/host_device.h): the facility-location similarity and gain, the cluster of a row, and the two drop tests of one
// example's loss history. Internal to sampling/; public code includes facility_location.h and loss_history.h.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace sieve {

// s_ij = exp(-||x_i - x_j||_2 / d), the similarity of the CREST reference implementation (its distances divided by
// the feature width). In (0, 1]; the sum runs in index order, so s_ij == s_ji bit for bit. Computed in double and
// rounded once to float: CUDA's expf may differ from the host's by an ulp or two, which would let the CPU and GPU
// greedy part ways at a near tie; in double their results round to the same float but with probability ~2^-29.
SIEVE_HD float facility_similarity(const float* a, const float* b, int64_t dim) {
  double sq = 0.0;
  for (int64_t k = 0; k < dim; ++k) {
    const double diff = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    sq += diff * diff;
  }
  return static_cast<float>(exp(-sqrt(sq) / static_cast<double>(dim)));
}

// Note [exact gains]: the marginal gain of candidate j is sum_i max(0, s_ij - best_i), best_i = max_{l in S} s_il
// (0 for the empty S). Each term, a float in [0, 1], is truncated to a multiple of 2^-30 and summed as an int64:
// integer addition is associative, so the CPU's sequential sum, the GPU's tree of warp shuffles and the lazy greedy's
// recomputations all give the same gain bit for bit from the same similarities, the greedy order and its ties (to the
// lowest index) cannot depend on the order of summation, and the stale bounds of the lazy greedy are true upper
// bounds (each term only shrinks as best_i grows). 2^-30 is finer than a float's resolution near 1 (2^-24); a block
// of m < 2^33 rows cannot overflow.
constexpr double kGainScale = 1073741824.0;  // 2^30

SIEVE_HD int64_t facility_gain_term(float s, float best) {
  const float d = s - best;
  return d > 0.f ? static_cast<int64_t>(static_cast<double>(d) * kGainScale) : 0;
}

// A gain in the units of the objective.
SIEVE_HD double facility_gain_value(int64_t gain) { return static_cast<double>(gain) / kGainScale; }

// Orders candidates (gain, index): larger gain first, then lower index.
SIEVE_HD bool facility_better(int64_t gain_a, int64_t index_a, int64_t gain_b, int64_t index_b) {
  return gain_a > gain_b || (gain_a == gain_b && index_a < index_b);
}

// The cluster of member i of a block: the pick (by its position q in `picks_local`, local member indices of the
// block's picks) whose similarity to i is largest, ties to the pick of the lowest member index.
SIEVE_HD int64_t facility_cluster(const float* sim_row_i,  // (m) similarities of member i to every member
                                  const int32_t* picks_local, int64_t k) {
  int64_t best_q = 0;
  for (int64_t q = 1; q < k; ++q) {
    const float s = sim_row_i[picks_local[q]], t = sim_row_i[picks_local[best_q]];
    if (s > t || (s == t && picks_local[q] < picks_local[best_q])) best_q = q;
  }
  return best_q;
}

// Note [empty clusters]: a pick can represent no row, when every row, itself included, is at least as close to an
// earlier pick (a zero-gain pick: a duplicate of a chosen row). The reference floors such a cluster's size at 1
// (utils/submodular.py, faciliy_location_order: sz[np.where(sz == 0)] = 1), so that every pick of a coreset trains
// with a positive weight; so does sieve.
SIEVE_HD int64_t facility_cluster_size(int64_t members) { return members > 0 ? members : 1; }

// The weight of a pick whose (floored) cluster size is `size`, k picks whose sizes sum to `total`: size k / total,
// so that the weights have mean 1 (the reference normalises cluster sizes the same way, over its union of coresets).
SIEVE_HD float facility_cluster_weight(int64_t size, int64_t k, int64_t total) {
  return static_cast<float>(static_cast<double>(size) * static_cast<double>(k) / static_cast<double>(total));
}

// The window rule's test (Note [drop rules] in sampling/crest.h): an example is learned when all of its last `window`
// losses are recorded (count >= window) and all are < alpha (a NaN loss is not). Its drop key is then the largest of
// them (Note [drop order] in loss_history.cpp), else +inf.
SIEVE_HD float learned_loss_key(const float* ring,  // (window) the example's ring slots
                                int window, int32_t count, float alpha) {
  if (count < window) return INFINITY;
  float worst = -INFINITY;
  for (int w = 0; w < window; ++w) {
    const float v = ring[w];
    if (!(v < alpha)) return INFINITY;
    worst = fmaxf(worst, v);
  }
  return worst;
}

// Note [drop rules] in sampling/crest.h: the reference's test (trainers/crest_trainer.py, _drop_learned_data). An
// example is learned when at least one of its slots holds a recorded loss and none holds a loss above alpha. A slot
// never written holds NaN (the reference: -1); neither counts as recorded (v >= 0 fails) nor as high (v > alpha fails).
SIEVE_HD bool reference_learned(const float* ring,  // (window) the example's slots, one per epoch mod window
                                int window, float alpha) {
  bool recorded = false;
  for (int w = 0; w < window; ++w) {
    const float v = ring[w];
    if (v > alpha) return false;
    if (v >= 0.f) recorded = true;
  }
  return recorded;
}

}  // namespace sieve

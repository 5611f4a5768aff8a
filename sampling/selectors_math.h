// Per-element arithmetic of the epoch, loss-rank, InfoBatch and selective-backprop selectors (sampling/selectors.h),
// shared by the CPU loops and the CUDA kernels (Note [one meaning] in core/host_device.h). Internal to sampling/.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace sieve {

// Note [rank key]: the key by which online batch selection ranks an example's loss, descending. NaN (a diverged
// forward pass) ranks as +inf, first, so that the example is looked at again rather than buried; -0 becomes +0.
// With these two cases gone, the CPU's stable_sort by `a > b` and CUB's stable radix sort of the float bits order
// every key the same way, ties included (both keep the earlier position first).
SIEVE_HD float loss_rank_key(float loss) {
  if (isnan(loss)) return INFINITY;
  return loss == 0.f ? 0.f : loss;
}

// Whether entry j of indices[0, n) is the last occurrence of its value. A batch drawn with replacement repeats
// examples; scattering only the last occurrence makes the stored loss the same on both backends (the CPU's loop
// would keep the last write anyway; the GPU's threads would race). O(n) per entry: n is one training batch.
SIEVE_HD bool is_last_occurrence(const int32_t* indices, int64_t n, int64_t j) {
  const int32_t v = indices[j];
  for (int64_t k = j + 1; k < n; ++k)
    if (indices[k] == v) return false;
  return true;
}

// InfoBatch's pruning rule (Qin et al. 2024, eq. 2-3): an example whose score lies below the mean score is "well
// learned" and kept with probability keep_ratio, at weight 1 / keep_ratio; every other example is kept at weight 1.
// Returns the example's weight for the epoch, 0 when it is pruned. `unit` is a uniform number in [0, 1).
SIEVE_HD float infobatch_weight(float score, float mean, float unit, float keep_ratio) {
  if (!(score < mean)) return 1.f;  // NaN scores are never "well learned": they stay in the epoch
  return unit < keep_ratio ? 1.f / keep_ratio : 0.f;
}

// Selective backprop's keep probability (Jiang et al. 2019, eq. 2): P = (share of the `count` recorded losses that are
// <= loss)^beta. A NaN loss counts as +inf (kept); with no recorded losses yet every candidate is kept.
SIEVE_HD float selective_backprop_probability(float loss, const float* history, int64_t count, float beta) {
  if (count <= 0 || isnan(loss)) return 1.f;
  int64_t below = 0;
  for (int64_t k = 0; k < count; ++k) below += history[k] <= loss ? 1 : 0;
  const float percentile = static_cast<float>(below) / static_cast<float>(count);
  return beta == 1.f ? percentile : powf(percentile, beta);
}

}  // namespace sieve

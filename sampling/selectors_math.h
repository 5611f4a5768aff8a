// Per-element arithmetic of the epoch and loss-rank selectors (sampling/selectors.h), shared by the CPU loops and the
// CUDA kernels (Note [one meaning] in core/host_device.h). Internal to sampling/.
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

}  // namespace sieve

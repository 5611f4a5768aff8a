// Soft Random Sampling (SRS, 2023): each epoch trains on m = round(r N) examples drawn uniformly with replacement
// from the whole data set, a fresh draw every epoch. About 1 - e^(-r) of the data is distinct within an epoch, and
// after k epochs a share 1 - (1 - 1/N)^(k m) ≈ 1 - e^(-r k) has been seen (stats(): "coverage").
//
// Drawn i.i.d. uniform, the batches of SRS have the distribution of uniform sampling with replacement; what the epoch
// structure adds is the schedule (an epoch is r N examples) and the coverage bookkeeping the paper analyses.
#pragma once

#include <cstdint>

#include "sampling/epoch_subset.h"

namespace sieve {

class SoftRandomSampler : public EpochSubsetSelector {
 public:
  // r > 0 (r > 1 draws more than N per epoch); throws sieve::Error otherwise. Note [selector seed] in make_selector.h.
  SoftRandomSampler(int64_t batch, double ratio, uint64_t seed)
      : EpochSubsetSelector(batch, ratio, seed, /*with_replacement=*/true, "srs") {}
  std::string name() const override { return "srs"; }
};

}  // namespace sieve

// CREST's `random` baseline (Yang, Kang, Mirzasoleiman 2023): each epoch a fresh subset of m = round(r N) distinct
// examples, the prefix of a random permutation, trained on in batches of b without replacement. Named
// "random-subset" here ("random" alone reads like the uniform selector). r in (0, 1], shared with SRS (--srs-ratio).
// After k epochs about 1 - (1 - r)^k of the data has been seen (stats(): "coverage").
#pragma once

#include <cstdint>

#include "sampling/epoch_subset.h"

namespace sieve {

class RandomSubsetSelector : public EpochSubsetSelector {
 public:
  // r in (0, 1]; throws sieve::Error otherwise. Note [selector seed] in make_selector.h.
  RandomSubsetSelector(int64_t batch, double ratio, uint64_t seed)
      : EpochSubsetSelector(batch, ratio, seed, /*with_replacement=*/false, "random-subset") {}
  std::string name() const override { return "random-subset"; }
};

}  // namespace sieve

// Selectors that fix a subset of m = round(r N) examples at the start of each epoch and serve it in batches of b:
// Soft Random Sampling (sampling/srs.h, drawn with replacement) and CREST's random-subset baseline
// (sampling/random_subset.h, without replacement). Weights are 1.
//
// Note [epoch subset batches]: an epoch serves its m examples exactly once each, in ceil(m / b) steps; when b does
// not divide m the last step of the epoch is short (m mod b examples), as a data loader without drop_last does,
// rather than topped up from the next epoch's subset. Epochs then stay whole, so "k epochs" means k subsets of
// m, as in the papers' analysis (SRS's coverage 1 - e^(-r k)). The weighted mean of a short step is over fewer
// examples; with b much smaller than m this affects one step in m / b.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "sampling/coverage.h"
#include "sampling/selector.h"

namespace sieve {

class EpochSubsetSelector : public Selector {
 public:
  Selection select(const ScoringContext& ctx) override;
  // {"epoch", epochs begun so far}, {"coverage", share of the data set served at least once}. Reading the coverage
  // synchronises with the device (one count): stats() is for logs.
  std::vector<std::pair<std::string, double>> stats() const override;
  // "in_epoch_subset": how often each example occurs in the current epoch's subset (SRS draws with replacement).
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  // The generator, the epoch and position in it, its subset, and the coverage flags.
  void archive(StateArchive& ar) override;

  // m = round(r N) for a data set of N examples; throws where that is not a valid epoch.
  int64_t epoch_size(int64_t dataset_size) const;
  int64_t epochs() const { return epochs_; }
  const Coverage& coverage() const { return coverage_; }

 protected:
  // with_replacement: SRS; otherwise the prefix of a random permutation. `who` names the selector in errors.
  EpochSubsetSelector(int64_t batch, double ratio, uint64_t seed, bool with_replacement, const char* who);

 private:
  int64_t batch_;
  double ratio_;
  bool with_replacement_;
  const char* who_;
  Generator gen_;
  Tensor subset_;         // int32 [m]: this epoch's examples, on the training device
  int64_t position_ = 0;  // served so far of subset_
  int64_t epochs_ = 0;
  Coverage coverage_;
};

}  // namespace sieve

// InfoBatch (Qin et al., ICLR 2024, "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning"), as its
// reference code does it: one score per example on the device, initialised to 3 and overwritten by the example's
// training loss each time it is trained (observe()). At the start of each epoch the examples whose score lies below
// the mean score ("well learned") are each kept with probability k = clamp(1 - r, 0.1, 1) and, when kept, weighted
// 1 / k; every other example is kept at weight 1. The kept examples, shuffled, are served in batches of b (the last
// batch of an epoch may be short, as in sampling/epoch_subset.h). Once the run has used a share δ of its budget (steps,
// time or examples: ScoringContext::progress), every later epoch trains on the full data at weight 1 ("annealing").
//
// Note [infobatch unbiased]: over one pruned epoch, E[Σ_kept w_i g_i] = Σ_{not well learned} g_i + Σ_{well learned}
// k (1/k) g_i = Σ_i g_i: the epoch's weighted gradient sum equals the full data set's in expectation, with a share of
// about r/2 fewer examples (when half the scores lie below the mean). The reference draws exactly round(k n) of the n
// well-learned examples without replacement; sieve keeps each independently with probability k (the issue's
// definition), which has the same expectation and lets one kernel decide every example in parallel.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "sampling/selector.h"

namespace sieve {

struct InfoBatchOptions {
  int64_t batch = 128;       // b
  double prune_ratio = 0.5;  // r in [0, 1]: the share of well-learned examples pruned (keep ratio floored at 0.1)
  double anneal = 0.875;     // δ in [0, 1]: the share of the budget after which epochs train on the full data
  uint64_t seed = 0;         // Note [selector seed] in sampling/make_selector.h
};

class InfoBatchSelector : public Selector {
 public:
  explicit InfoBatchSelector(const InfoBatchOptions& options);  // throws sieve::Error on invalid options

  std::string name() const override { return "infobatch"; }
  Selection select(const ScoringContext& ctx) override;
  // Overwrites the trained examples' scores with their training losses.
  void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) override;
  // {"epoch", epochs begun}, {"pruned_share", share of N pruned in the current epoch}, {"pruned_mean", mean of that
  // over the epochs so far}, {"annealed", 1 once the full data set is back}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // "last_score" (the score table) and "pruned" (1 where pruned from the current epoch).
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  // The generator, the epoch and the position in it, the score and weight tables and the kept list.
  void archive(StateArchive& ar) override;

  float keep_ratio() const { return keep_ratio_; }
  // For tests and tools: float32 [N] scores, float32 [N] this epoch's weight per example (0: pruned), int32 [n] this
  // epoch's examples in serving order; undefined before the first select().
  const Tensor& scores() const { return scores_; }
  const Tensor& epoch_weights() const { return weights_; }
  const Tensor& epoch_examples() const { return kept_; }

 private:
  void start_epoch(const ScoringContext& ctx);

  InfoBatchOptions options_;
  float keep_ratio_;
  Generator gen_;
  Tensor scores_;    // float32 [N]
  Tensor weights_;   // float32 [N]: by example, for the current epoch
  Tensor kept_;      // int32 [n]: the current epoch's examples, shuffled
  int64_t position_ = 0;
  int64_t epochs_ = 0;
  double pruned_share_ = 0;  // of the current epoch
  double pruned_sum_ = 0;    // over all epochs begun
  bool annealed_ = false;
};

}  // namespace sieve

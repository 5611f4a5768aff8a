// Online batch selection (Loshchilov & Hutter 2015, "Online batch selection for faster training of neural networks"):
// every example's latest known loss is kept on the device; examples are ranked by loss, descending, and the example
// of rank i (0-based, of N) is drawn with probability p_i ∝ exp(log(1/s) i / (N - 1)), so that the top-ranked
// example is exactly s times likelier than the last (s: selection pressure, 100 by default as in the paper). The
// paper's formula divides by N, which makes the ratio s^((N-1)/N); dividing by N - 1 makes s the exact ratio, as the
// paper's text describes it (a factor s^(1/N), 1.00008 for N = 60000 and s = 100, apart).
//
// Each step draws b ranks with replacement from these probabilities (computed once; sample_with_replacement) and maps
// them through the current ranking. The losses come from the training forward pass (observe() scatters them); the
// ranking is re-sorted every `resort_every` steps, and every `recompute_every` epochs (of ceil(N / b) steps) all N
// losses are recomputed by no-gradient forward passes (ScoringContext::logits, which counts them as scored). The
// weights are 1: the paper does not re-weight, so the method is biased towards high-loss examples by design.
//
// Note [unseen first]: before an example's first training step its loss is +inf, so every re-sort ranks the unseen
// examples above all seen ones and they hold the most likely ranks until they have been trained on once. The initial
// ranking is a random permutation and the sort is stable, so the unseen examples' order among themselves is random
// (not their order in the data set, which may be sorted by class).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "sampling/coverage.h"
#include "sampling/selector.h"

namespace sieve {

struct OnlineBatchOptions {
  int64_t batch = 128;                // b
  double selection_pressure = 100.0;  // s >= 1 (1: uniform over ranks)
  int64_t resort_every = 100;         // steps between re-rankings (>= 1)
  int64_t recompute_every = 0;        // epochs between full loss recomputations (0: never)
  uint64_t seed = 0;                  // Note [selector seed] in sampling/make_selector.h
};

// p_i = s^(-i / (n - 1)) / sum_j s^(-j / (n - 1)), i = 0..n-1 (p = 1 for n = 1), float32 [n] on the CPU; summed in
// double before the rounding to float.
Tensor rank_probabilities(int64_t n, double selection_pressure);

// The inclusive prefix sums of those probabilities, summed in double and rounded once to float (non-decreasing,
// the last one 1): online batch selection draws ranks from it with sample_with_replacement(scores, prefix, ...),
// so that no scan runs per step and the CPU and the GPU draw the same ranks.
Tensor rank_prefix(int64_t n, double selection_pressure);

class OnlineBatchSelector : public Selector {
 public:
  explicit OnlineBatchSelector(const OnlineBatchOptions& options);  // throws sieve::Error on invalid options

  std::string name() const override { return "online-batch"; }
  Selection select(const ScoringContext& ctx) override;
  // Scatters the training pass's per-example losses into the table (Note [unseen first]).
  void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) override;
  // {"epoch", examples served / N}, {"coverage", share trained on at least once}, {"resorts", re-rankings so far}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // The generator, the step count, the loss table, the ranking and the coverage flags.
  void archive(StateArchive& ar) override;

  // For tests and tools: float32 [N] latest losses (+inf: unseen), int32 [N] example of each rank (as of the last
  // re-sort); undefined before the first select().
  const Tensor& losses() const { return losses_; }
  const Tensor& ranking() const { return order_; }
  const Coverage& coverage() const { return coverage_; }

 private:
  void initialise(const ScoringContext& ctx);
  void recompute_losses(const ScoringContext& ctx);

  OnlineBatchOptions options_;
  Generator gen_;
  Tensor losses_;         // float32 [N]
  Tensor order_;          // int32 [N]
  Tensor probabilities_;  // float32 [N]: rank_probabilities on the training device
  Tensor prefix_;         // float32 [N]: rank_prefix on the training device
  int64_t steps_ = 0;
  int64_t served_ = 0;
  int64_t resorts_ = 0;
  Coverage coverage_;
};

}  // namespace sieve

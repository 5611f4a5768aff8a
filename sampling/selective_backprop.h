// Selective backprop (Jiang et al. 2019, "Accelerating Deep Learning by Focusing on the Biggest Losers"): candidates
// come in batches of b from a shuffled pass over the data set and are scored by their loss in a no-gradient forward
// pass (ScoringContext::logits, evaluation mode as every scoring pass in sieve: Note [scoring mode] in
// sampling/importance.h); each is kept with probability P = (percentile of its loss among the last R recorded losses)^β
// (eq. 2 of the paper); kept candidates accumulate until a training batch of b is full, and the remainder waits for the
// next step. The training batch is unweighted (weights 1), as in the paper: the method is biased towards high losses
// by design. With β = 1, 2, 3 about 1/2, 1/3, 1/4 of the candidates are kept.
//
// With `stale` (the paper's "stale" variant), the candidates' losses are the ones their last training forward pass
// produced (observe() records them) instead of a fresh forward pass: no scoring cost at all. An example not yet trained
// has the loss +inf and is always kept, so the first pass over the data set trains on everything, as the paper's
// first epoch. Its +inf losses enter the loss history like any other, so for the first R candidates after it the
// percentiles of finite losses are low; the history is all finite again R candidates later.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "sampling/selector.h"

namespace sieve {

struct SelectiveBackpropOptions {
  int64_t batch = 128;    // b: candidates per scoring pass and examples per training step
  int64_t history = 1024;  // R: recorded losses the percentile is taken among (>= b)
  float beta = 1.f;       // β >= 0: P = percentile^β
  bool stale = false;     // losses from the last training pass instead of a fresh forward pass
  uint64_t seed = 0;      // Note [selector seed] in sampling/make_selector.h
};

class SelectiveBackpropSelector : public Selector {
 public:
  explicit SelectiveBackpropSelector(const SelectiveBackpropOptions& options);  // throws on invalid options

  std::string name() const override { return options_.stale ? "selective-backprop-stale" : "selective-backprop"; }
  Selection select(const ScoringContext& ctx) override;
  // With `stale`: records the training losses of the trained examples.
  void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) override;
  // {"epoch", candidate passes begun}, {"keep_rate", kept / candidates so far}, {"candidates", candidates scored}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // "last_score": each example's loss at its last scoring (fresh) or training pass (stale); +inf: none yet.
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  void archive(StateArchive& ar) override;

 private:
  void initialise(const ScoringContext& ctx);
  Tensor next_candidates(const ScoringContext& ctx);  // int32 [<= b]: the next batch of the shuffled pass
  Tensor candidate_losses(const ScoringContext& ctx, const Tensor& candidates);

  SelectiveBackpropOptions options_;
  Generator gen_;
  Tensor history_;         // float32 [R]: a ring of the last recorded losses
  int64_t recorded_ = 0;   // losses recorded so far (the ring holds min(recorded_, R) of them)
  Tensor order_;           // int32 [N]: the current pass's candidate order
  int64_t position_ = 0;   // candidates taken from order_
  Tensor pending_;         // int32 [2b]: kept candidates not yet trained on (the first pending_count_)
  int64_t pending_count_ = 0;
  Tensor losses_;          // float32 [N]: the latest loss of each example (stale: training pass; else scoring pass)
  int64_t epochs_ = 0;
  int64_t candidates_ = 0;
  int64_t kept_ = 0;
};

}  // namespace sieve

// Selectors by name, for programs that choose one from the command line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sampling/crest.h"
#include "sampling/selector.h"

namespace sieve {

// The options of every selector; each reads the fields it needs.
struct SelectorOptions {
  int64_t batch = 128;          // b: examples per training step
  int64_t presample = 1024;     // B: pre-sample scored per importance-sampling step
  std::optional<float> tau_th;  // importance sampling: τ_th; unset: (B + 3b) / (3b)
  float tau_ema = 0.9f;         // importance sampling: a_τ
  double subset_ratio = 0.1;    // srs, random-subset: r, an epoch is round(r N) examples
  double selection_pressure = 100.0;  // online-batch: s, the top rank's odds over the last
  int64_t resort_every = 100;   // online-batch: steps between re-rankings by loss
  int64_t recompute_every = 0;  // online-batch: epochs between recomputations of every loss (0: never)
  std::string score_source = "presample";  // upper-bound, loss: "presample" or "history" (Note [history scores])
  float score_smoothing = 0.5f;  // history scores: p_i ∝ s_i + smoothing × mean(s)
  // upper-bound, loss, gradient-norm with pre-sampled scores: p_i ∝ s_i + c, the reference's additive smoothing
  // (Note [presample smoothing] in sampling/importance.h); 0: none, the reference's default.
  float presample_smoothing = 0.f;
  int64_t history_refresh = 100;  // history scores: steps between rebuilding the distribution
  double prune_ratio = 0.5;     // infobatch: r, the share of well-learned examples pruned each epoch
  double anneal = 0.875;        // infobatch: δ, the share of the budget after which it trains on the full data
  int64_t sb_history = 1024;    // selective-backprop: R, the losses the percentile is taken among
  float sb_beta = 1.f;          // selective-backprop: β in P = percentile^β
  bool sb_stale = false;        // selective-backprop: losses of the last training pass instead of a fresh forward
  uint64_t seed = 0;            // Note [selector seed]
  CrestOptions crest;           // CREST's parameters (Note [crest defaults]); its batch and seed are the two above
};

// Note [selector seed]: a selector draws from Generator(seed) as given. Give it a stream of its own, derived from
// the run's seed with Generator::fork (apps/trainer.cpp does), so that its draws are independent of initialisation
// and augmentation. Selectors given the same seed start from the same uniform batches: importance sampling and
// its uniform baseline then train on identical batches until τ first crosses τ_th.

// "uniform", "loss" or "upper-bound" (importance sampling with that score; "-history" appended: with history scores,
// as score_source "history" does), "gradient-norm" (importance sampling by the exact per-example gradient norm, the
// paper's expensive optimal baseline: B per-example backward passes per step, Note [exact-norm sampler] in
// sampling/importance.h; pre-sampled only), "srs" (Soft Random Sampling), "random-subset" (CREST's random baseline),
// "online-batch" (Loshchilov & Hutter 2015), "crest" (sampling/crest.h), "infobatch" (sampling/infobatch.h) or
// "selective-backprop" ("-stale" appended: its stale variant, as sb_stale does; sampling/selective_backprop.h);
// throws listing the accepted names.
std::unique_ptr<Selector> make_selector(const std::string& name, const SelectorOptions& options);
std::vector<std::string> selector_names();

}  // namespace sieve

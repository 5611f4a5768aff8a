// CREST, "Towards Sustainable Learning: Coresets for Data-efficient Deep Learning" (Yang, Kang, Mirzasoleiman 2023),
// Algorithm 1, as a Selector:
//   1. Draw P class-balanced random subsets V_p of r active examples; score them with a no-gradient forward pass
//      (ScoringContext::logits) and take p − onehot(y), the gradient of cross-entropy with respect to the logits,
//      as each example's feature.
//   2. From each V_p select a mini-batch coreset of b examples by per-class facility location
//      (sampling/facility_location.h), each weighted by the number of examples of V_p it represents (mean 1).
//   3. Fit the quadratic model F(δ) = L + gᵀδ + ½ δᵀ diag(h) δ around the current parameters from one Hutchinson
//      probe per mini-batch coreset (sampling/hutchinson.h; two gradient evaluations each, core/hvp.h).
//   4. Train on the union of the coresets, b at a time in a shuffled order (reshuffled when it runs out), with the
//      coreset weights. Every T1 steps compare F(w − w_ℓ) with the loss L measured on the union of the V_p at the
//      current parameters; when |L − F| > τ L select again (lines 14-16), and then set
//      T1 = ⌈h ‖h_0‖ / ‖h_ℓ‖⌉ and P = min(⌈b_P T1⌉, epoch), ‖h_0‖ the model's curvature at the first selection.
//   5. Optionally (off by default, as in the reference) drop learned examples: the losses of every scored subset
//      are recorded, and every `drop_interval` steps the examples whose last `window` losses are all below α leave
//      the active set (sampling/loss_history.h), keeping ⌈r / C⌉ per class and `min_active` overall.
//
// Note [crest defaults]: the reference code's defaults (its argument parser): P = 5 (--num_minibatch_coreset),
// T1 = 1 (--check_interval), h = 1 (--interval_mul), b_P = 5 (--batch_num_mul), τ = 0.1 (--check_thresh_factor),
// r = 1% of the data (--random_subset_size 0.01), moving averages 0.9 / 0.999, dropping off, α = 0.1 over the last
// 5 recorded losses (--drop_thresh, --watch_interval), at most every 20 epochs (--drop_interval), never below 40000
// of CIFAR-10's 50000 examples (--min_train_size; sieve: 80% of N). sieve departs knowingly: r is at least 4b, so
// that a coreset is a real choice on small data sets (the reference's 1% of CIFAR-10 is 500 ≈ 4 × 128); δ is
// w − w_ℓ measured exactly rather than accumulated from −lr g (which forgets momentum and weight decay); and the
// first selection follows a warm-up of uniform batches (Note [crest warm-up]).
//
// Note [crest warm-up]: like the reference, which trains its first epoch on the full data, CREST serves uniform
// batches (with replacement, weights 1) for `warmup_epochs` epochs of N / b steps before it first selects. From an
// untrained model the features p − onehot(y) of most examples are nearly equal, so a few examples would represent
// whole classes with weights in the tens, and the first steps diverge (measured on the CNN: the training loss rose
// from 2.3 to 13.8 within six steps of CREST from step 0).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "sampling/hutchinson.h"
#include "sampling/selector.h"

namespace sieve {

class LossHistory;

struct CrestOptions {
  int64_t batch = 128;            // b: examples per mini-batch coreset and per training step
  int64_t subsets = 5;            // P at the first selection
  int64_t subset_size = 0;        // r; 0: max(1% of N, 4 b)
  int64_t check_interval = 1;     // T1 until the second selection adapts it
  float tau = 0.1f;               // re-select when |L − F| > τ L
  float interval_mul = 1.f;       // h in T1 = ⌈h ‖h_0‖ / ‖h_ℓ‖⌉
  float subsets_mul = 5.f;        // b_P in P = min(⌈b_P T1⌉, epoch)
  float beta1 = 0.9f;             // gradient moving average
  float beta2 = 0.999f;           // moving average of (z ⊙ Hz)²
  bool drop_learned = false;
  float drop_alpha = 0.1f;        // α
  int drop_window = 5;            // losses per example that must all be below α
  int64_t drop_interval = 0;      // steps between drops; 0: 20 epochs of N / b steps
  int64_t min_active = 0;         // never fewer active examples; 0: 80% of N
  float warmup_epochs = 1.f;      // uniform batches for this many epochs before the first selection (Note [crest warm-up])
  uint64_t seed = 0;              // Note [selector seed] in sampling/make_selector.h
};

// p − onehot(y) per row: the gradient of cross-entropy with respect to logits [n, c] (float32) for labels [n]
// (int32), CREST's feature of an example. On the device of the logits, never recorded by autograd.
Tensor logit_gradients(const Tensor& logits, const Tensor& labels);

class CrestSelector : public Selector {
 public:
  explicit CrestSelector(const CrestOptions& options);  // throws sieve::Error on invalid options
  ~CrestSelector() override;

  std::string name() const override { return "crest"; }
  // Needs every field of the ScoringContext, parameters and loss_gradient included.
  Selection select(const ScoringContext& ctx) override;
  // {"crest_selections", coreset selections so far}, {"crest_checks", validity checks}, {"crest_T1", T1},
  // {"crest_P", P}, {"crest_active", active examples}, {"crest_rel_error", |L − F| / L at the last check},
  // {"crest_gradient_evals", gradient evaluations of b examples spent on the quadratic model (each a forward and
  // backward pass, beyond the training steps)}, {"crest_dropped", examples dropped so far}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // With --drop-learned: "dropped", 1 for the examples dropped from the active set.
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  void save_state(CheckpointState& state, const std::string& prefix) override;
  void load_state(const CheckpointState& state, const std::string& prefix) override;

  int64_t selections() const { return selections_; }
  int64_t check_interval() const { return t1_; }
  int64_t subsets() const { return p_; }
  double last_relative_error() const { return last_rel_error_; }
  int64_t active_size() const;
  const QuadraticLossModel& model() const { return model_; }

 private:
  void initialise(const ScoringContext& ctx);
  void refresh_active();                            // host copy of the active set, per class
  std::vector<int32_t> draw_subset();               // one class-balanced V_p, host indices
  void select_coresets(const ScoringContext& ctx);  // lines 4-9
  bool model_is_valid(const ScoringContext& ctx);   // lines 13-15
  void shuffle_union();

  CrestOptions options_;
  Generator gen_;
  bool initialised_ = false;
  int64_t dataset_size_ = 0;
  int64_t subset_size_ = 0;
  int num_classes_ = 0;
  std::vector<int32_t> labels_host_;
  std::vector<std::vector<int32_t>> active_by_class_;
  std::unique_ptr<LossHistory> history_;
  std::unique_ptr<HutchinsonEstimator> estimator_;
  QuadraticLossModel model_;

  // The current coresets: their union (training order) and the random subsets they came from.
  Tensor union_indices_, union_weights_;  // int32 [k], float32 [k] on the device
  Tensor random_sets_;                    // int32 [Σ |V_p|] on the device
  int64_t cursor_ = 0;
  bool need_selection_ = true;

  int64_t steps_ = 0;
  int64_t steps_since_selection_ = 0;
  int64_t t1_ = 1;
  int64_t p_ = 5;
  double initial_curvature_ = 0;
  int64_t selections_ = 0;
  int64_t checks_ = 0;
  int64_t gradient_evals_ = 0;
  int64_t dropped_ = 0;
  double last_rel_error_ = 0;

  // Loaded by load_state, applied when the first select() knows the device and the parameters.
  std::vector<std::pair<std::string, Tensor>> pending_estimator_, pending_history_;
};

}  // namespace sieve

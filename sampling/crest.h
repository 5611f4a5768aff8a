// CREST, "Towards Sustainable Learning: Coresets for Data-efficient Deep Learning" (Yang, Kang, Mirzasoleiman 2023),
// Algorithm 1, as a Selector:
//   1. Draw P class-balanced random subsets V_p of r active examples; score them with a no-gradient forward pass
//      (ScoringContext::logits) and take p − onehot(y), the gradient of cross-entropy with respect to the logits,
//      as each example's feature.
//   2. From each V_p select a mini-batch coreset of b examples by per-class facility location
//      (sampling/facility_location.h), each weighted by the number of examples of V_p it represents, floored at 1
//      (Note [empty clusters] in sampling/crest_math.h), normalised to mean 1 over the union of the coresets as the
//      reference does (trainers/subset_trainer.py, _update_train_loader_and_weights).
//   3. Fit the quadratic model F(δ) = L + gᵀδ + ½ δᵀ diag(h) δ around the current parameters from one Hutchinson
//      probe per mini-batch coreset (sampling/hutchinson.h; two gradient evaluations each, core/hvp.h).
//   4. Train on the union of the coresets, b at a time in a shuffled order (reshuffled when it runs out), with the
//      coreset weights. Every T1 steps compare F(w − w_ℓ) with the loss L measured on the union of the V_p at the
//      current parameters; when |L − F| > τ L select again (lines 14-16), and then set
//      T1 = ⌈h ‖h_0‖ / ‖h_ℓ‖⌉ and P = min(⌈b_P T1⌉, E), ‖h_0‖ the model's curvature at the first selection and E
//      CREST's epoch (Note [crest epoch]).
//   5. Optionally (off by default, as in the reference) drop learned examples from the active set the subsets are
//      drawn from: the losses of every scored subset are recorded (sampling/loss_history.h) and learned examples
//      leave by the reference's rule or by sieve's window rule (Note [drop rules]).
//
// Note [crest defaults]: the reference code's defaults (utils/arguments.py): P = 5 (--num_minibatch_coreset),
// T1 = 1 (--check_interval), h = 1 (--interval_mul), b_P = 5 (--batch_num_mul), τ = 0.1 (--check_thresh_factor),
// r = 1% of the data (--random_subset_size 0.01), an epoch of a tenth of the data (--train_frac 0.1, Note [crest
// epoch]), moving averages 0.9 / 0.999, dropping off (--drop_learned), α = 0.1 (--drop_thresh) over a ring of 5
// per-epoch loss slots (--watch_interval), drops in every 20th epoch (--drop_interval), never down to 40000 of
// CIFAR-10's 50000 examples (--min_train_size; sieve: 80% of N). sieve departs knowingly: r is at least 4b, so that a
// coreset is a real choice on small data sets (the reference's 1% of CIFAR-10 is 500 ≈ 4 × 128); δ is w − w_ℓ
// measured exactly rather than accumulated from −lr g (which forgets momentum and weight decay); the warm-up draws
// uniform batches with replacement where the reference shuffles the full data (Note [crest warm-up]).
//
// Note [crest epoch]: inside the reference's CREST trainer (trainers/crest_trainer.py, __init__) an "epoch" is
// E = ⌈⌊train_frac N⌋ / b⌉ steps, with train_frac = 0.1: a tenth of a pass over the data. It is the unit of the warm-up
// before the first selection (reset_step = steps_per_epoch), of the cap on P (min(check_interval · batch_num_mul,
// steps_per_epoch)), of the loss ring's slots (loss_watch[epoch % watch_interval]) and of the drop interval
// ((epoch + 1) % drop_interval == 0). sieve uses the same E for all four (CrestOptions::train_frac).
//
// Note [crest warm-up]: the reference trains its first epoch of E steps on shuffled batches of the full data, and
// selects first at step E. sieve serves uniform batches (with replacement, weights 1) for ⌈warmup_epochs E⌉ steps,
// warmup_epochs = 1 by default: the reference's step of the first selection. An earlier measurement (the CNN on
// Fashion-MNIST: the evaluation-mode training loss rose from 2.3 to 13.8 within six steps of CREST from step 0) was
// taken as divergence caused by selecting from an untrained model, whose features p − onehot(y) are nearly equal, so
// that a few examples represent whole classes with weights in the tens. Measured again (the CNN, b = 128, seed 0,
// train loss on 1 000 examples, 2-core CPU), that spike is the batch-norm network's first steps, not CREST's: uniform
// batches gave 4.13, 11.6, 2.45 at steps 0, 5, 10, and CREST from step 0 gave 4.13, 6.1, 14.6, 2.6, 1.70 at steps 0,
// 2, 6, 8, 10. With the default warm-up (E = 47 steps) the first selections did not raise the loss: 0.77 at step
// 45, then 0.74, 0.76, 0.63, 0.70, 0.60, 0.57, 0.58 at steps 50, 55, ..., 80. The warm-up is kept because the
// reference has it.
//
// Note [drop rules]: the reference (trainers/crest_trainer.py, _drop_learned_data) keeps a ring of `window` = 5 loss
// slots per example, one per epoch: at every selection it writes each scored example's evaluation-mode loss into slot
// (epoch mod 5), and at the selections of every 20th epoch (drop_interval) it recomputes the active set from the ring
// over all N examples. An example is learned when at least one slot holds a loss and none holds one above α; each
// class keeps exactly its unlearned examples if they number more than ⌈r / C⌉, else it keeps its current active set
// whole; and the result replaces the active set only if it holds more than min_active examples, else nothing changes.
// The guards are all-or-nothing. Since the set is recomputed from the ring, an example whose ring shows a loss above
// α is active again; but a dropped example is never drawn into a subset again, so its slots are never rewritten and
// in practice it stays dropped (in the reference as in sieve). This is the default, --drop-rule reference.
// sieve's earlier rule, --drop-rule window, drops an example only when its last `window` recorded losses (one per
// time it was scored, in a ring of the most recent) all lie below α, every drop_interval steps, and its guards bind
// partially: up to the limits (⌈r / C⌉ per class, min_active overall) the most thoroughly learned examples go first
// (Note [drop order] in sampling/loss_history.cpp). Its reasons: the reference's test rests on as little as one
// recorded loss (a selection scores P r examples, a small share of N, so many examples hold one or two losses in their
// slots when a drop comes), so one low loss drops an example; and its all-or-nothing global guard drops nothing at all
// once more than N − min_active examples are learned, so it stops dropping exactly when most of the data is learned.
// The window rule asks for `window` consistent losses and still drops up to the limits. The slots mean different
// things under the two rules, so a checkpoint records its rule and one of the other rule is refused (one written
// before the rule was recorded holds the window rule's slots).
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
  float subsets_mul = 5.f;        // b_P in P = min(⌈b_P T1⌉, E)
  float beta1 = 0.9f;             // gradient moving average
  float beta2 = 0.999f;           // moving average of (z ⊙ Hz)²
  float train_frac = 0.1f;        // CREST's epoch E = ⌈⌊train_frac N⌋ / b⌉ steps (Note [crest epoch])
  float warmup_epochs = 1.f;      // uniform batches for ⌈warmup_epochs E⌉ steps before the first selection
                                  // (Note [crest warm-up])
  bool drop_learned = false;
  std::string drop_rule = "reference";  // "reference" or "window" (Note [drop rules])
  float drop_alpha = 0.1f;        // α
  int drop_window = 5;            // loss slots per example: reference, one per epoch mod window; window, the most
                                  // recent losses, all of which must lie below α
  int64_t drop_interval = 0;      // steps; 0: 20 E. reference: drops at the selections in the last E steps before
                                  // each multiple; window: a drop at each multiple
  int64_t min_active = 0;         // never fewer active examples; 0: 80% of N
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
  // backward pass, beyond the training steps)}, {"crest_dropped", examples outside the active set}, {"crest_epoch",
  // E, the steps of CREST's epoch}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // With --drop-learned: "dropped", 1 for the examples dropped from the active set.
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  void archive(StateArchive& ar) override;

  int64_t selections() const { return selections_; }
  int64_t check_interval() const { return t1_; }
  int64_t subsets() const { return p_; }
  double last_relative_error() const { return last_rel_error_; }
  int64_t active_size() const;
  int64_t epoch_steps() const { return epoch_steps_; }  // E (Note [crest epoch]); 0 before the first select()
  const QuadraticLossModel& model() const { return model_; }
  // With --drop-learned, after the first select(): the ring of recorded losses and the active set.
  const LossHistory* loss_history() const { return history_.get(); }

 private:
  void initialise(const ScoringContext& ctx);
  void refresh_active();                            // host copy of the active set, per class
  std::vector<int32_t> draw_subset();               // one class-balanced V_p, host indices
  void select_coresets(const ScoringContext& ctx);  // lines 4-9
  bool model_is_valid(const ScoringContext& ctx);   // lines 13-15
  void shuffle_union();
  int64_t drop_interval() const;                    // steps, Note [drop rules]
  int64_t min_active() const { return options_.min_active > 0 ? options_.min_active : (dataset_size_ * 4) / 5; }

  CrestOptions options_;
  Generator gen_;
  bool initialised_ = false;
  int64_t dataset_size_ = 0;
  int64_t subset_size_ = 0;
  int64_t epoch_steps_ = 0;  // E
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
  double last_rel_error_ = 0;

  // Loaded by load_state, applied when the first select() knows the device and the parameters.
  std::vector<std::pair<std::string, Tensor>> pending_estimator_, pending_history_;
};

}  // namespace sieve

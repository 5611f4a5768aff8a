// Importance sampling by pre-sampling (Algorithm 1 of Katharopoulos & Fleuret 2018, "Not All Samples Are Created
// Equal"): while the estimated gain τ stays below τ_th, train on b uniform examples; once it exceeds τ_th, score a
// uniform pre-sample of B examples, draw b of them with replacement in proportion to their scores, and re-weight
// each by 1 / (B g_i) so that the weighted gradient stays unbiased.
//
// Note [scoring mode]: the pre-sample is scored in evaluation mode, as the reference code does: batch norm uses its
// running statistics and dropout is off. The score then reflects the model the step will update, and scoring B
// examples leaves no trace in the running statistics. The b chosen examples are forwarded again, in training mode,
// by the training loop. In the uniform phase τ is estimated from that training forward pass's own logits (line 15,
// "g_i for free"), so those scores do come from training mode, exactly as in the reference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/async_scalar.h"
#include "core/random.h"
#include "sampling/scores.h"
#include "sampling/selector.h"

namespace sieve {

// (B + 3b) / (3b): the τ above which importance sampling is guaranteed to pay for scoring B examples, with a
// backward pass costing two forward passes (section 3.3).
float default_tau_th(int64_t presample, int64_t batch);

struct ImportanceOptions {
  ScoreKind score = ScoreKind::UpperBound;
  int64_t batch = 128;          // b
  int64_t presample = 1024;     // B
  std::optional<float> tau_th;  // τ_th; unset: default_tau_th(presample, batch)
  float tau_ema = 0.9f;         // a_τ in τ <- a_τ τ + (1 - a_τ) τ_new
  uint64_t seed = 0;            // of the selector's own Philox stream (Note [selector seed] in make_selector.h)
};

class ImportanceSampler : public Selector {
 public:
  explicit ImportanceSampler(const ImportanceOptions& options);  // throws sieve::Error on invalid options

  std::string name() const override { return to_string(options_.score); }  // "upper-bound" or "loss"
  Selection select(const ScoringContext& ctx) override;
  void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) override;
  // {"tau", τ}, {"importance_on", 0 or 1 for the last step}, {"importance_fraction", share of steps so far}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // τ, a pending τ_new (read now: checkpoints are rare), the generator and the step counts.
  void save_state(CheckpointState& state, const std::string& prefix) override;
  void load_state(const CheckpointState& state, const std::string& prefix) override;

  float tau() const { return tau_; }  // as used by the last select()
  float tau_th() const { return tau_th_; }
  bool importance_on() const { return importance_on_; }

 private:
  void capture_tau(const Tensor& scores);  // queues τ_new of these scores for the next select()
  void fold_tau();                         // τ <- a_τ τ + (1 - a_τ) τ_new, if one is pending

  ImportanceOptions options_;
  float tau_th_;
  Generator gen_;
  float tau_ = 0.f;  // Algorithm 1, line 3
  AsyncScalar tau_new_;
  bool tau_pending_ = false;
  bool importance_on_ = false;
  bool awaiting_observe_ = false;  // the last step was uniform: its training forward pass gives τ_new
  int64_t steps_ = 0;
  int64_t importance_steps_ = 0;
};

}  // namespace sieve

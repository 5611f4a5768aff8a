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
//
// Note [history scores]: with ScoreSource::History no pre-sample is scored. Each example's score is the one its own
// training forward pass produced the last time it was trained (observe(): the upper bound from the training logits
// with the same fused kernel, or the per-example loss), stored in a table of N floats on the device. Every
// `refresh_every` steps the table is turned into a sampling distribution: examples not yet trained take the largest
// recorded score, and p_i ∝ s_i + smoothing × mean(s) (the reference's adaptive additive smoothing, which keeps every
// p_i > 0 and the estimate unbiased). That refresh copies the table to the host once and sums it in double, so the
// CPU and the GPU draw from the same prefix; between refreshes each step draws its b examples from all N by binary
// search of that prefix (O(b log N), no scan), with weights 1 / (N p_i), which keep the gradient unbiased for any p.
// τ is computed from the same distribution at each refresh, and importance sampling is on while it exceeds τ_th, whose
// default is 1 here (any variance reduction pays when scoring costs nothing); before the first training step's scores
// arrive the steps are uniform.
//
// Note [exact-norm sampler]: ScoreKind::GradientNorm scores the pre-sample by the exact per-example gradient norm
// over every parameter (sampling/gradient_norm.h): B forward and backward passes of one example per importance step,
// the paper's optimal but expensive baseline. The training forward pass has no such score to give for free, so in the
// uniform phase τ_new comes from the exact norms of the b uniform examples themselves, computed in select() (in
// evaluation mode, at the parameters the step is about to update; the reference's "full_gnorm" score computes them
// inside its training pass). That costs b one-example backward passes per uniform step. It has no history variant:
// a training pass computes no per-example gradients.
//
// Note [presample smoothing]: with presample_smoothing c > 0 the pre-sampled scores become s_i + c before they are
// normalised, as the reference's AdditiveSmoothingSampler (importance_sampling/samplers.py) does: p_i = (s_i + c) /
// Σ_j (s_j + c), which pulls p towards uniform and keeps every p_i > 0 (no example has an infinite weight). The
// weights 1 / (B p_i) and τ are computed from these same smoothed scores, so τ measures the distribution actually
// sampled; that holds for the τ_new of the uniform phase too (the reference there takes τ from the raw scores of the
// training pass, which would measure a distribution it never samples from). c = 0, the reference's default
// (ImportanceTraining applies no smoothing), leaves the scores as they are.
//
// Note [non-finite scores]: a NaN or infinite score (a diverged model) is refused with one error on both devices,
// never drawn from: τ_new is computed from every batch of scores and is NaN exactly when one of them is not finite
// (tau_from_sums in sampling/score_math.h), so the check costs no pass of its own. On the CPU it is read at once,
// before the draw; on a GPU it is read where τ is read anyway, at the next select(), so that no step waits for the
// device; the step it came from has by then recorded its non-finite training loss (Note [divergence] in
// apps/trainer.cpp), which is what the training loop reports. History scores are exempt: a non-finite entry of the
// table takes the largest finite score (Note [history scores]).
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

enum class ScoreSource { Presample, History };
ScoreSource parse_score_source(const std::string& name);  // "presample" | "history"

struct ImportanceOptions {
  ScoreKind score = ScoreKind::UpperBound;
  ScoreSource source = ScoreSource::Presample;  // Note [history scores]
  float smoothing = 0.5f;       // history: p_i ∝ s_i + smoothing × mean(s)
  float presample_smoothing = 0.f;  // presample: p_i ∝ s_i + presample_smoothing (Note [presample smoothing])
  int64_t refresh_every = 100;  // history: steps between rebuilding the distribution from the score table
  int64_t batch = 128;          // b
  int64_t presample = 1024;     // B
  std::optional<float> tau_th;  // τ_th; unset: default_tau_th(presample, batch)
  float tau_ema = 0.9f;         // a_τ in τ <- a_τ τ + (1 - a_τ) τ_new
  uint64_t seed = 0;            // of the selector's own Philox stream (Note [selector seed] in make_selector.h)
};

class ImportanceSampler : public Selector {
 public:
  explicit ImportanceSampler(const ImportanceOptions& options);  // throws sieve::Error on invalid options

  // "upper-bound", "loss" or "gradient-norm", with "-history" for ScoreSource::History.
  std::string name() const override;
  Selection select(const ScoringContext& ctx) override;
  void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) override;
  // {"tau", τ}, {"importance_on", 0 or 1 for the last step}, {"importance_fraction", share of steps so far}.
  std::vector<std::pair<std::string, double>> stats() const override;
  // History: "last_score", the score table (NaN: never trained).
  std::vector<std::pair<std::string, Tensor>> example_columns() const override;
  // τ, a pending τ_new (read now: checkpoints are rare), the generator and the step counts.
  void archive(StateArchive& ar) override;

  float tau() const { return tau_; }  // as used by the last select()
  float tau_th() const { return tau_th_; }
  bool importance_on() const { return importance_on_; }
  // History (Note [history scores]): the sampling distribution of the last refresh, float32 [N], undefined before
  // any example was trained.
  const Tensor& history_distribution() const { return distribution_; }
  const Tensor& history_prefix() const { return prefix_; }  // its inclusive prefix sums, as the draws search them

 private:
  void capture_tau(const Tensor& scores);  // queues τ_new of these scores for the next select()
  void fold_tau(const ScoringContext& ctx);  // τ <- a_τ τ + (1 - a_τ) τ_new (its mean over ranks), if pending
  void check_scores_finite();              // Note [non-finite scores]: throws when τ_new is not finite
  Tensor smoothed(const Tensor& scores) const;  // s + presample_smoothing (Note [presample smoothing])
  Selection select_from_history(const ScoringContext& ctx);
  void refresh_distribution(const ScoringContext& ctx);  // Note [history scores]

  ImportanceOptions options_;
  float tau_th_;
  Generator gen_;
  float tau_ = 0.f;  // Algorithm 1, line 3
  AsyncScalar tau_new_;
  bool tau_pending_ = false;
  int64_t tau_step_ = 0;  // the step whose scores gave the pending τ_new (for the error of Note [non-finite scores])
  bool importance_on_ = false;
  bool awaiting_observe_ = false;  // the last step was uniform: its training forward pass gives τ_new
  int64_t steps_ = 0;
  int64_t importance_steps_ = 0;
  // History (Note [history scores]).
  Tensor table_;         // float32 [N]: each example's last training score, -1 before its first
  Tensor distribution_;  // float32 [N]: s_i + smoothing × mean(s) as of the last refresh
  Tensor prefix_;        // float32 [N]: its inclusive prefix sums, summed in double
  int64_t refreshes_ = 0;
};

}  // namespace sieve

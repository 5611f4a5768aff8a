// How tight is the upper bound? On one pre-sample, the scores that importance sampling could use (the upper bound
// of eq. 20, the loss) are compared with the exact per-example gradient norms, the optimal score (Katharopoulos &
// Fleuret 2018, section 4.1, figures 1 and 2): by rank correlation, and by the variance of the gradient estimate
// that sampling in proportion to each would give, relative to uniform sampling.
//
// Note [sampled-gradient variance]: on a pre-sample of B examples with per-example gradients g_i and mean
// ḡ = (1/B) Σ_i g_i, importance sampling draws j with probability p_j and uses X = g_j / (B p_j), the weight
// 1 / (B p_j) of Algorithm 1 times g_j. It is unbiased for any p with p_i > 0 wherever g_i ≠ 0:
//   E[X] = Σ_j p_j g_j / (B p_j) = ḡ,
//   E‖X‖² = Σ_j p_j ‖g_j‖² / (B² p_j²) = (1/B²) Σ_j ‖g_j‖² / p_j,
// so the variance (the expected squared distance of X from ḡ, summed over the parameters) is
//   Var_p = E‖X − ḡ‖² = E‖X‖² − ‖ḡ‖² = (1/B²) Σ_i ‖g_i‖² / p_i − ‖ḡ‖².
// Uniform (p_i = 1/B) gives (1/B) Σ_i ‖g_i‖² − ‖ḡ‖². By Cauchy–Schwarz, (Σ_i ‖g_i‖)² ≤ (Σ_i ‖g_i‖² / p_i)(Σ_i p_i),
// with equality iff p_i ∝ ‖g_i‖: the exact-norm distribution has the smallest variance, (1/B²)(Σ_i ‖g_i‖)² − ‖ḡ‖².
// A batch of b independent draws divides every Var_p by b, which leaves their ratios, reported here, unchanged. The
// paper's figure 1 estimates the same comparison by sampling: the distance ‖(1/b) Σ X − ḡ‖ averaged over 10 batches,
// over uniform's; Var_p is its exact squared counterpart, without sampling noise. Only ‖g_i‖² and ‖ḡ‖² are needed,
// never the gradients of all B examples at once: B one-example gradient passes, ḡ summed on the device as they go.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/tensor.h"
#include "sampling/selector.h"

namespace sieve {

struct ScoreDiagnostics {
  int64_t presample = 0;              // B, the examples the numbers below are computed over
  double spearman_upper_bound = 0;    // rank correlation of the upper-bound scores with the exact gradient norms
  double spearman_loss = 0;           // rank correlation of the per-example losses with the exact gradient norms
  double mean_gradient_norm = 0;      // ‖ḡ‖, the norm of the pre-sample's mean gradient
  double variance_uniform = 0;        // Var_p of uniform sampling (Note [sampled-gradient variance]), absolute
  double relative_variance_loss = 0;           // Var_p / Var_uniform for p ∝ loss
  double relative_variance_upper_bound = 0;    // ... for p ∝ upper bound
  double relative_variance_gradient_norm = 0;  // ... for p ∝ exact gradient norm (the optimum, <= the others)
};

// Computes every field on the examples `indices` (int32 [B] on the training device, B >= 2): the scores from one
// ctx.logits call, the exact norms and ‖ḡ‖ from B ctx.loss_gradient calls of one example (sampling/gradient_norm.h),
// all in evaluation mode. Needs ctx.logits, ctx.labels and
// ctx.loss_gradient, and autograd enabled; throws sieve::Error otherwise. A correlation is NaN when either side is
// constant; a relative variance is +inf when its distribution gives probability 0 to an example whose gradient is
// not 0 (the estimate is then biased), and NaN when Var_uniform is 0 or a score is not finite (a diverged model).
ScoreDiagnostics diagnose_scores(const ScoringContext& ctx, const Tensor& indices);

// The record the trainer logs: {"presample", "spearman_upper_bound", "spearman_loss", "mean_gradient_norm",
// "variance_uniform", "relative_variance_loss", "relative_variance_upper_bound", "relative_variance_gradient_norm"};
// a NaN or infinite value is written as null. Found by nlohmann::json's argument-dependent lookup: json j = d.
void to_json(nlohmann::json& j, const ScoreDiagnostics& d);

// Ranks 1..n of `values` in increasing order, ties sharing the mean of the ranks they span ([3, 1, 3] -> [2.5, 1,
// 2.5]). Throws sieve::Error on NaN.
std::vector<double> average_ranks(const std::vector<double>& values);
// Spearman's ρ: the Pearson correlation of the average ranks of a and b (same length). NaN when n < 2, when either
// side is constant or holds a NaN.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);
// Var_p of Note [sampled-gradient variance] for p_i = scores_i / Σ_j scores_j (scores finite and >= 0; all zero:
// uniform, as sample_with_replacement then draws), given ‖g_i‖² and ‖ḡ‖². Rounding can make the two terms'
// difference slightly negative where the variance is 0 (B = 1, or parallel gradients sampled optimally); that is
// returned as 0.
double sampled_gradient_variance(const std::vector<double>& squared_norms, const std::vector<double>& scores,
                                 double mean_gradient_squared_norm);

}  // namespace sieve

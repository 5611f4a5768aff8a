// The exact per-example gradient norm ||∇_θ ℓ_i||_2 over every parameter: the score whose distribution is the optimal
// one for importance sampling (Katharopoulos & Fleuret 2018, section 3.1; "gradient-norm" in their figures 1 and 2),
// and the reference the upper bound of eq. 20 is measured against (sampling/score_diagnostics.h).
//
// Note [per-example gradients]: computed the generic way, one ScoringContext::loss_gradient call per example with
// weight 1 (the weighted mean of one loss is that loss), in evaluation mode like every scoring pass (Note [scoring
// mode] in sampling/importance.h). That is n forward and backward passes of batch 1: the expensive baseline of the
// paper, there to measure against, not to train fast with. The squared norm of each example is summed on the device
// (Σ_k sum(g_k ⊙ g_k) over the parameters k, in float32), and the n sums are read back to the host once at the end
// to take the square roots in double. (The outer-product identity ||∇_W ℓ_i||² = ||δ_i||² ||a_i||² of a Linear
// layer would need each layer's inputs and output gradients per example, which the ScoringContext does not offer.)
#pragma once

#include <vector>

#include "core/tensor.h"
#include "sampling/selector.h"

namespace sieve {

// ||∇_θ ℓ_i||_2 for the examples `indices` (int32 [n] on the training device): float32 [n] on the device of the
// indices. Needs ctx.loss_gradient, and autograd enabled (not under a NoGradGuard); throws sieve::Error otherwise.
Tensor per_example_gradient_norms(const ScoringContext& ctx, const Tensor& indices);

// What the variance of a sampled gradient needs (sampling/score_diagnostics.h), from the same n passes: the squared
// norms ‖∇ℓ_i‖² on the host in double (no square root and square in between), and ‖ḡ‖² of their mean
// ḡ = (1/n) Σ_i ∇ℓ_i, summed on the device as the passes go (in evaluation mode, the mean of the per-example
// gradients is the gradient of the mean loss: no batch statistics couple the examples).
struct PerExampleGradients {
  std::vector<double> squared_norms;     // [n]
  double mean_gradient_squared_norm = 0;  // ‖ḡ‖²
};
PerExampleGradients per_example_gradient_summary(const ScoringContext& ctx, const Tensor& indices);

}  // namespace sieve

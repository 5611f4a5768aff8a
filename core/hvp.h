// Hessian-vector products by central differences of gradients: the curvature that CREST's quadratic loss model
// needs (sampling/hutchinson.h), from an engine whose autograd has no double backward.
//
// Note [finite-difference hvp]: Hv ≈ (∇L(w + εv) − ∇L(w − εv)) / (2ε). Expanding ∇L around w, the even terms
// cancel and the truncation error is (ε² / 6) ∇⁴L[v, v, v, ·] = O(ε²) (exact for a quadratic L). Each gradient is
// float32 with a rounding error of about u ‖∇L‖ (u = 2⁻²⁴), which the division by 2ε turns into u ‖∇L‖ / ε; the
// sum of the two is smallest near ε ∝ u^(1/3). The step is taken relative to the size of the point and of the
// direction: ε = κ (1 + ‖w‖) / ‖v‖ with κ = 2⁻⁸ ≈ u^(1/3), so that the perturbation εv has a norm of about
// κ (1 + ‖w‖), a fixed small fraction of the parameters whatever the dimension of v (for a Rademacher v,
// ‖v‖ = √n). The parameters are restored afterwards by copying back a saved copy, never by subtracting εv, so w
// is bit-for-bit what it was. The gradient and the loss at w come with it, without a third pass: the mean of the two
// gradients is ∇L(w) + O(ε²), and the mean of the two losses less (ε² / 2) vᵀ(Hv) is L(w) + O(ε⁴) (both exact for
// a quadratic L, but for rounding).
#pragma once

#include <functional>
#include <vector>

#include "core/tensor.h"

namespace sieve {

// A scalar loss and its gradient with respect to each parameter, at the parameters' current values.
struct LossGradient {
  Tensor loss;                     // 0-d float32
  std::vector<Tensor> gradients;   // one per parameter, same shape and device, not aliasing the parameters
};
using LossGradientFn = std::function<LossGradient()>;

inline constexpr float kHvpRelativeStep = 1.f / 256.f;  // κ of Note [finite-difference hvp]

struct HessianVectorProduct {
  std::vector<Tensor> hv;              // H v, one per parameter
  std::vector<Tensor> gradient;        // (∇L(w + εv) + ∇L(w − εv)) / 2 = ∇L(w) + O(ε²)
  double loss = 0;                     // (L(w + εv) + L(w − εv)) / 2 − (ε² / 2) vᵀHv = L(w) + O(ε⁴)
  double epsilon = 0;                  // the step ε that was used
};

// H v at the current values of `params` (float32, any device, the same as v's) for the loss that `f` evaluates at
// the parameters' current values. Calls f twice and synchronises three times (two norms and vᵀHv); the parameters are modified in place during the calls (through
// detached views, without recording autograd history) and restored exactly before returning, also when f throws.
// Throws sieve::Error when v does not match the parameters or is zero.
HessianVectorProduct hessian_vector_product(const std::vector<Tensor>& params, const std::vector<Tensor>& v,
                                            const LossGradientFn& f, float relative_step = kHvpRelativeStep);

// Σ_k ‖t_k‖² in double, summed on the tensors' device (one synchronisation).
double squared_norm(const std::vector<Tensor>& tensors);

}  // namespace sieve

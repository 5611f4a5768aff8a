// Hutchinson's estimate of the Hessian diagonal and the quadratic loss model of CREST (Yang, Kang, Mirzasoleiman
// 2023, section "Overcoming C1"): around the parameters w_ℓ at a selection,
//   F(δ) = L(w_ℓ) + gᵀδ + ½ δᵀ diag(h) δ,   δ = w − w_ℓ,
// with g the coreset gradient and h an estimate of diag(H) from Rademacher probes, diag(H) = E[z ⊙ Hz].
//
// Note [hutchinson moving averages]: as the authors' code (an AdaHessian-style estimator, betas 0.9 / 0.999 and
// eps 1e-4, with their default --approx_moment), each probe with gradient g and Hessian-vector product Hz updates
//   m <- β1 m + (1 − β1) g,          s <- β2 s + (1 − β2) (z ⊙ Hz)²,
// and the model uses the bias-corrected averages g = m / (1 − β1ᵗ) and h = √(s / (1 − β2ᵗ)) + eps, t the number of
// probes so far. The averages run on across selections (the reference keeps one estimator for the whole run), so
// a selection's few probes are smoothed by the earlier ones. h is a root-mean-square: for exact products,
// E[(z_i (Hz)_i)²] = Σ_j H_ij², so h_i estimates the norm of row i of H, never below |H_ii|. The model's curvature is
// pessimistic, and the validity check re-selects sooner than it would with diag(H) itself. The plain mean of z ⊙ Hz, the unbiased estimate of diag(H), is accumulated beside them
// (diagonal_sum) for tests and for users who want it. Where the reference averages the per-probe values of g and
// h over a selection's mini-batches, sieve takes the averages after the selection's last probe (one pass fewer
// over the parameters; the difference is within the smoothing itself).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/hvp.h"
#include "core/random.h"
#include "core/tensor.h"

namespace sieve {

// Each element +1 or −1 with probability ½ (the top bit of its Philox word), n counters of `gen`; the same values
// on the CPU and the GPU.
Tensor rademacher(const Shape& shape, Generator& gen, Device device = Device::cpu());

struct HutchinsonOptions {
  float beta1 = 0.9f;    // of the gradient average
  float beta2 = 0.999f;  // of the average of (z ⊙ Hz)²
  float eps = 1e-4f;     // added to h, as AdaHessian's denominator
};

class HutchinsonEstimator {
 public:
  // Zero averages shaped like `parameters` (float32), on their devices. Throws on betas outside [0, 1).
  HutchinsonEstimator(const std::vector<Tensor>& parameters, const HutchinsonOptions& options = {});

  // One probe: the gradient g at w, the probe z and Hz, one tensor per parameter each (Note [hutchinson moving
  // averages]). One fused kernel per parameter tensor.
  void accumulate(const std::vector<Tensor>& gradient, const std::vector<Tensor>& z, const std::vector<Tensor>& hz);

  int64_t probes() const { return probes_; }  // t: probes since construction
  std::vector<Tensor> gradient() const;            // m / (1 − β1ᵗ); throws before the first probe
  std::vector<Tensor> hessian_diagonal() const;    // √(s / (1 − β2ᵗ)) + eps; throws before the first probe
  void moments(std::vector<Tensor>* gradient, std::vector<Tensor>* hessian) const;  // both in one pass; either null
  const std::vector<Tensor>& diagonal_sum() const { return diagonal_sum_; }  // Σ z ⊙ Hz since reset_sum()
  int64_t summed_probes() const { return summed_; }
  void reset_sum();
  const HutchinsonOptions& options() const { return options_; }

  // "m.<i>", "s.<i>" and "sum.<i>" tensors, and the counts as one-element int64 tensors "probes", "summed".
  std::vector<std::pair<std::string, Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

 private:
  HutchinsonOptions options_;
  std::vector<Tensor> grad_ema_, hess_sq_ema_, diagonal_sum_;
  int64_t probes_ = 0;
  int64_t summed_ = 0;
};

// One probe of the loss f at the current parameters: z ~ Rademacher (from gen), Hz by hessian_vector_product
// (two calls of f), and est.accumulate with the gradient at w that the same two calls give (core/hvp.h). Returns
// the loss at w, L(w) + O(ε⁴).
double hutchinson_probe(const std::vector<Tensor>& params, const LossGradientFn& f, HutchinsonEstimator& est,
                        Generator& gen);

// F(δ) = loss0 + gᵀδ + ½ δᵀ diag(h) δ around `origin` (a copy of the parameters at the selection).
struct QuadraticLossModel {
  double loss0 = 0;
  std::vector<Tensor> origin, gradient, hessian_diagonal;

  bool defined() const { return !origin.empty(); }
  // F(params − origin), summed on the parameters' device (one synchronisation).
  double predict(const std::vector<Tensor>& params) const;
  double hessian_norm() const;  // ‖h‖₂
};

// The model around the current parameters from one probe per loss in `batches` (the reference probes each
// mini-batch coreset once): loss0 is the mean of their losses, g and h the estimator's averages after the last
// probe. Calls each batch function twice.
QuadraticLossModel fit_quadratic_model(const std::vector<Tensor>& params, const std::vector<LossGradientFn>& batches,
                                       HutchinsonEstimator& est, Generator& gen);

// The backends' view of one probe and of the bias corrections.
struct HutchinsonStep {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
};
struct HutchinsonMoments {
  float correction1 = 1.f;  // 1 − β1ᵗ
  float correction2 = 1.f;  // 1 − β2ᵗ
  float eps = 0.f;
};

namespace cpu {
void rademacher_fill(float* z, int64_t n, uint64_t seed, uint64_t offset);
// z, hz, grad: (n) in; grad_ema, hess_sq_ema, diagonal_sum: (n) updated in place.
void hutchinson_accumulate(const float* z, const float* hz, const float* grad, int64_t n, HutchinsonStep step,
                           float* grad_ema, float* hess_sq_ema, float* diagonal_sum);
// grad_out = grad_ema / correction1, hess_out = sqrt(hess_sq_ema / correction2) + eps; all (n).
void hutchinson_moments(const float* grad_ema, const float* hess_sq_ema, int64_t n, HutchinsonMoments m,
                        float* grad_out, float* hess_out);
}  // namespace cpu
namespace cuda {
void rademacher_fill(float* z, int64_t n, uint64_t seed, uint64_t offset);
void hutchinson_accumulate(const float* z, const float* hz, const float* grad, int64_t n, HutchinsonStep step,
                           float* grad_ema, float* hess_sq_ema, float* diagonal_sum);
void hutchinson_moments(const float* grad_ema, const float* hess_sq_ema, int64_t n, HutchinsonMoments m,
                        float* grad_out, float* hess_out);
}  // namespace cuda

}  // namespace sieve

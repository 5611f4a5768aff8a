#include "sampling/gradient_norm.h"

#include <cmath>
#include <string>

#include "core/autograd.h"
#include "core/hvp.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace sieve {

namespace {

// float32 [n] on the device: Σ_k ||∇_{θ_k} ℓ_i||² for each example (Note [per-example gradients]). With `sum`, also
// Σ_i ∇ℓ_i, one tensor per parameter.
Tensor squared_norms_on_device(const ScoringContext& ctx, const Tensor& indices, std::vector<Tensor>* sum_out) {
  SIEVE_CHECK(static_cast<bool>(ctx.loss_gradient),
              "per-example gradient norms: the ScoringContext has no loss_gradient function");
  SIEVE_CHECK(grad_enabled(), "per-example gradient norms need autograd, but a NoGradGuard is alive");
  check_dtype(indices, DType::I32, "per-example gradient norms indices");
  check_dim(indices, 1, "per-example gradient norms indices");
  const Device device = indices.device();
  const int64_t n = indices.size(0);
  Tensor squared = Tensor::zeros({n}, DType::F32, device);
  const Tensor one = Tensor::ones({1}, DType::F32, device);
  for (int64_t i = 0; i < n; ++i) {
    const LossGradient r = ctx.loss_gradient(indices.rows(i, i + 1), one);
    SIEVE_CHECK(!r.gradients.empty(), "per-example gradient norms: loss_gradient returned no gradients");
    NoGradGuard no_grad;
    Tensor slot = squared.rows(i, i + 1);
    for (size_t k = 0; k < r.gradients.size(); ++k) {
      const Tensor& g = r.gradients[k];
      SIEVE_CHECK(g.defined() && g.dtype() == DType::F32 && g.device() == device,
                  "per-example gradient norms: gradient ", k, " is ",
                  g.defined() ? g.description() : std::string("undefined"), ", expected float32 on ",
                  to_string(device));
      const Tensor flat = g.detach().reshape({-1});
      add_(slot, sum(mul(flat, flat)).reshape({1}));
      if (sum_out) {
        if (sum_out->size() <= k) sum_out->push_back(Tensor::zeros(g.shape(), DType::F32, device));
        SIEVE_CHECK((*sum_out)[k].shape() == g.shape(), "per-example gradient norms: gradient ", k, " is ",
                    g.description(), " for one example and ", (*sum_out)[k].description(), " for another");
        add_((*sum_out)[k], g.detach());
      }
    }
  }
  return squared;
}

}  // namespace

PerExampleGradients per_example_gradient_summary(const ScoringContext& ctx, const Tensor& indices) {
  std::vector<Tensor> total;
  const std::vector<float> squared = squared_norms_on_device(ctx, indices, &total).to(Device::cpu()).to_vector<float>();
  PerExampleGradients out;
  out.squared_norms.assign(squared.begin(), squared.end());
  if (!squared.empty()) {
    const double n = static_cast<double>(squared.size());
    out.mean_gradient_squared_norm = squared_norm(total) / (n * n);  // ‖Σ_i g_i / n‖²
  }
  return out;
}

Tensor per_example_gradient_norms(const ScoringContext& ctx, const Tensor& indices) {
  const std::vector<float> squared = squared_norms_on_device(ctx, indices, nullptr).to(Device::cpu()).to_vector<float>();
  std::vector<float> norms(squared.size());
  for (size_t i = 0; i < squared.size(); ++i) norms[i] = static_cast<float>(std::sqrt(static_cast<double>(squared[i])));
  return Tensor::from_vector(norms, {static_cast<int64_t>(norms.size())}, indices.device());
}

}  // namespace sieve

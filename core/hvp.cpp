#include "core/hvp.h"

#include <cmath>
#include <string>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace sieve {

double squared_norm(const std::vector<Tensor>& tensors) {
  NoGradGuard no_grad;
  if (tensors.empty()) return 0.0;
  Tensor total = Tensor::zeros({}, DType::F32, tensors.front().device());
  for (const Tensor& t : tensors) {
    const Tensor flat = t.detach().reshape({-1});
    add_(total, sum(mul(flat, flat)));
  }
  return total.item();
}

namespace {

// Puts w0 + step * v into the parameters (detached views of their storage).
void set_perturbed(const std::vector<Tensor>& params, const std::vector<Tensor>& saved, const std::vector<Tensor>& v,
                   float step) {
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor p = params[k].detach();
    p.copy_(saved[k]);
    axpy_(p, step, v[k]);
  }
}

void restore(const std::vector<Tensor>& params, const std::vector<Tensor>& saved) {
  for (size_t k = 0; k < params.size(); ++k) params[k].detach().copy_(saved[k]);
}

void check_gradients(const LossGradient& r, const std::vector<Tensor>& params) {
  SIEVE_CHECK(r.loss.defined() && r.loss.numel() == 1, "hessian_vector_product: the loss function returned ",
              r.loss.defined() ? r.loss.description() : std::string("an undefined loss"), ", expected one value");
  SIEVE_CHECK(r.gradients.size() == params.size(), "hessian_vector_product: the loss function returned ",
              r.gradients.size(), " gradients for ", params.size(), " parameters");
  for (size_t k = 0; k < params.size(); ++k) {
    SIEVE_CHECK(r.gradients[k].defined() && r.gradients[k].shape() == params[k].shape() &&
                    r.gradients[k].device() == params[k].device() && r.gradients[k].dtype() == DType::F32,
                "hessian_vector_product: gradient ", k, " is ",
                r.gradients[k].defined() ? r.gradients[k].description() : std::string("undefined"), ", expected ",
                params[k].description());
    SIEVE_CHECK(!r.gradients[k].same_storage(params[k]), "hessian_vector_product: gradient ", k,
                " aliases its parameter");
  }
}

}  // namespace

HessianVectorProduct hessian_vector_product(const std::vector<Tensor>& params, const std::vector<Tensor>& v,
                                            const LossGradientFn& f, float relative_step) {
  SIEVE_CHECK(!params.empty(), "hessian_vector_product: no parameters");
  SIEVE_CHECK(v.size() == params.size(), "hessian_vector_product: ", v.size(), " direction tensors for ",
              params.size(), " parameters");
  SIEVE_CHECK(std::isfinite(relative_step) && relative_step > 0.f,
              "hessian_vector_product: the relative step must be positive, found ", relative_step);
  for (size_t k = 0; k < params.size(); ++k) {
    check_dtype(params[k], DType::F32, "hessian_vector_product parameter");
    SIEVE_CHECK(v[k].defined() && v[k].shape() == params[k].shape() && v[k].dtype() == DType::F32 &&
                    v[k].device() == params[k].device(),
                "hessian_vector_product: direction ", k, " is ",
                v[k].defined() ? v[k].description() : std::string("undefined"), ", expected ",
                params[k].description());
  }
  std::vector<Tensor> saved;
  saved.reserve(params.size());
  for (const Tensor& p : params) saved.push_back(p.detach().clone());
  const double v_norm = std::sqrt(squared_norm(v));
  SIEVE_CHECK(v_norm > 0 && std::isfinite(v_norm), "hessian_vector_product: the direction has norm ", v_norm,
              ", expected a finite non-zero vector");
  const double w_norm = std::sqrt(squared_norm(saved));
  const double eps = static_cast<double>(relative_step) * (1.0 + w_norm) / v_norm;  // Note [finite-difference hvp]

  LossGradient plus, minus;
  try {
    set_perturbed(params, saved, v, static_cast<float>(eps));
    plus = f();
    check_gradients(plus, params);
    set_perturbed(params, saved, v, static_cast<float>(-eps));
    minus = f();
    check_gradients(minus, params);
  } catch (...) {
    restore(params, saved);
    throw;
  }
  restore(params, saved);

  NoGradGuard no_grad;
  HessianVectorProduct out;
  out.epsilon = eps;
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor gp = plus.gradients[k].detach(), gm = minus.gradients[k].detach();
    out.hv.push_back(scale(sub(gp, gm), static_cast<float>(0.5 / eps)));
    out.gradient.push_back(scale(add(gp, gm), 0.5f));
  }
  // (L(w + εv) + L(w − εv)) / 2 = L(w) + (ε² / 2) vᵀHv + O(ε⁴): the curvature term is removed with the Hv just found.
  Tensor vhv = Tensor::zeros({}, DType::F32, params.front().device());
  for (size_t k = 0; k < params.size(); ++k) add_(vhv, sum(mul(v[k].reshape({-1}), out.hv[k].reshape({-1}))));
  const double mean_loss = 0.5 * (static_cast<double>(plus.loss.detach().to(Device::cpu()).item()) +
                                  static_cast<double>(minus.loss.detach().to(Device::cpu()).item()));
  out.loss = mean_loss - 0.5 * eps * eps * static_cast<double>(vhv.item());
  return out;
}

}  // namespace sieve

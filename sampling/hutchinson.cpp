#include "sampling/hutchinson.h"

#include <charconv>
#include <cmath>

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace sieve {

Tensor rademacher(const Shape& shape, Generator& gen, Device device) {
  Tensor z = Tensor::empty(shape, DType::F32, device);
  const int64_t n = z.numel();
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(device, rademacher_fill, z.data<float>(), n, gen.seed(), offset);
  return z;
}

namespace {

HutchinsonOptions checked(const HutchinsonOptions& o) {
  SIEVE_CHECK(o.beta1 >= 0.f && o.beta1 < 1.f, "Hutchinson estimator: beta1 must be in [0, 1), found ", o.beta1);
  SIEVE_CHECK(o.beta2 >= 0.f && o.beta2 < 1.f, "Hutchinson estimator: beta2 must be in [0, 1), found ", o.beta2);
  SIEVE_CHECK(std::isfinite(o.eps) && o.eps >= 0.f, "Hutchinson estimator: eps must be >= 0, found ", o.eps);
  return o;
}

void check_like(const std::vector<Tensor>& ts, const std::vector<Tensor>& like, const char* what) {
  SIEVE_CHECK(ts.size() == like.size(), "Hutchinson estimator: ", ts.size(), " ", what, " tensors for ",
              like.size(), " parameters");
  for (size_t k = 0; k < ts.size(); ++k)
    SIEVE_CHECK(ts[k].defined() && ts[k].dtype() == DType::F32 && ts[k].shape() == like[k].shape() &&
                    ts[k].device() == like[k].device(),
                "Hutchinson estimator: ", what, " ", k, " is ",
                ts[k].defined() ? ts[k].description() : std::string("undefined"), ", expected ",
                like[k].description());
}

HutchinsonMoments moments_of(const HutchinsonOptions& o, int64_t t) {
  SIEVE_CHECK(t > 0, "Hutchinson estimator: no probe yet, so no averages");
  const double td = static_cast<double>(t);
  return {static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta1), td)),
          static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta2), td)), o.eps};
}

}  // namespace

HutchinsonEstimator::HutchinsonEstimator(const std::vector<Tensor>& parameters, const HutchinsonOptions& options)
    : options_(checked(options)) {
  SIEVE_CHECK(!parameters.empty(), "Hutchinson estimator: no parameters");
  for (const Tensor& p : parameters) {
    check_dtype(p, DType::F32, "Hutchinson estimator parameter");
    grad_ema_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
    hess_sq_ema_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
    diagonal_sum_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
  }
}

void HutchinsonEstimator::accumulate(const std::vector<Tensor>& gradient, const std::vector<Tensor>& z,
                                     const std::vector<Tensor>& hz) {
  check_like(gradient, grad_ema_, "gradient");
  check_like(z, grad_ema_, "probe");
  check_like(hz, grad_ema_, "Hessian-vector product");
  const HutchinsonStep step{options_.beta1, options_.beta2};
  for (size_t k = 0; k < grad_ema_.size(); ++k) {
    SIEVE_DISPATCH(grad_ema_[k].device(), hutchinson_accumulate, z[k].data<float>(), hz[k].data<float>(),
                   gradient[k].data<float>(), grad_ema_[k].numel(), step, grad_ema_[k].data<float>(),
                   hess_sq_ema_[k].data<float>(), diagonal_sum_[k].data<float>());
  }
  ++probes_;
  ++summed_;
}

void HutchinsonEstimator::moments(std::vector<Tensor>* gradient, std::vector<Tensor>* hessian) const {
  const HutchinsonMoments m = moments_of(options_, probes_);
  for (size_t k = 0; k < grad_ema_.size(); ++k) {
    Tensor g = Tensor::empty(grad_ema_[k].shape(), DType::F32, grad_ema_[k].device());
    Tensor h = Tensor::empty(grad_ema_[k].shape(), DType::F32, grad_ema_[k].device());
    SIEVE_DISPATCH(g.device(), hutchinson_moments, grad_ema_[k].data<float>(), hess_sq_ema_[k].data<float>(),
                   g.numel(), m, g.data<float>(), h.data<float>());
    if (gradient) gradient->push_back(g);
    if (hessian) hessian->push_back(h);
  }
}

std::vector<Tensor> HutchinsonEstimator::gradient() const {
  std::vector<Tensor> g;
  moments(&g, nullptr);
  return g;
}

std::vector<Tensor> HutchinsonEstimator::hessian_diagonal() const {
  std::vector<Tensor> h;
  moments(nullptr, &h);
  return h;
}

void HutchinsonEstimator::reset_sum() {
  for (Tensor& t : diagonal_sum_) fill_(t, 0.0);
  summed_ = 0;
}

std::vector<std::pair<std::string, Tensor>> HutchinsonEstimator::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < grad_ema_.size(); ++k) {
    out.emplace_back("m." + std::to_string(k), grad_ema_[k]);
    out.emplace_back("s." + std::to_string(k), hess_sq_ema_[k]);
    out.emplace_back("sum." + std::to_string(k), diagonal_sum_[k]);
  }
  out.emplace_back("probes", Tensor::from_vector<int64_t>({probes_}, {1}));
  out.emplace_back("summed", Tensor::from_vector<int64_t>({summed_}, {1}));
  return out;
}

void HutchinsonEstimator::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : state)
      if (n == name) return t;
    SIEVE_FAIL("Hutchinson estimator: the state has no entry '", name, "'");
  };
  auto count = [&](const std::string& name) {
    const Tensor& t = find(name);
    SIEVE_CHECK(t.dtype() == DType::I64 && t.numel() == 1, "Hutchinson estimator: state entry '", name, "' is ",
                t.description(), ", expected one int64");
    return t.to(Device::cpu()).to_vector<int64_t>()[0];
  };
  const int64_t probes = count("probes"), summed = count("summed");
  std::vector<Tensor> m, s, sum;
  for (size_t k = 0; k < grad_ema_.size(); ++k) {
    for (auto [name, out] : {std::pair{"m.", &m}, std::pair{"s.", &s}, std::pair{"sum.", &sum}}) {
      const std::string key = name + std::to_string(k);
      const Tensor& t = find(key);
      SIEVE_CHECK(t.dtype() == DType::F32 && t.shape() == grad_ema_[k].shape(), "Hutchinson estimator: state entry '",
                  key, "' is ", t.description(), ", expected ", grad_ema_[k].description());
      Tensor copy = Tensor::empty(t.shape(), DType::F32, grad_ema_[k].device());
      copy.copy_(t);
      out->push_back(copy);
    }
  }
  grad_ema_ = std::move(m);
  hess_sq_ema_ = std::move(s);
  diagonal_sum_ = std::move(sum);
  probes_ = probes;
  summed_ = summed;
}

double hutchinson_probe(const std::vector<Tensor>& params, const LossGradientFn& f, HutchinsonEstimator& est,
                        Generator& gen) {
  std::vector<Tensor> z;
  z.reserve(params.size());
  for (const Tensor& p : params) z.push_back(rademacher(p.shape(), gen, p.device()));
  const HessianVectorProduct r = hessian_vector_product(params, z, f);
  est.accumulate(r.gradient, z, r.hv);
  return r.loss;
}

double QuadraticLossModel::predict(const std::vector<Tensor>& params) const {
  SIEVE_CHECK(defined(), "quadratic loss model: not fitted");
  SIEVE_CHECK(params.size() == origin.size(), "quadratic loss model: ", params.size(), " parameters, the model has ",
              origin.size());
  NoGradGuard no_grad;
  Tensor linear = Tensor::zeros({}, DType::F32, origin.front().device());
  Tensor quadratic = Tensor::zeros({}, DType::F32, origin.front().device());
  for (size_t k = 0; k < params.size(); ++k) {
    SIEVE_CHECK(params[k].shape() == origin[k].shape() && params[k].device() == origin[k].device(),
                "quadratic loss model: parameter ", k, " is ", params[k].description(), ", expected ",
                origin[k].description());
    const Tensor delta = sub(params[k].detach(), origin[k]).reshape({-1});
    add_(linear, sum(mul(gradient[k].reshape({-1}), delta)));
    add_(quadratic, sum(mul(hessian_diagonal[k].reshape({-1}), mul(delta, delta))));
  }
  return loss0 + static_cast<double>(linear.item()) + 0.5 * static_cast<double>(quadratic.item());
}

double QuadraticLossModel::hessian_norm() const { return std::sqrt(squared_norm(hessian_diagonal)); }

QuadraticLossModel fit_quadratic_model(const std::vector<Tensor>& params, const std::vector<LossGradientFn>& batches,
                                       HutchinsonEstimator& est, Generator& gen) {
  SIEVE_CHECK(!batches.empty(), "fit_quadratic_model: no batches to probe");
  QuadraticLossModel model;
  double loss = 0;
  for (const LossGradientFn& f : batches) loss += hutchinson_probe(params, f, est, gen);
  model.loss0 = loss / static_cast<double>(batches.size());
  for (const Tensor& p : params) model.origin.push_back(p.detach().clone());
  est.moments(&model.gradient, &model.hessian_diagonal);
  return model;
}

}  // namespace sieve

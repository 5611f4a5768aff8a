#include "optim/adam.h"

#include <cmath>

#include "core/cuda_graph.h"
#include "core/ops/dispatch.h"

namespace sieve {

AdamStep adam_step(const AdamOptions& o, float lr, int64_t t) {
  // As PyTorch: the bias corrections in double (Python floats), each factor rounded once to float by the kernel
  // that takes it.
  const double b1 = o.beta1, b2 = o.beta2, rate = lr, lambda = o.weight_decay;
  AdamStep s;
  s.beta2 = o.beta2;
  s.one_minus_beta1 = static_cast<float>(1.0 - b1);
  s.one_minus_beta2 = static_cast<float>(1.0 - b2);
  s.eps = o.eps;
  s.l2 = o.decoupled ? 0.f : o.weight_decay;
  s.decay = o.decoupled && lambda != 0.0 ? static_cast<float>(1.0 - rate * lambda) : 1.f;
  s.step_size = static_cast<float>(rate / (1.0 - std::pow(b1, static_cast<double>(t))));
  s.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, static_cast<double>(t))));
  return s;
}

Adam::Adam(std::vector<Tensor> parameters, const AdamOptions& options)
    : Optimizer(std::move(parameters), options.lr, options.decoupled ? "AdamW" : "Adam"), options_(options) {
  SIEVE_CHECK(std::isfinite(options.beta1) && options.beta1 >= 0.f && options.beta1 < 1.f, name(),
              ": beta1 must be in [0, 1), found ", options.beta1);
  SIEVE_CHECK(std::isfinite(options.beta2) && options.beta2 >= 0.f && options.beta2 < 1.f, name(),
              ": beta2 must be in [0, 1), found ", options.beta2);
  SIEVE_CHECK(std::isfinite(options.eps) && options.eps > 0.f, name(), ": eps must be finite and > 0, found ",
              options.eps);
  SIEVE_CHECK(std::isfinite(options.weight_decay) && options.weight_decay >= 0.f, name(),
              ": weight decay must be finite and >= 0, found ", options.weight_decay);
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
  steps_.assign(params_.size(), 0);
}

void Adam::step() {
  SIEVE_CHECK(!capturing_cuda_graph(), name(), ": the step count and bias correction are host values, which a CUDA "
              "graph would fix at capture; captured steps (--cuda-graphs) need SGD");
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;  // as PyTorch: no gradient, no update and no step counted
    check_gradient(i, g);
    AdamStep s = adam_step(options_, lr(), steps_[i] + 1);
    Tensor m = exp_avg_[i], v = exp_avg_sq_[i];
    if (!m.defined()) {
      // Allocated once; the kernel reads them as zeros on this step and writes them (PyTorch's zeros_like).
      m = Tensor::empty(p.shape(), DType::F32, p.device());
      v = Tensor::empty(p.shape(), DType::F32, p.device());
      s.first = true;
    }
    SIEVE_DISPATCH(p.device(), adam_update, p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
                   p.numel(), s);
    exp_avg_[i] = m;  // kept only once the kernel that initialises them has been queued
    exp_avg_sq_[i] = v;
    steps_[i]++;
  }
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    const std::string index = std::to_string(i);
    out.emplace_back("exp_avg." + index, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + index, exp_avg_sq_[i]);
    out.emplace_back("step." + index, Tensor::from_vector<int64_t>({steps_[i]}, {}));
  }
  return out;
}

void Adam::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  const size_t n = params_.size();
  std::vector<Tensor> m(n), v(n);
  std::vector<int64_t> steps(n, 0);
  std::vector<bool> has_step(n, false);
  for (const auto& [name, t] : state) {
    int64_t i = -1;
    Tensor* slot = nullptr;
    if ((i = state_index(name, "exp_avg.", n)) >= 0) {
      slot = &m[static_cast<size_t>(i)];
    } else if ((i = state_index(name, "exp_avg_sq.", n)) >= 0) {
      slot = &v[static_cast<size_t>(i)];
    } else if ((i = state_index(name, "step.", n)) >= 0) {
      const size_t k = static_cast<size_t>(i);
      SIEVE_CHECK(!has_step[k], this->name(), ": the state has two entries for '", name, "'");
      SIEVE_CHECK(t.defined() && t.dtype() == DType::I64 && t.numel() == 1, this->name(), ": state entry '", name,
                  "' is ", t.defined() ? t.description() : "undefined", ", expected one int64 step count");
      steps[k] = t.to(Device::cpu()).data<int64_t>()[0];
      SIEVE_CHECK(steps[k] >= 1, this->name(), ": state entry '", name, "' counts ", steps[k],
                  " steps, expected >= 1");
      has_step[k] = true;
      continue;
    }
    SIEVE_CHECK(slot != nullptr, this->name(), ": state entry '", name,
                "' is not \"exp_avg.<i>\", \"exp_avg_sq.<i>\" or \"step.<i>\" for one of its ", n, " parameters");
    const size_t k = static_cast<size_t>(i);
    SIEVE_CHECK(!slot->defined(), this->name(), ": the state has two entries for '", name, "'");
    SIEVE_CHECK(t.defined() && t.dtype() == DType::F32 && t.shape() == params_[k].shape(), this->name(),
                ": state entry '", name, "' is ", t.defined() ? t.description() : "undefined", ", expected ",
                params_[k].description());
    *slot = t;
  }
  for (size_t i = 0; i < n; ++i) {
    const int present = int(m[i].defined()) + int(v[i].defined()) + int(has_step[i]);
    SIEVE_CHECK(present == 0 || present == 3, name(), ": the state of parameter ", i,
                " is incomplete; expected exp_avg.", i, ", exp_avg_sq.", i, " and step.", i, ", found ", present,
                " of them");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!m[i].defined()) continue;
    m[i] = state_buffer(i, m[i]);
    v[i] = state_buffer(i, v[i]);
  }
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
  steps_ = std::move(steps);
}

AdamOptions Adam::options() const {
  AdamOptions o = options_;
  o.lr = lr();
  return o;
}

}  // namespace sieve

#include "optim/sgd.h"

#include <cmath>

#include "core/cuda_graph.h"
#include "core/ops/dispatch.h"

namespace sieve {

Sgd::Sgd(std::vector<Tensor> parameters, const SgdOptions& options)
    : Optimizer(std::move(parameters), options.lr, "SGD"), options_(options) {
  SIEVE_CHECK(std::isfinite(options.momentum) && options.momentum >= 0.f && options.momentum < 1.f,
              "SGD: momentum must be in [0, 1), found ", options.momentum);
  SIEVE_CHECK(std::isfinite(options.weight_decay) && options.weight_decay >= 0.f,
              "SGD: weight decay must be finite and >= 0, found ", options.weight_decay);
  SIEVE_CHECK(!options.nesterov || options.momentum > 0.f,
              "SGD: Nesterov momentum needs momentum > 0, found momentum ", options.momentum);
  momentum_.resize(params_.size());
}

void Sgd::step() {
  const bool with_momentum = options_.momentum != 0.f;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;  // as PyTorch: no gradient, no update (weight decay included)
    check_gradient(i, g);
    SgdStep s{lr(), options_.momentum, options_.weight_decay, options_.nesterov, false, lr_cell()};
    Tensor v = momentum_[i];
    if (with_momentum && !v.defined()) {
      // A captured first step would start the buffer afresh at every replay (Note [cuda graphs]).
      SIEVE_CHECK(!capturing_cuda_graph(), "SGD: parameter ", i, " has no momentum buffer yet inside a CUDA graph "
                  "capture; run one step without capture first");
      // Allocated once, filled by the kernel with v <- g (its contents are never read on this step).
      v = Tensor::empty(p.shape(), DType::F32, p.device());
      s.first = true;
    }
    SIEVE_DISPATCH(p.device(), sgd_update, p.data<float>(), g.data<float>(), with_momentum ? v.data<float>() : nullptr,
                   p.numel(), s);
    if (with_momentum) momentum_[i] = v;  // kept only once the kernel that initialises it has been queued
  }
}

std::vector<std::pair<std::string, Tensor>> Sgd::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < momentum_.size(); ++i)
    if (momentum_[i].defined()) out.emplace_back("momentum." + std::to_string(i), momentum_[i]);
  return out;
}

void Sgd::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  const std::string kPrefix = "momentum.";
  std::vector<Tensor> loaded(params_.size());
  for (const auto& [name, t] : state) {
    const int64_t index = state_index(name, kPrefix, params_.size());
    SIEVE_CHECK(index >= 0, "SGD: state entry '", name, "' is not \"momentum.<i>\" for one of its ", params_.size(),
                " parameters");
    const size_t i = static_cast<size_t>(index);
    SIEVE_CHECK(options_.momentum != 0.f, "SGD: the state has momentum buffers ('", name,
                "') but this optimizer has momentum 0");
    SIEVE_CHECK(!loaded[i].defined(), "SGD: the state has two entries for '", name, "'");
    SIEVE_CHECK(t.defined() && t.dtype() == DType::F32 && t.shape() == params_[i].shape(), "SGD: state entry '", name,
                "' is ", t.defined() ? t.description() : "undefined", ", expected ", params_[i].description());
    loaded[i] = t;
  }
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (!loaded[i].defined()) continue;
    loaded[i] = state_buffer(i, loaded[i]);
  }
  momentum_ = std::move(loaded);
}

SgdOptions Sgd::options() const {
  SgdOptions o = options_;
  o.lr = lr();
  return o;
}

}  // namespace sieve

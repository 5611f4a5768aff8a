// Optimizer: what every optimizer (SGD, Adam) offers a training loop.
//
// An optimizer keeps shallow copies of the parameters: Tensor copies share storage and autograd state, so step()
// updates the model's own tensors in place and zero_grad() drops the gradients the model's leaves hold. A loop:
//
//   opt.set_lr(schedule->lr(progress));    // optim/schedule.h
//   opt.zero_grad();
//   loss.backward();
//   opt.step();
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sieve {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter whose gradient is defined; a parameter without one is left as it is.
  virtual void step() = 0;

  // Named state tensors for checkpoints, e.g. "momentum.3" for the momentum buffer of parameter 3. They share
  // storage with the optimizer's buffers (a loader may copy_ into them); buffers not yet created are absent.
  virtual std::vector<std::pair<std::string, Tensor>> state() const { return {}; }
  // The inverse of state(), for resuming (core/checkpoint.h): the optimizer continues as the one that wrote
  // `state` would have. Every entry is checked before anything changes; an entry this optimizer does not know
  // throws. An optimizer without state accepts only an empty list.
  virtual void load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
    SIEVE_CHECK(state.empty(), name_, ": keeps no state, but the state to load has ", state.size(), " entries (\"",
                state.front().first, "\", ...)");
  }

  // Drops every parameter's gradient (Tensor::zero_grad): the next backward pass starts from nothing.
  void zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
  }

  float lr() const { return lr_; }
  void set_lr(float lr) {
    SIEVE_CHECK(std::isfinite(lr) && lr >= 0.f, name_, ": the learning rate must be finite and >= 0, found ", lr);
    lr_ = lr;
  }

  // Captured steps (Note [cuda graphs] in core/cuda_graph.h): from here the update kernels read the learning rate
  // from the float32 device cell `cell`, which the caller writes before each replay (nullptr: lr() again). Only
  // optimizers whose whole step is device work can be captured: capturable().
  void set_lr_cell(const float* cell) {
    SIEVE_CHECK(cell == nullptr || device().is_cuda(), name_, ": a learning-rate cell is for captured GPU steps");
    lr_cell_ = cell;
  }
  const float* lr_cell() const { return lr_cell_; }
  virtual bool capturable() const { return false; }

  const std::vector<Tensor>& parameters() const { return params_; }
  Device device() const { return params_.front().device(); }
  const std::string& name() const { return name_; }

 protected:
  // Parameters: a non-empty list of distinct float32 leaf tensors that require gradients, all on one device.
  Optimizer(std::vector<Tensor> parameters, float lr, std::string name)
      : params_(std::move(parameters)), name_(std::move(name)) {
    SIEVE_CHECK(!params_.empty(), name_, ": the parameter list is empty (did the model register its parameters?)");
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& p = params_[i];
      SIEVE_CHECK(p.defined(), name_, ": parameter ", i, " is an undefined tensor");
      SIEVE_CHECK(p.dtype() == DType::F32, name_, ": parameter ", i, " is ", p.description(),
                  "; parameters must be float32");
      SIEVE_CHECK(p.requires_grad(), name_, ": parameter ", i, " (", p.description(),
                  ") does not require gradients; call set_requires_grad() on it or leave it out");
      SIEVE_CHECK(p.grad_fn() == nullptr, name_, ": parameter ", i, " (", p.description(),
                  ") is the result of an operation, not a leaf tensor; optimise the leaf it was computed from");
      SIEVE_CHECK(p.device() == params_[0].device(), name_, ": parameters on different devices (parameter 0 is ",
                  params_[0].description(), ", parameter ", i, " is ", p.description(), "); move the model first");
      for (size_t j = 0; j < i; ++j)
        SIEVE_CHECK(p.numel() == 0 || p.raw_data() != params_[j].raw_data(), name_, ": parameter ", i,
                    " is the same tensor as parameter ", j, "; each parameter must appear once");
    }
    set_lr(lr);
  }

  // A gradient must match its parameter (autograd guarantees it; a hand-set gradient might not).
  void check_gradient(size_t i, const Tensor& grad) const {
    const Tensor& p = params_[i];
    SIEVE_CHECK(grad.dtype() == DType::F32 && grad.shape() == p.shape() && grad.device() == p.device(), name_,
                ": the gradient of parameter ", i, " is ", grad.description(), ", expected ", p.description());
  }

  // For load_state: i when `name` is prefix + a decimal i < count (e.g. "momentum.3"), else -1.
  static int64_t state_index(const std::string& name, const std::string& prefix, size_t count) {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
    size_t i = 0;
    const char* digits = name.data() + prefix.size();
    const char* end = name.data() + name.size();
    const auto [ptr, ec] = std::from_chars(digits, end, i);
    if (ec != std::errc() || ptr != end || i >= count) return -1;
    return static_cast<int64_t>(i);
  }

  // For load_state: a fresh buffer on parameter i's device holding a copy of a loaded (checked) state tensor, so
  // that the optimizer never shares storage with the checkpoint it came from.
  Tensor state_buffer(size_t i, const Tensor& loaded) const {
    Tensor t = Tensor::empty(params_[i].shape(), DType::F32, params_[i].device());
    t.copy_(loaded);
    return t;
  }

  std::vector<Tensor> params_;

 private:
  std::string name_;
  float lr_ = 0.f;
  const float* lr_cell_ = nullptr;
};

}  // namespace sieve

// Stochastic gradient descent with momentum, Nesterov momentum and weight decay: the update of torch.optim.SGD
// with dampening 0, one fused kernel per parameter tensor.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optim/optimizer.h"

namespace sieve {

struct SgdOptions {
  float lr = 1e-3f;          // >= 0 (PyTorch's default); a schedule changes it with Optimizer::set_lr
  float momentum = 0.f;      // mu in [0, 1); 0 is plain SGD
  float weight_decay = 0.f;  // lambda >= 0: the gradient of (lambda / 2) |p|^2 added to each gradient
  bool nesterov = false;     // needs momentum > 0
};

// Per parameter with a gradient g (torch.optim.SGD, dampening 0):
//   g <- g + lambda p
//   if mu != 0:  v <- mu v + g   (v <- g on the parameter's first step, as PyTorch's buffer = clone(g))
//                g <- nesterov ? g + mu v : v
//   p <- p - lr g
// Momentum buffers are allocated on a parameter's first step with a gradient and reused afterwards.
class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<Tensor> parameters, const SgdOptions& options);

  void step() override;
  // "momentum.<i>" for each parameter i whose buffer exists (momentum > 0 and at least one step with a gradient).
  std::vector<std::pair<std::string, Tensor>> state() const override;
  // The inverse of state(), for resuming (core/checkpoint.h): the buffers become copies of `state`'s on the
  // parameters' device, so a parameter with a saved buffer continues v <- mu v + g on its next step and one without
  // starts afresh (v <- g), exactly as the saved optimizer would have. Every entry is checked (name, index, shape,
  // dtype) before anything changes.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state) override;
  // The options, with the current learning rate.
  SgdOptions options() const;
  // Every step is device work once the momentum buffers exist (an uncaptured step made them).
  bool capturable() const override { return true; }

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;  // one per parameter; undefined until its first step (or when momentum is 0)
};

// The hyper-parameters of one update, as the backends see them.
struct SgdStep {
  float lr = 0.f;
  float momentum = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
  bool first = false;  // the momentum buffer is new: v <- g rather than mu v + g (its contents are not read)
  // On a GPU, where the learning rate is read when the kernel runs, in place of lr: captured steps
  // (Optimizer::set_lr_cell, Note [cuda graphs] in core/cuda_graph.h). Always null on the CPU.
  const float* lr_cell = nullptr;
};

namespace cpu {
// param, grad, momentum: (n). momentum is null when step.momentum is 0.
void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step);
}  // namespace cpu

namespace cuda {
void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step);
}  // namespace cuda

}  // namespace sieve

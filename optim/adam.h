// Adam and AdamW: the updates of torch.optim.Adam (L2 weight decay added to the gradient) and torch.optim.AdamW
// (decoupled weight decay), with PyTorch's bias correction, one fused kernel per parameter tensor.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optim/optimizer.h"

namespace sieve {

struct AdamOptions {
  float lr = 1e-3f;          // >= 0; a schedule changes it with Optimizer::set_lr
  float beta1 = 0.9f;        // in [0, 1): decay of the first-moment average
  float beta2 = 0.999f;      // in [0, 1): decay of the second-moment average
  float eps = 1e-8f;         // > 0: added to the bias-corrected root of the second moment
  float weight_decay = 0.f;  // lambda >= 0
  bool decoupled = false;    // false: Adam's L2 form (g <- g + lambda p); true: AdamW (p <- p (1 - lr lambda))
};

// Per parameter with a gradient g, its own step count t incremented first (torch.optim.Adam / AdamW, not amsgrad,
// not maximize):
//   decoupled:  p <- p (1 - lr lambda)          else:  g <- g + lambda p
//   m <- m + (1 - beta1) (g - m)                 (m, v start at 0)
//   v <- beta2 v + (1 - beta2) g^2
//   p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The moment buffers are allocated on a parameter's first step with a gradient and reused afterwards; a parameter
// without a gradient is skipped and its count does not advance (as PyTorch).
class Adam final : public Optimizer {
 public:
  Adam(std::vector<Tensor> parameters, const AdamOptions& options);

  void step() override;
  // For each parameter i that has taken a step: "exp_avg.<i>" and "exp_avg_sq.<i>" (float32, the parameter's
  // shape, sharing storage with the buffers) and "step.<i>" (int64 0-d on the CPU, a copy of its step count).
  // PyTorch's state_dict names, with the index of the parameter.
  std::vector<std::pair<std::string, Tensor>> state() const override;
  // The inverse of state(): a parameter with all three entries continues from them exactly; one with none starts
  // afresh. Every entry is checked (name, index, shape, dtype, a step count >= 1, all three present) before
  // anything changes.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state) override;
  // The options, with the current learning rate.
  AdamOptions options() const;
  // Steps taken by parameter i (0 before its first gradient).
  int64_t step_count(size_t i) const { return steps_.at(i); }

 private:
  AdamOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // one per parameter; undefined until its first step
  std::vector<int64_t> steps_;
};

// The hyper-parameters of one update, as the backends see them: the scalar factors of PyTorch's update, computed
// once per tensor on the host in double and rounded to float as PyTorch's Python-float arithmetic is.
struct AdamStep {
  float beta2 = 0.999f;       // v <- beta2 v + (1 - beta2) g^2
  float one_minus_beta1 = 0.1f;    // m <- m + (1 - beta1) (g - m)
  float one_minus_beta2 = 0.001f;
  float eps = 1e-8f;
  float l2 = 0.f;             // g <- g + l2 p (Adam's weight decay; 0 for AdamW)
  float decay = 1.f;          // p <- decay p before the update (1 - lr lambda for AdamW; 1 for Adam)
  float step_size = 0.f;      // lr / (1 - beta1^t)
  float bias2_sqrt = 1.f;     // sqrt(1 - beta2^t)
  bool first = false;         // the buffers are new: m and v are read as 0 (their contents are not read)
};

// Builds the factors of step t >= 1 for the given options and learning rate.
AdamStep adam_step(const AdamOptions& options, float lr, int64_t t);

namespace cpu {
// param, grad, exp_avg, exp_avg_sq: (n).
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, AdamStep step);
}  // namespace cpu

namespace cuda {
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, AdamStep step);
}  // namespace cuda

}  // namespace sieve

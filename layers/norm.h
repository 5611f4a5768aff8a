// Batch normalisation as a layer: learned per-channel scale and shift, and running statistics for evaluation.
#pragma once

#include "layers/module.h"

namespace sieve {

// batch_norm2d over [N, channels, H, W] (core/ops/batch_norm.h): batch statistics in training mode (updating the
// running ones), running statistics in evaluation mode (Module::is_training()).
// A BatchNorm2d's settings by name, PyTorch's defaults: BatchNorm2d(64, {.device = d}).
struct BatchNormOptions {
  float momentum = 0.1f;  // running = (1 - momentum) running + momentum batch
  float eps = 1e-5f;
  Device device = Device::cpu();
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, const BatchNormOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight;        // gamma [channels], ones
  Tensor bias;          // beta [channels], zeros
  Tensor running_mean;  // [channels], zeros; a buffer
  Tensor running_var;   // [channels], ones; a buffer

 private:
  int64_t channels_;
  float momentum_, eps_;
};

}  // namespace sieve

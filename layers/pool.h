// Pooling and dropout layers (core/ops/pool.h, core/ops/dropout.h): no parameters.
#pragma once

#include "core/random.h"
#include "layers/module.h"

namespace sieve {

class MaxPool2d : public Module {
 public:
  MaxPool2d(int kernel, int stride, int padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  int kernel_, stride_, padding_;
};

// count_include_pad = true, as avg_pool2d.
class AvgPool2d : public Module {
 public:
  AvgPool2d(int kernel, int stride, int padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  int kernel_, stride_, padding_;
};

// [N, C, H, W] -> [N, C].
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "GlobalAvgPool"; }
};

// Inverted dropout with probability p in training mode, the identity in evaluation mode. The layer owns its
// Generator (seeded here), so a run's masks are fixed by the seed; generator() exposes its position for
// checkpoints.
class Dropout : public Module {
 public:
  explicit Dropout(float p, uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Generator& generator() { return gen_; }
  float p() const { return p_; }

 private:
  float p_;
  Generator gen_;
};

}  // namespace sieve

// 2-d convolution layer over NCHW images (the op is core/ops/conv2d.h).
#pragma once

#include "core/ops/conv2d.h"
#include "core/random.h"
#include "layers/module.h"

namespace sieve {

// A height and a width; a single number means both (Conv2d(16, 32, 3, gen) is a 3x3 kernel).
struct Size2d {
  int64_t h = 0, w = 0;
  Size2d(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, for square sizes
  Size2d(int64_t height, int64_t width) : h(height), w(width) {}
};

// A Conv2d's settings by name: Conv2d(16, 32, 3, gen, {.stride = 2, .padding = 1, .bias = false, .device = d}).
struct Conv2dOptions {
  Size2d stride = 1;
  Size2d padding = 0;
  bool bias = true;  // without bias (the usual choice before batch norm) the layer has the one parameter "weight"
  Device device = Device::cpu();
};

class Conv2d : public Module {
 public:
  // Weights N(0, 2 / (in_channels * R * S)) (Kaiming-normal, for convolutions followed by a ReLU), bias zero.
  Conv2d(int64_t in_channels, int64_t out_channels, Size2d kernel, Generator& gen, const Conv2dOptions& options = {});
  Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, P, Q]
  std::string describe() const override;    // e.g. "Conv2d(16 -> 32, 3x3, stride 2, padding 1, no bias)"

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  const Conv2dParams& params() const { return params_; }

  Tensor weight;  // [out, in, R, S]
  Tensor bias;    // [out], undefined without bias

 private:
  int64_t in_, out_;
  Conv2dParams params_;
};

}  // namespace sieve

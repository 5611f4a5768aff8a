// Wide residual networks (Zagoruyko & Komodakis 2016): pre-activation blocks, for 32x32 images.
#pragma once

#include <memory>

#include "core/random.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace sieve {

// BN-ReLU-Conv3x3(stride)-BN-ReLU-Conv3x3, plus the input (identity) or, when the width or the resolution
// changes, a strided 1x1 convolution of the pre-activated input, as in the authors' code.
class WideBlock : public Module {
 public:
  WideBlock(int64_t in, int64_t out, int64_t stride, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Conv2d> conv1_, conv2_, shortcut_;  // shortcut_ null for the identity
};

// WRN-depth-k: a 3x3 convolution to 16 channels, three groups of (depth - 4) / 6 blocks of widths 16k, 32k, 64k
// (strides 1, 2, 2), BN-ReLU, global average pooling and a linear classifier. depth = 6n + 4.
class WideResNet : public Module {
 public:
  WideResNet(int depth, int widen, int64_t in_channels, int64_t classes, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  int depth_, widen_;
  std::shared_ptr<Conv2d> stem_;
  std::vector<std::shared_ptr<WideBlock>> blocks_;
  std::shared_ptr<BatchNorm2d> bn_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace sieve

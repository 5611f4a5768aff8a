// Residual networks (He et al. 2016) as in torchvision: basic blocks (ResNet-18, -34) and bottleneck blocks
// (ResNet-50), ImageNet stem, a replaceable classifier head for fine-tuning.
#pragma once

#include <memory>

#include "core/random.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace sieve {

// Conv-BN-ReLU-...-BN, plus the input or its projection (1x1 convolution and BN), then ReLU. `bottleneck` uses
// 1x1-3x3-1x1 convolutions with 4x expansion, the stride on the 3x3 (torchvision's "ResNet v1.5").
class ResidualBlock : public Module {
 public:
  ResidualBlock(int64_t in, int64_t planes, int64_t stride, bool bottleneck, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  int64_t out_channels() const { return out_; }

 private:
  std::vector<std::shared_ptr<Conv2d>> convs_;
  std::vector<std::shared_ptr<BatchNorm2d>> bns_;
  std::shared_ptr<Conv2d> down_conv_;
  std::shared_ptr<BatchNorm2d> down_bn_;
  int64_t out_;
};

class ResNet : public Module {
 public:
  // depth 18, 34 or 50.
  ResNet(int depth, int64_t in_channels, int64_t classes, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  // A new, freshly initialised classifier for `classes` outputs (fine-tuning a trained network on a new task).
  void reset_head(int64_t classes, Generator& gen);
  Linear& head() { return *fc_; }

 private:
  int depth_;
  std::shared_ptr<Conv2d> stem_;
  std::shared_ptr<BatchNorm2d> stem_bn_;
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace sieve

#include "layers/resnet.h"

#include "core/ops.h"

namespace sieve {

ResidualBlock::ResidualBlock(int64_t in, int64_t planes, int64_t stride, bool bottleneck, Generator& gen,
                             Device device) {
  out_ = bottleneck ? planes * 4 : planes;
  auto conv = [&](int64_t a, int64_t b, int64_t k, int64_t s) {
    convs_.push_back(std::make_shared<Conv2d>(a, b, k, gen,
        Conv2dOptions{.stride = s, .padding = k / 2, .bias = false, .device = device}));
    bns_.push_back(std::make_shared<BatchNorm2d>(b, BatchNormOptions{.device = device}));
    const std::string i = std::to_string(convs_.size());
    register_module("conv" + i, convs_.back());
    register_module("bn" + i, bns_.back());
  };
  if (bottleneck) {
    conv(in, planes, 1, 1);
    conv(planes, planes, 3, stride);
    conv(planes, out_, 1, 1);
  } else {
    conv(in, planes, 3, stride);
    conv(planes, planes, 3, 1);
  }
  if (stride != 1 || in != out_) {
    down_conv_ = std::make_shared<Conv2d>(in, out_, 1, gen,
        Conv2dOptions{.stride = stride, .bias = false, .device = device});
    down_bn_ = std::make_shared<BatchNorm2d>(out_, BatchNormOptions{.device = device});
    register_module("downsample.0", down_conv_);
    register_module("downsample.1", down_bn_);
  }
}

Tensor ResidualBlock::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < convs_.size(); ++i) {
    h = bns_[i]->forward(convs_[i]->forward(h));
    if (i + 1 < convs_.size()) h = relu(h);
  }
  return relu(add(h, down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x));
}

std::string ResidualBlock::describe() const {
  return std::string(convs_.size() == 3 ? "Bottleneck" : "BasicBlock") + "(-> " + std::to_string(out_) + ")";
}

ResNet::ResNet(int depth, int64_t in_channels, int64_t classes, Generator& gen, Device device) : depth_(depth) {
  std::vector<int> counts;
  bool bottleneck = false;
  switch (depth) {
    case 18: counts = {2, 2, 2, 2}; break;
    case 34: counts = {3, 4, 6, 3}; break;
    case 50: counts = {3, 4, 6, 3}; bottleneck = true; break;
    default: SIEVE_FAIL("resnet", depth, ": expected resnet18, resnet34 or resnet50");
  }
  stem_ = std::make_shared<Conv2d>(in_channels, 64, 7, gen,
      Conv2dOptions{.stride = 2, .padding = 3, .bias = false, .device = device});
  stem_bn_ = std::make_shared<BatchNorm2d>(64, BatchNormOptions{.device = device});
  register_module("conv1", stem_);
  register_module("bn1", stem_bn_);
  int64_t width = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = 64LL << stage;
    for (int i = 0; i < counts[stage]; ++i) {
      auto block = std::make_shared<ResidualBlock>(width, planes, (i == 0 && stage > 0) ? 2 : 1, bottleneck, gen, device);
      register_module("layer" + std::to_string(stage + 1) + "." + std::to_string(i), block);
      blocks_.push_back(block);
      width = block->out_channels();
    }
  }
  fc_ = std::make_shared<Linear>(width, classes, gen, LinearOptions{.init = Init::GlorotUniform, .device = device});
  register_module("fc", fc_);
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = max_pool2d(relu(stem_bn_->forward(stem_->forward(x))), 3, 2, 1);
  for (auto& block : blocks_) h = block->forward(h);
  return fc_->forward(global_avg_pool(h));
}

std::string ResNet::describe() const { return "ResNet-" + std::to_string(depth_); }

void ResNet::reset_head(int64_t classes, Generator& gen) {
  auto fresh = std::make_shared<Linear>(fc_->weight.size(1), classes, gen,
      LinearOptions{.init = Init::GlorotUniform, .device = fc_->weight.device()});
  replace_module("fc", fresh);
  fc_ = fresh;
}

}  // namespace sieve

#include "layers/wide_resnet.h"

#include "core/ops.h"

namespace sieve {

WideBlock::WideBlock(int64_t in, int64_t out, int64_t stride, Generator& gen, Device device) {
  bn1_ = std::make_shared<BatchNorm2d>(in, BatchNormOptions{.device = device});
  conv1_ = std::make_shared<Conv2d>(in, out, 3, gen,
      Conv2dOptions{.stride = stride, .padding = 1, .bias = false, .device = device});
  bn2_ = std::make_shared<BatchNorm2d>(out, BatchNormOptions{.device = device});
  conv2_ = std::make_shared<Conv2d>(out, out, 3, gen, Conv2dOptions{.padding = 1, .bias = false, .device = device});
  register_module("bn1", bn1_);
  register_module("conv1", conv1_);
  register_module("bn2", bn2_);
  register_module("conv2", conv2_);
  if (in != out || stride != 1) {
    shortcut_ = std::make_shared<Conv2d>(in, out, 1, gen,
        Conv2dOptions{.stride = stride, .bias = false, .device = device});
    register_module("shortcut", shortcut_);
  }
}

Tensor WideBlock::forward(const Tensor& x) {
  Tensor o = relu(bn1_->forward(x));
  Tensor y = conv2_->forward(relu(bn2_->forward(conv1_->forward(o))));
  return add(y, shortcut_ ? shortcut_->forward(o) : x);
}

std::string WideBlock::describe() const {
  return "WideBlock(" + conv1_->describe() + ", " + conv2_->describe() + (shortcut_ ? ", 1x1 shortcut)" : ")");
}

WideResNet::WideResNet(int depth, int widen, int64_t in_channels, int64_t classes, Generator& gen, Device device)
    : depth_(depth), widen_(widen) {
  SIEVE_CHECK(depth >= 10 && (depth - 4) % 6 == 0, "wrn-", depth, "-", widen,
              ": the depth must be 6n + 4 with n >= 1 (e.g. 16, 22, 28, 40)");
  SIEVE_CHECK(widen >= 1, "wrn-", depth, "-", widen, ": the widening factor must be at least 1");
  const int n = (depth - 4) / 6;
  stem_ = std::make_shared<Conv2d>(in_channels, 16, 3, gen,
      Conv2dOptions{.padding = 1, .bias = false, .device = device});
  register_module("conv1", stem_);
  int64_t width = 16;
  const int64_t widths[3] = {16LL * widen, 32LL * widen, 64LL * widen};
  for (int g = 0; g < 3; ++g) {
    for (int i = 0; i < n; ++i) {
      auto block = std::make_shared<WideBlock>(width, widths[g], (i == 0 && g > 0) ? 2 : 1, gen, device);
      register_module("block" + std::to_string(g + 1) + "." + std::to_string(i), block);
      blocks_.push_back(block);
      width = widths[g];
    }
  }
  bn_ = std::make_shared<BatchNorm2d>(width, BatchNormOptions{.device = device});
  register_module("bn", bn_);
  fc_ = std::make_shared<Linear>(width, classes, gen, LinearOptions{.init = Init::GlorotUniform, .device = device});
  register_module("fc", fc_);
}

Tensor WideResNet::forward(const Tensor& x) {
  Tensor h = stem_->forward(x);
  for (auto& block : blocks_) h = block->forward(h);
  return fc_->forward(global_avg_pool(relu(bn_->forward(h))));
}

std::string WideResNet::describe() const {
  return "WideResNet(depth " + std::to_string(depth_) + ", width x" + std::to_string(widen_) + ")";
}

}  // namespace sieve

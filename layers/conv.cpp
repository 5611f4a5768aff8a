#include "layers/conv.h"

#include "layers/init.h"

namespace sieve {
namespace {

std::string size_string(int64_t h, int64_t w) {
  return h == w ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2d kernel, Generator& gen, const Conv2dOptions& options)
    : in_(in_channels),
      out_(out_channels),
      params_{options.stride.h, options.stride.w, options.padding.h, options.padding.w} {
  const Size2d stride = options.stride, padding = options.padding;
  const Device device = options.device;
  SIEVE_CHECK(in_channels > 0 && out_channels > 0, "Conv2d: channel counts must be positive, got ", in_channels,
              " -> ", out_channels);
  SIEVE_CHECK(kernel.h > 0 && kernel.w > 0, "Conv2d: kernel must be positive, got ", kernel.h, "x", kernel.w);
  SIEVE_CHECK(stride.h > 0 && stride.w > 0, "Conv2d: stride must be positive, got ", stride.h, "x", stride.w);
  SIEVE_CHECK(padding.h >= 0 && padding.w >= 0, "Conv2d: padding must not be negative, got ", padding.h, "x",
              padding.w);
  // Each output sums in * R * S products: that is the fan-in that keeps activations' variance through a ReLU.
  weight = init::kaiming_normal({out_, in_, kernel.h, kernel.w}, in_ * kernel.h * kernel.w, gen, device);
  register_parameter("weight", &weight);
  if (options.bias) {
    bias = Tensor::zeros({out_}, DType::F32, device);
    register_parameter("bias", &bias);
  }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, params_); }

std::string Conv2d::describe() const {
  std::string s = "Conv2d(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", " +
                  std::to_string(weight.size(2)) + "x" + std::to_string(weight.size(3));
  const Conv2dParams& p = params_;
  if (p.stride_h != 1 || p.stride_w != 1) s += ", stride " + size_string(p.stride_h, p.stride_w);
  if (p.pad_h != 0 || p.pad_w != 0) s += ", padding " + size_string(p.pad_h, p.pad_w);
  return s + (bias.defined() ? ")" : ", no bias)");
}

}  // namespace sieve

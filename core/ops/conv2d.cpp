#include "core/ops/conv2d.h"

#include <atomic>

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

std::atomic<bool> g_allow_tf32{true};  // Note [conv tf32]
std::atomic<bool> g_conv_benchmark{false};
std::atomic<bool> g_allow_winograd{true};  // Note [conv winograd]

// Checks x, w, bias and params against each other and returns the shape the backends take.
Conv2dShape conv2d_shape(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_dim(x, 4, "conv2d input [N, C, H, W]");
  check_dim(w, 4, "conv2d weight [K, C, R, S]");
  check_dtype(x, DType::F32, "conv2d input");
  check_dtype(w, DType::F32, "conv2d weight");
  check_same_device(x, w, "conv2d");
  SIEVE_CHECK(p.stride_h >= 1 && p.stride_w >= 1, "conv2d: strides must be at least 1, got ", p.stride_h, "x",
              p.stride_w);
  SIEVE_CHECK(p.pad_h >= 0 && p.pad_w >= 0, "conv2d: padding must not be negative, got ", p.pad_h, "x", p.pad_w);
  Conv2dShape s{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3),
                p.stride_h, p.stride_w, p.pad_h, p.pad_w, matmul_precision()};
  SIEVE_CHECK(s.c == w.size(1), "conv2d: input ", x.description(), " has ", s.c, " channels but weight ",
              w.description(), " expects ", w.size(1));
  SIEVE_CHECK(s.c > 0 && s.h > 0 && s.w > 0, "conv2d: empty input image ", x.description());
  SIEVE_CHECK(s.k > 0 && s.r > 0 && s.s > 0, "conv2d: empty weight ", w.description());
  SIEVE_CHECK(s.r <= s.h + 2 * s.pad_h && s.s <= s.w + 2 * s.pad_w, "conv2d: kernel ", s.r, "x", s.s,
              " is larger than the padded input ", s.h + 2 * s.pad_h, "x", s.w + 2 * s.pad_w, " (input ",
              x.description(), ", padding ", s.pad_h, "x", s.pad_w, ")");
  if (bias.defined()) {
    check_dtype(bias, DType::F32, "conv2d bias");
    check_same_device(x, bias, "conv2d");
    SIEVE_CHECK(bias.dim() == 1 && bias.size(0) == s.k, "conv2d: bias ", bias.description(), " does not match ",
                s.k, " output channels");
  }
  return s;
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
void set_conv_benchmark(bool on) { g_conv_benchmark.store(on); }
bool conv_benchmark() { return g_conv_benchmark.load(); }
bool allow_tf32() { return g_allow_tf32.load(); }
void set_allow_winograd(bool allow) { g_allow_winograd.store(allow); }
bool allow_winograd() { return g_allow_winograd.load(); }

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams params) {
  const Conv2dShape s = conv2d_shape(x, w, bias, params);
  const Device device = x.device();
  // An empty batch is a valid (empty) result; cuDNN rejects zero-sized descriptors, so skip the backends.
  const bool empty = s.n == 0;
  Tensor y = empty ? Tensor::zeros({0, s.k, s.p(), s.q()}, DType::F32, device)
                   : Tensor::empty({s.n, s.k, s.p(), s.q()}, DType::F32, device);
  if (!empty)
    SIEVE_DISPATCH(device, conv2d_fwd, s, x.data<float>(), w.data<float>(),
                   bias.defined() ? bias.data<float>() : nullptr, y.data<float>());
  if (needs_grad({&x, &w, &bias})) {
    const bool has_bias = bias.defined();
    const bool need_x = x.requires_grad(), need_w = w.requires_grad();  // the first layer's input needs none
    const bool need_b = has_bias && bias.requires_grad();
    // Keep only what the backward pass reads (Note [saved tensors]): x for dw, w for dx.
    const Tensor sx = need_w ? x.detach() : Tensor(), sw = need_x ? w.detach() : Tensor();
    std::vector<Tensor> inputs{x, w};
    if (has_bias) inputs.push_back(bias);
    record(y, "conv2d", inputs, [s, sx, sw, has_bias, need_x, need_w, need_b, device](const Tensor& g) {
      const float* dy = g.data<float>();
      std::vector<Tensor> grads(has_bias ? 3 : 2);
      if (need_x) grads[0] = Tensor::empty({s.n, s.c, s.h, s.w}, DType::F32, device);
      if (need_w)
        grads[1] = s.n > 0 ? Tensor::empty({s.k, s.c, s.r, s.s}, DType::F32, device)
                           : Tensor::zeros({s.k, s.c, s.r, s.s}, DType::F32, device);
      if (s.n > 0 && (need_x || need_w))  // both in one call: oneDNN reorders dy once for the two
        SIEVE_DISPATCH(device, conv2d_bwd, s, need_w ? sx.data<float>() : nullptr, dy,
                       need_x ? sw.data<float>() : nullptr, need_x ? grads[0].data<float>() : nullptr,
                       need_w ? grads[1].data<float>() : nullptr);
      if (need_b) {
        grads[2] = s.n > 0 ? Tensor::empty({s.k}, DType::F32, device) : Tensor::zeros({s.k}, DType::F32, device);
        if (s.n > 0) SIEVE_DISPATCH(device, conv2d_bwd_bias, s, dy, grads[2].data<float>());
      }
      return grads;
    });
  }
  return y;
}

}  // namespace sieve

// 2-d convolution (cross-correlation, as in every DL framework) of NCHW float32 images: oneDNN (or im2col +
// OpenBLAS, the reference) on the CPU, cuDNN on the GPU.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "core/ops/cpu_backend.h"
#include "core/ops/precision.h"
#include "core/setting_scope.h"
#include "core/tensor.h"

namespace sieve {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // zeros on each side
};

// y[n, k, p, q] = bias[k] + sum_{c, r, s} x[n, c, p * stride_h - pad_h + r, q * stride_w - pad_w + s] w[k, c, r, s]
// x [N, C, H, W], w [K, C, R, S], bias [K] or undefined  ->  y [N, K, P, Q],
// P = (H + 2 pad_h - R) / stride_h + 1, Q = (W + 2 pad_w - S) / stride_w + 1.
// Differentiable in x (only computed when x requires a gradient), w and bias. The three products run in the
// precision of matmul_precision() at the forward call (core/ops/precision.h, Note [bf16 products]).
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams params = {});

// Note [conv tf32]: whether cuDNN may run float32 convolutions on TF32 tensor cores (Ampere and newer): inputs
// rounded to a 10-bit mantissa, products accumulated in float32; several times faster, relative error ~1e-3.
// On (the default, as for convolutions in PyTorch): the descriptor's math type is CUDNN_DEFAULT_MATH, which
// permits TF32 on sm_80+, and cuDNN may pick a kernel whose math type is CUDNN_TENSOR_OP_MATH; kernels that
// would down-convert to half precision (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) are never used. Off:
// CUDNN_FMA_MATH, exact float32 FMA kernels only (CUDNN_DEFAULT_MATH would not do: it permits TF32). The CPU
// path never uses TF32. The caller decides; tests that compare a GPU with the CPU turn it off. A process-wide
// setting, read at each call, so a change applies to the next convolution. It has no effect on convolutions in
// MatmulPrecision::BF16 (Note [bf16 products]), whose inputs are already bf16.
void set_allow_tf32(bool allow);
bool allow_tf32();

// set_allow_tf32 for a scope (tests and benchmarks that need exact float32 convolutions for a while).
using AllowTf32Scope = SettingScope<bool, allow_tf32, set_allow_tf32>;

// Note [conv winograd]: whether oneDNN may run the CPU's float32 convolutions as Winograd F(4x4, 3x3) products,
// or only directly (convolution_direct, as PyTorch's CPU convolutions). Allowed (the default), a convolution of
// at least 32 channels in and out is planned with convolution_auto, and oneDNN picks its Winograd kernels
// ("jit_wino_4x3", AVX-512) where it judges them faster: 3x3, stride 1, at a training batch (16 here, not 8).
// Narrower ones stay direct: there oneDNN's choice of Winograd was slower here (core/ops/onednn.cpp). Winograd
// multiplies 4x less than direct in its products but adds input, filter and output transforms; it made the
// WRN-28-2 CPU training step (b 16) ~20% faster here (README). The transforms round differently: on results of
// magnitude 10-50, forward and input gradient were within 1.3e-4 of im2col's, direct oneDNN within 3e-5, weight
// gradients alike (Conv2dCpu.WinogradMatchesIm2colWhereChosen), as with cuDNN's Winograd kernels on a GPU. A
// process-wide setting read at each call, so a change applies to the next convolution (each setting has its
// own oneDNN plans). No effect on the GPU, on bf16 products or on the reference backend.
void set_allow_winograd(bool allow);
bool allow_winograd();

// set_allow_winograd for a scope.
using AllowWinogradScope = SettingScope<bool, allow_winograd, set_allow_winograd>;

// Whether cuDNN's algorithm for each convolution is the fastest of its candidates, timed once per shape by
// cudnnFind*Algorithm (as PyTorch's torch.backends.cudnn.benchmark), or its heuristics' choice (the default, Note
// [conv algorithm choice] in core/ops/conv2d_cudnn.cpp). Benchmarked plans cost tens of milliseconds per shape and
// direction when first met, may pick non-deterministic algorithms, and may differ between runs by timing noise.
// A process-wide setting read when a shape's plan is built; plans of both kinds are cached apart. No effect on
// the CPU.
void set_conv_benchmark(bool on);
bool conv_benchmark();

// The plain description the backends take (Note [views, not Tensors]).
struct Conv2dShape {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input x [n, c, h, w]
  int64_t k = 0, r = 0, s = 0;         // filters w [k, c, r, s]
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  // BF16: inputs of the products rounded to bf16, float32 accumulation, each product's result (y without its
  // bias, dx, dw) rounded to bf16 once (Note [bf16 products]). Part of the cuDNN plan key.
  MatmulPrecision precision = MatmulPrecision::F32;
  int64_t p() const { return (h + 2 * pad_h - r) / stride_h + 1; }  // output height
  int64_t q() const { return (w + 2 * pad_w - s) / stride_w + 1; }  // output width
  auto operator<=>(const Conv2dShape&) const = default;  // a key of the cuDNN plan cache
};

// Every pointer is contiguous NCHW (KCRS for filters) on the backend's device; outputs are overwritten.
namespace cpu {
// cpu_backend()'s implementation (core/ops/cpu_backend.h; im2col for bf16 products).
void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias /*[k] or null*/,
                float* y /*[n, k, p, q]*/);
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx /*[n, c, h, w]*/);
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw /*[k, c, r, s]*/);
void conv2d_bwd_bias(const Conv2dShape& s, const float* dy, float* dbias /*[k]*/);
// conv2d_bwd_data and conv2d_bwd_filter from one dy; dx or dw null: that gradient is not wanted. oneDNN reorders
// dy into its blocked layout once for both.
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw);

namespace reference {  // im2col + OpenBLAS (Note [conv im2col]), any precision
void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw);
}  // namespace reference

namespace onednn {  // float32 products only; each call throws where available() is false
void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw);
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw);
// oneDNN's name for the forward kernel it chose for s under the current Winograd setting (Note [conv winograd]),
// e.g. "jit_wino_4x3:avx512_core" or "jit:avx512_core".
std::string conv2d_kernel(const Conv2dShape& s);
}  // namespace onednn
}  // namespace cpu

namespace cuda {
void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw);
void conv2d_bwd_bias(const Conv2dShape& s, const float* dy, float* dbias);
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw);
}  // namespace cuda

}  // namespace sieve

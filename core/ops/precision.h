// The precision of convolutions and matrix products: float32, or bfloat16 inputs with float32 accumulation
// ("mixed precision" with float32 master weights).
#pragma once

#include <cstdint>
#include <string>

#include "core/setting_scope.h"
#include "core/tensor.h"

namespace sieve {

// Note [bf16 products]: with MatmulPrecision::BF16, matmul, linear and conv2d (forward and both backward
// products) round the *inputs* of each product to bfloat16 (8 significant bits, round to nearest even) and
// accumulate in float32. Everything else stays float32: parameters, gradients and optimizer state (the master
// weights), activations between layers, biases, and every other op. On the GPU the inputs are cast to bf16 into
// scratch memory and multiplied on tensor cores (cublasGemmEx with bf16 A/B and a float32 C; cuDNN with bf16
// tensors and float32 compute). cuDNN's legacy API needs the output of a bf16 convolution in bf16 too, so a
// convolution's result (y, dx or dw) is rounded to bf16 once, after the float32 accumulation, and widened back
// to float32; matrix products write float32. The CPU backend emulates exactly this arithmetic (the same
// rounding function, precision_math.h, on the inputs, an ordinary float32 OpenBLAS product, and the same output
// rounding for convolutions), so it is the reference the GPU is compared with: the two differ only by the order
// of float32 accumulation. The CPU gains no speed from it. A process-wide setting, read when an op runs its
// forward pass; the backward pass uses the precision its forward pass ran with. Off (F32) by default.
enum class MatmulPrecision : uint8_t { F32, BF16 };

void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
const char* precision_name(MatmulPrecision precision);  // "f32" or "bf16"
// The value of sieve-train's --mixed-precision: "none" (or "", "f32") or "bf16"; anything else throws.
MatmulPrecision parse_matmul_precision(const std::string& name);

// Sets a precision for the life of a scope and restores the previous one.
using MatmulPrecisionScope = SettingScope<MatmulPrecision, matmul_precision, set_matmul_precision>;

// x rounded element-wise to the nearest bfloat16 (ties to even), as a float32 tensor. Not differentiable.
Tensor round_to_bf16(const Tensor& x);

// Backends. bf16 values travel as their raw 16 bits (uint16_t) so that this header stays free of CUDA types.
namespace cpu {
void round_to_bf16(const float* x, float* y, int64_t n);  // y may equal x
}  // namespace cpu

namespace cuda {
void round_to_bf16(const float* x, float* y, int64_t n);  // y may equal x
void float_to_bf16(const float* x, uint16_t* y, int64_t n);
void bf16_to_float(const uint16_t* x, float* y, int64_t n);
}  // namespace cuda

}  // namespace sieve

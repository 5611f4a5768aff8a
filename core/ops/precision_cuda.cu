// Float32 <-> bfloat16 casts for the bf16 products (Note [bf16 products]): one thread per element, running the
// rounding of precision_math.h.
#include "core/cuda_launch.cuh"
#include "core/ops/precision.h"
#include "core/ops/precision_math.h"

namespace sieve::cuda {
namespace {

// y_i = round_bf16(x_i) as a float32
__global__ void round_to_bf16_kernel(const float* x, float* y, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    y[i] = ::sieve::round_to_bf16(x[i]);  // qualified: cuda::round_to_bf16 is the launcher
}

// y_i = bits of round_bf16(x_i)
__global__ void float_to_bf16_kernel(const float* x, uint16_t* y, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    y[i] = float_to_bf16_bits(x[i]);
}

// y_i = x_i widened to float32 (exact)
__global__ void bf16_to_float_kernel(const uint16_t* x, float* y, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    y[i] = bf16_bits_to_float(x[i]);
}

}  // namespace

void round_to_bf16(const float* x, float* y, int64_t n) {
  launch("round_to_bf16_kernel", n, 256, round_to_bf16_kernel, x, y, n);
}

void float_to_bf16(const float* x, uint16_t* y, int64_t n) {
  launch("float_to_bf16_kernel", n, 256, float_to_bf16_kernel, x, y, n);
}

void bf16_to_float(const uint16_t* x, float* y, int64_t n) {
  launch("bf16_to_float_kernel", n, 256, bf16_to_float_kernel, x, y, n);
}

}  // namespace sieve::cuda

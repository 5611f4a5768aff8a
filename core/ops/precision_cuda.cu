// Float32 <-> bfloat16 casts for the bf16 products (Note [bf16 products]): one thread per element, running the
// rounding of precision_math.h.
#include "core/cuda_check.h"
#include "core/ops/precision.h"
#include "core/ops/precision_math.h"

namespace sieve::cuda {
namespace {

// y_i = round_bf16(x_i) as a float32
__global__ void round_to_bf16_kernel(const float* x, float* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = ::sieve::round_to_bf16(x[i]);  // qualified: cuda::round_to_bf16 is the launcher
}

// y_i = bits of round_bf16(x_i)
__global__ void float_to_bf16_kernel(const float* x, uint16_t* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = float_to_bf16_bits(x[i]);
}

// y_i = x_i widened to float32 (exact)
__global__ void bf16_to_float_kernel(const uint16_t* x, float* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = bf16_bits_to_float(x[i]);
}

}  // namespace

void round_to_bf16(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  round_to_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(x, y, n);
  SIEVE_CUDA_CHECK_LAUNCH("round_to_bf16");
}

void float_to_bf16(const float* x, uint16_t* y, int64_t n) {
  if (n == 0) return;
  float_to_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(x, y, n);
  SIEVE_CUDA_CHECK_LAUNCH("float_to_bf16");
}

void bf16_to_float(const uint16_t* x, float* y, int64_t n) {
  if (n == 0) return;
  bf16_to_float_kernel<<<blocks_for(n), 256, 0, stream()>>>(x, y, n);
  SIEVE_CUDA_CHECK_LAUNCH("bf16_to_float");
}

}  // namespace sieve::cuda

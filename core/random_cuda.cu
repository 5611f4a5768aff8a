#include "core/cuda_check.h"
#include "core/philox.h"
#include "core/random.h"

namespace sieve::cuda {
namespace {

// out_i = a + (b - a) U_i  or  a + b N_i, with U, N the Philox stream (seed, offset) at counter i.
__global__ void fill_random_kernel(float* out, long long n, uint64_t seed, uint64_t offset, bool normal, float a,
                                   float b) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = normal ? mul_add_unfused(a, b, philox_normal(seed, offset, i))
                    : mul_add_unfused(a, b - a, philox_uniform(seed, offset, i));
}

// out_i = floor(high * W_i / 2^32), W the 32-bit Philox word at counter i.
__global__ void fill_randint_kernel(int32_t* out, long long n, uint64_t seed, uint64_t offset, uint32_t high) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = static_cast<int32_t>(philox_below(seed, offset, i, high));
}

}  // namespace

void fill_random(float* out, int64_t n, uint64_t seed, uint64_t offset, cpu::Distribution dist, float a, float b) {
  if (n == 0) return;
  fill_random_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, n, seed, offset, dist == cpu::Distribution::Normal, a, b);
  SIEVE_CUDA_CHECK_LAUNCH("fill_random");
}

void fill_randint(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, uint32_t high) {
  if (n == 0) return;
  fill_randint_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, n, seed, offset, high);
  SIEVE_CUDA_CHECK_LAUNCH("fill_randint");
}

}  // namespace sieve::cuda

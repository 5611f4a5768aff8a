#include "core/cuda_launch.cuh"
#include "core/philox.h"
#include "core/random.h"

namespace sieve::cuda {
namespace {

// out_i = a + (b - a) U_i  or  a + b N_i, with U, N the Philox stream (seed, offset) at counter i.
__global__ void fill_random_kernel(float* out, int64_t n, PhiloxCounter c, bool normal, float a, float b) {
  const uint64_t seed = c.seed, offset = philox_counter_offset(c.offset, c.base);
  SIEVE_GRID_STRIDE(i, n)
    out[i] = normal ? mul_add_unfused(a, b, philox_normal(seed, offset, i))
                    : mul_add_unfused(a, b - a, philox_uniform(seed, offset, i));
}

// out_i = floor(high * W_i / 2^32), W the 32-bit Philox word at counter i.
__global__ void fill_randint_kernel(int32_t* out, int64_t n, PhiloxCounter c, uint32_t high) {
  const uint64_t offset = philox_counter_offset(c.offset, c.base);
  SIEVE_GRID_STRIDE(i, n)
    out[i] = static_cast<int32_t>(philox_below(c.seed, offset, i, high));
}

}  // namespace

void fill_random(float* out, int64_t n, PhiloxCounter c, cpu::Distribution dist, float a, float b) {
  launch("fill_random_kernel", n, 256, fill_random_kernel, out, n, c, dist == cpu::Distribution::Normal, a, b);
}

void fill_randint(int32_t* out, int64_t n, PhiloxCounter c, uint32_t high) {
  launch("fill_randint_kernel", n, 256, fill_randint_kernel, out, n, c, high);
}

}  // namespace sieve::cuda

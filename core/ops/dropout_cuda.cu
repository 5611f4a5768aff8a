#include "core/cuda_launch.cuh"
#include "core/ops/dropout.h"

namespace sieve::cuda {
namespace {

// out_i = in_i [philox_uniform(seed, offset, i) >= p] / (1 - p)  (Note [dropout mask])
__global__ void dropout_kernel(const float* in, float* out, int64_t n, PhiloxCounter c, float p, float scale) {
  const uint64_t offset = philox_counter_offset(c.offset, c.base);
  SIEVE_GRID_STRIDE(i, n)
    out[i] = dropout_element(in[i], c.seed, offset, static_cast<uint64_t>(i), p, scale);
}

}  // namespace

void dropout_apply(const float* in, float* out, int64_t n, PhiloxCounter c, float p, float scale) {
  launch("dropout_kernel", n, 256, dropout_kernel, in, out, n, c, p, scale);
}

}  // namespace sieve::cuda

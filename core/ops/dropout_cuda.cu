#include "core/cuda_check.h"
#include "core/ops/dropout.h"

namespace sieve::cuda {
namespace {

// out_i = in_i [philox_uniform(seed, offset, i) >= p] / (1 - p)  (Note [dropout mask])
__global__ void dropout_kernel(const float* in, float* out, long long n, uint64_t seed, uint64_t offset, float p,
                               float scale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = dropout_element(in[i], seed, offset, static_cast<uint64_t>(i), p, scale);
}

}  // namespace

void dropout_apply(const float* in, float* out, int64_t n, uint64_t seed, uint64_t offset, float p, float scale) {
  if (n == 0) return;
  dropout_kernel<<<blocks_for(n), 256, 0, stream()>>>(in, out, n, seed, offset, p, scale);
  SIEVE_CUDA_CHECK_LAUNCH("dropout_apply");
}

}  // namespace sieve::cuda

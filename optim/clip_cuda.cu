#include <cstdint>

#include "core/cuda_check.h"
#include "optim/clip.h"
#include "optim/clip_math.h"

namespace sieve::cuda {
namespace {

constexpr int kThreads = 256;

// partials[block] = sum over the block's grid-stride elements of x^2 (one of kNormPartials blocks)
__global__ void sum_squares_kernel(const float* x, long long n, float* partials) {
  // x: (n); partials: (gridDim.x). A fixed reduction tree: the same partials every run.
  __shared__ float shared[kThreads];
  float acc = 0.f;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    acc += x[i] * x[i];
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

// norm = sqrt(sum partials) (in double), scale = max_norm / (norm + 1e-6): one block
__global__ void finish_grad_norm_kernel(const float* partials, long long count, float max_norm, float* norm,
                                        float* scale) {
  // partials: (count); norm, scale: one value each.
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (long long i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float total = static_cast<float>(sqrt(shared[0]));
    *norm = total;
    *scale = clip_coefficient(total, max_norm);
  }
}

// x <- x * c when c = *scale calls for clipping (torch: x * clamp(c, max=1))
__global__ void scale_if_clipping_kernel(float* x, long long n, const float* scale) {
  // x: (n). Every thread reads the one device scalar; without clipping nothing is written.
  const float c = *scale;
  if (!clip_applies(c)) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    x[i] *= c;
}

}  // namespace

void sum_squares_partials(const float* x, int64_t n, float* partials) {
  // Always kNormPartials blocks, so that every slot is written (an empty block writes 0).
  sum_squares_kernel<<<kNormPartials, kThreads, 0, stream()>>>(x, n, partials);
  SIEVE_CUDA_CHECK_LAUNCH("sum_squares_partials");
}

void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm, float* scale) {
  finish_grad_norm_kernel<<<1, kThreads, 0, stream()>>>(partials, count, max_norm, norm, scale);
  SIEVE_CUDA_CHECK_LAUNCH("finish_grad_norm");
}

void scale_if_clipping(float* x, int64_t n, const float* scale) {
  if (n == 0) return;
  scale_if_clipping_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, n, scale);
  SIEVE_CUDA_CHECK_LAUNCH("scale_if_clipping");
}

}  // namespace sieve::cuda

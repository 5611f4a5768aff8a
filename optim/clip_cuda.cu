#include <cstdint>

#include "core/cuda_launch.cuh"
#include "optim/clip.h"
#include "optim/clip_math.h"

namespace sieve::cuda {
namespace {

constexpr int kThreads = 256;

// partials[block] = sum over the block's grid-stride elements of x^2 (one of kNormPartials blocks)
__global__ void sum_squares_kernel(const float* x, int64_t n, float* partials) {
  // x: (n); partials: (gridDim.x). A fixed reduction tree: the same partials every run.
  __shared__ float shared[kThreads];
  float acc = 0.f;
  SIEVE_GRID_STRIDE(i, n)
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
__global__ void finish_grad_norm_kernel(const float* partials, int64_t count, float max_norm, float* norm,
                                        float* scale) {
  // partials: (count); norm, scale: one value each.
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
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
__global__ void scale_if_clipping_kernel(float* x, int64_t n, const float* scale) {
  // x: (n). Every thread reads the one device scalar; without clipping nothing is written.
  const float c = *scale;
  if (!clip_applies(c)) return;
  SIEVE_GRID_STRIDE(i, n)
    x[i] *= c;
}

}  // namespace

void sum_squares_partials(const float* x, int64_t n, float* partials) {
  // Always kNormPartials blocks, so that every slot is written (an empty block writes 0).
  launch_grid("sum_squares_kernel", kNormPartials, kThreads, 0, sum_squares_kernel, x, n, partials);
}

void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm, float* scale) {
  launch_grid("finish_grad_norm_kernel", 1, kThreads, 0, finish_grad_norm_kernel, partials, count, max_norm, norm,
              scale);
}

void scale_if_clipping(float* x, int64_t n, const float* scale) {
  launch("scale_if_clipping_kernel", n, kThreads, scale_if_clipping_kernel, x, n, scale);
}

}  // namespace sieve::cuda

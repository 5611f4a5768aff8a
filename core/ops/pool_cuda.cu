// Pooling kernels: one thread per output forward and one per input backward (a gather, Note [max-pool indices]),
// each running the shared window functions of pool_math.h; the global average reduces a plane per warp.
#include "core/cuda_check.h"
#include "core/ops/pool.h"
#include "core/ops/pool_math.h"

namespace sieve::cuda {
namespace {

constexpr int kThreads = 256;

// y[p, oy, ox] = max over the window (and its index in the plane)
__global__ void max_pool_fwd_kernel(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const long long out_plane = g.out_h * g.out_w, total = g.planes * out_plane;
  for (long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x; o < total;
       o += (long long)gridDim.x * blockDim.x) {
    const long long p = o / out_plane, r = o % out_plane;
    max_pool_window(x + p * g.h * g.w, g, r / g.out_w, r % g.out_w, y + o, indices ? indices + o : nullptr);
  }
}

// gx[p, iy, ix] = sum of gy over the windows containing (iy, ix) whose winner it is
__global__ void max_pool_bwd_kernel(const float* gy, const int32_t* indices, float* gx, PoolGeometry g) {
  const long long in_plane = g.h * g.w, out_plane = g.out_h * g.out_w, total = g.planes * in_plane;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long p = i / in_plane, r = i % in_plane;
    gx[i] = max_pool_input_grad(gy + p * out_plane, indices + p * out_plane, g, r / g.w, r % g.w);
  }
}

// y[p, oy, ox] = sum over the window / kernel^2
__global__ void avg_pool_fwd_kernel(const float* x, float* y, PoolGeometry g) {
  const long long out_plane = g.out_h * g.out_w, total = g.planes * out_plane;
  for (long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x; o < total;
       o += (long long)gridDim.x * blockDim.x) {
    const long long p = o / out_plane, r = o % out_plane;
    y[o] = avg_pool_window(x + p * g.h * g.w, g, r / g.out_w, r % g.out_w);
  }
}

// gx[p, iy, ix] = sum of gy over the windows containing (iy, ix) / kernel^2
__global__ void avg_pool_bwd_kernel(const float* gy, float* gx, PoolGeometry g) {
  const long long in_plane = g.h * g.w, out_plane = g.out_h * g.out_w, total = g.planes * in_plane;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long p = i / in_plane, r = i % in_plane;
    gx[i] = avg_pool_input_grad(gy + p * out_plane, g, r / g.w, r % g.w);
  }
}

// y_p = sum_i x[p, i] / hw, one warp per plane: lanes read consecutive values, then a shuffle tree.
__global__ void global_avg_fwd_kernel(const float* x, float* y, long long planes, long long hw) {
  const int lane = threadIdx.x % 32;
  const long long warps = (long long)gridDim.x * (blockDim.x / 32);
  for (long long p = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32; p < planes; p += warps) {
    float s = 0.f;
    for (long long i = lane; i < hw; i += 32) s += x[p * hw + i];
    for (int d = 16; d > 0; d /= 2) s += __shfl_down_sync(0xffffffffu, s, d);
    if (lane == 0) y[p] = s / static_cast<float>(hw);
  }
}

// gx[p, i] = gy_p / hw
__global__ void global_avg_bwd_kernel(const float* gy, float* gx, long long planes, long long hw) {
  const long long total = planes * hw;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x)
    gx[i] = global_avg_input_grad(gy[i / hw], hw);
}

}  // namespace

void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const long long total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  max_pool_fwd_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(x, y, indices, g);
  SIEVE_CUDA_CHECK_LAUNCH("max_pool2d_fwd");
}

void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g) {
  const long long total = g.planes * g.h * g.w;
  if (total == 0) return;
  max_pool_bwd_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(grad_y, indices, grad_x, g);
  SIEVE_CUDA_CHECK_LAUNCH("max_pool2d_bwd");
}

void avg_pool2d_fwd(const float* x, float* y, PoolGeometry g) {
  const long long total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  avg_pool_fwd_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(x, y, g);
  SIEVE_CUDA_CHECK_LAUNCH("avg_pool2d_fwd");
}

void avg_pool2d_bwd(const float* grad_y, float* grad_x, PoolGeometry g) {
  const long long total = g.planes * g.h * g.w;
  if (total == 0) return;
  avg_pool_bwd_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(grad_y, grad_x, g);
  SIEVE_CUDA_CHECK_LAUNCH("avg_pool2d_bwd");
}

void global_avg_pool_fwd(const float* x, float* y, int64_t planes, int64_t hw) {
  if (planes == 0) return;
  // Whole warps only: every lane of a warp takes part in the shuffles.
  global_avg_fwd_kernel<<<blocks_for(planes * 32, kThreads), kThreads, 0, stream()>>>(x, y, planes, hw);
  SIEVE_CUDA_CHECK_LAUNCH("global_avg_pool_fwd");
}

void global_avg_pool_bwd(const float* grad_y, float* grad_x, int64_t planes, int64_t hw) {
  const long long total = planes * hw;
  if (total == 0) return;
  global_avg_bwd_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(grad_y, grad_x, planes, hw);
  SIEVE_CUDA_CHECK_LAUNCH("global_avg_pool_bwd");
}

}  // namespace sieve::cuda

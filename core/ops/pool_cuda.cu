// Pooling kernels: one thread per output forward and one per input backward (a gather, Note [max-pool indices]),
// each running the shared window functions of pool_math.h; the global average reduces a plane per warp.
#include "core/cuda_launch.cuh"
#include "core/ops/pool.h"
#include "core/ops/pool_math.h"

namespace sieve::cuda {
namespace {

constexpr int kThreads = 256;

// y[p, oy, ox] = max over the window (and its index in the plane)
__global__ void max_pool_fwd_kernel(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, total = g.planes * out_plane;
  SIEVE_GRID_STRIDE(o, total) {
    const int64_t p = o / out_plane, r = o % out_plane;
    max_pool_window(x + p * g.h * g.w, g, r / g.out_w, r % g.out_w, y + o, indices ? indices + o : nullptr);
  }
}

// gx[p, iy, ix] = sum of gy over the windows containing (iy, ix) whose winner it is
__global__ void max_pool_bwd_kernel(const float* gy, const int32_t* indices, float* gx, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w, total = g.planes * in_plane;
  SIEVE_GRID_STRIDE(i, total) {
    const int64_t p = i / in_plane, r = i % in_plane;
    gx[i] = max_pool_input_grad(gy + p * out_plane, indices + p * out_plane, g, r / g.w, r % g.w);
  }
}

// y[p, oy, ox] = sum over the window / kernel^2
__global__ void avg_pool_fwd_kernel(const float* x, float* y, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, total = g.planes * out_plane;
  SIEVE_GRID_STRIDE(o, total) {
    const int64_t p = o / out_plane, r = o % out_plane;
    y[o] = avg_pool_window(x + p * g.h * g.w, g, r / g.out_w, r % g.out_w);
  }
}

// gx[p, iy, ix] = sum of gy over the windows containing (iy, ix) / kernel^2
__global__ void avg_pool_bwd_kernel(const float* gy, float* gx, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w, total = g.planes * in_plane;
  SIEVE_GRID_STRIDE(i, total) {
    const int64_t p = i / in_plane, r = i % in_plane;
    gx[i] = avg_pool_input_grad(gy + p * out_plane, g, r / g.w, r % g.w);
  }
}

// y_p = sum_i x[p, i] / hw, one warp per plane: lanes read consecutive values, then a shuffle tree.
__global__ void global_avg_fwd_kernel(const float* x, float* y, int64_t planes, int64_t hw) {
  const int lane = threadIdx.x % 32;
  SIEVE_WARP_STRIDE(p, planes) {
    float s = 0.f;
    for (int64_t i = lane; i < hw; i += 32) s += x[p * hw + i];
    for (int d = 16; d > 0; d /= 2) s += __shfl_down_sync(0xffffffffu, s, d);
    if (lane == 0) y[p] = s / static_cast<float>(hw);
  }
}

// gx[p, i] = gy_p / hw
__global__ void global_avg_bwd_kernel(const float* gy, float* gx, int64_t planes, int64_t hw) {
  const int64_t total = planes * hw;
  SIEVE_GRID_STRIDE(i, total)
    gx[i] = global_avg_input_grad(gy[i / hw], hw);
}

}  // namespace

void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  launch("max_pool_fwd_kernel", total, kThreads, max_pool_fwd_kernel, x, y, indices, g);
}

void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g) {
  const int64_t total = g.planes * g.h * g.w;
  launch("max_pool_bwd_kernel", total, kThreads, max_pool_bwd_kernel, grad_y, indices, grad_x, g);
}

void avg_pool2d_fwd(const float* x, float* y, PoolGeometry g) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  launch("avg_pool_fwd_kernel", total, kThreads, avg_pool_fwd_kernel, x, y, g);
}

void avg_pool2d_bwd(const float* grad_y, float* grad_x, PoolGeometry g) {
  const int64_t total = g.planes * g.h * g.w;
  launch("avg_pool_bwd_kernel", total, kThreads, avg_pool_bwd_kernel, grad_y, grad_x, g);
}

void global_avg_pool_fwd(const float* x, float* y, int64_t planes, int64_t hw) {
  // Whole warps only: every lane of a warp takes part in the shuffles.
  launch_warps("global_avg_fwd_kernel", planes, kThreads, global_avg_fwd_kernel, x, y, planes, hw);
}

void global_avg_pool_bwd(const float* grad_y, float* grad_x, int64_t planes, int64_t hw) {
  const int64_t total = planes * hw;
  launch("global_avg_bwd_kernel", total, kThreads, global_avg_bwd_kernel, grad_y, grad_x, planes, hw);
}

}  // namespace sieve::cuda

// Batch-norm kernels: one block per channel for the per-channel sums (forward statistics, backward sums), then
// elementwise kernels running the shared formulas of batch_norm_math.h.
//
// One block per channel reads the channel's N·H·W values with coalesced runs of H·W; with few channels (16 in
// the first Wide-ResNet stage) the grid is small, and a split reduction is for when sieve-bench shows it matters.
#include <cub/block/block_reduce.cuh>

#include "core/cuda_launch.cuh"
#include "core/ops/batch_norm.h"
#include "core/ops/batch_norm_math.h"

namespace sieve::cuda {
namespace {

constexpr int kReduceThreads = 512;
constexpr int kThreads = 256;
using BlockReduce = cub::BlockReduce<float, kReduceThreads>;

// Visits the values of channel c of an [n, channels, hw] tensor, thread t taking j = t, t + T, t + 2T, ... of the
// channel's n·hw values, with no division per step (j = img·hw + s, advanced by T = q·hw + r).
struct ChannelWalk {
  int64_t img, s, q, r, hw, base;  // base = c·hw
  int64_t stride;                  // channels·hw: from one image to the next
  __device__ ChannelWalk(int64_t c, int64_t channels, int64_t hw_)
      : img(threadIdx.x / hw_), s(threadIdx.x % hw_), q(kReduceThreads / hw_), r(kReduceThreads % hw_), hw(hw_),
        base(c * hw_), stride(channels * hw_) {}
  __device__ bool valid(int64_t n) const { return img < n; }
  __device__ int64_t offset() const { return img * stride + base + s; }
  __device__ void next() {
    img += q;
    s += r;
    if (s >= hw) {  // r < hw, so one carry at most
      s -= hw;
      ++img;
    }
  }
};

// mean_c = sum x / M, var_c = sum (x - mean_c)^2 / M over the M = n·hw values of channel c = blockIdx.x (two passes,
// Note [batch-norm statistics]); running statistics updated as Note [batch-norm running statistics].
__global__ void __launch_bounds__(kReduceThreads)
    bn_stats_kernel(const float* x, int64_t n, int64_t channels, int64_t hw, float momentum, float eps, float* mean_out,
                    float* invstd_out, float* running_mean, float* running_var) {
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ float shared_mean;
  const int64_t c = blockIdx.x, count = n * hw;
  float sum = 0.f;
  for (ChannelWalk w(c, channels, hw); w.valid(n); w.next()) sum += x[w.offset()];
  const float total = BlockReduce(temp).Sum(sum);  // valid in thread 0 only
  if (threadIdx.x == 0) shared_mean = total / static_cast<float>(count);
  __syncthreads();  // publishes the mean, and frees `temp` for the second reduction
  const float mean = shared_mean;
  float sq = 0.f;
  for (ChannelWalk w(c, channels, hw); w.valid(n); w.next()) {
    const float d = x[w.offset()] - mean;
    sq += d * d;
  }
  const float total_sq = BlockReduce(temp).Sum(sq);
  if (threadIdx.x == 0) {
    const float var = total_sq / static_cast<float>(count);
    mean_out[c] = mean;
    invstd_out[c] = bn_invstd(var, eps);
    bn_update_running(running_mean + c, running_var + c, mean, var, count, momentum);
  }
}

// invstd_c = 1 / sqrt(var_c + eps)
__global__ void bn_invstd_kernel(const float* var, float* invstd, int64_t c, float eps) {
  SIEVE_GRID_STRIDE(i, c)
    invstd[i] = bn_invstd(var[i], eps);
}

// y = gamma_c (x - mean_c) invstd_c + beta_c
__global__ void bn_apply_kernel(const float* x, const float* mean, const float* invstd, const float* gamma,
                                const float* beta, float* y, int64_t total, int64_t channels, int64_t hw) {
  SIEVE_GRID_STRIDE(i, total) {
    const int64_t c = (i / hw) % channels;
    y[i] = bn_forward(x[i], mean[c], invstd[c], gamma[c], beta[c]);
  }
}

// sum_dy_c = sum dy, sum_dy_xhat_c = sum dy (x - mean_c) invstd_c over channel c = blockIdx.x
__global__ void __launch_bounds__(kReduceThreads)
    bn_bwd_reduce_kernel(const float* dy, const float* x, const float* mean, const float* invstd, int64_t n,
                         int64_t channels, int64_t hw, float* sum_dy, float* sum_dy_xhat) {
  __shared__ typename BlockReduce::TempStorage temp;
  const int64_t c = blockIdx.x;
  const float m = mean[c], is = invstd[c];
  float a = 0.f, b = 0.f;
  for (ChannelWalk w(c, channels, hw); w.valid(n); w.next()) {
    const int64_t o = w.offset();
    a += dy[o];
    b += dy[o] * bn_xhat(x[o], m, is);
  }
  const float total_a = BlockReduce(temp).Sum(a);
  __syncthreads();  // `temp` is reused
  const float total_b = BlockReduce(temp).Sum(b);
  if (threadIdx.x == 0) {
    sum_dy[c] = total_a;
    sum_dy_xhat[c] = total_b;
  }
}

// dx = gamma_c invstd_c (dy - sum_dy_c / M - x_hat sum_dy_xhat_c / M)  (training), gamma_c invstd_c dy  (evaluation)
__global__ void bn_bwd_apply_kernel(const float* dy, const float* x, const float* mean, const float* invstd,
                                    const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* dx,
                                    int64_t total, int64_t channels, int64_t hw, float inv_count, bool training) {
  SIEVE_GRID_STRIDE(i, total) {
    const int64_t c = (i / hw) % channels;
    dx[i] = bn_backward(dy[i], x[i], mean[c], invstd[c], gamma[c], sum_dy[c], sum_dy_xhat[c], inv_count, training);
  }
}

}  // namespace

void batch_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, float momentum, float eps, float* mean,
                      float* invstd, float* running_mean, float* running_var) {
  if (c == 0) return;
  launch_grid("bn_stats_kernel", dim3(static_cast<unsigned int>(c)), dim3(kReduceThreads), 0, bn_stats_kernel, x, n, c,
              hw, momentum, eps, mean, invstd, running_mean, running_var);
}

void batch_norm_invstd(const float* var, float* invstd, int64_t c, float eps) {
  launch("bn_invstd_kernel", c, kThreads, bn_invstd_kernel, var, invstd, c, eps);
}

void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* gamma, const float* beta,
                      float* y, int64_t n, int64_t c, int64_t hw) {
  const int64_t total = n * c * hw;
  launch("bn_apply_kernel", total, kThreads, bn_apply_kernel, x, mean, invstd, gamma, beta, y, total, c, hw);
}

void batch_norm_bwd_reduce(const float* grad_y, const float* x, const float* mean, const float* invstd, int64_t n,
                           int64_t c, int64_t hw, float* sum_dy, float* sum_dy_xhat) {
  if (c == 0) return;
  launch_grid("bn_bwd_reduce_kernel", dim3(static_cast<unsigned int>(c)), dim3(kReduceThreads), 0, bn_bwd_reduce_kernel,
              grad_y, x, mean, invstd, n, c, hw, sum_dy, sum_dy_xhat);
}

void batch_norm_bwd_apply(const float* grad_y, const float* x, const float* mean, const float* invstd,
                          const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* grad_x, int64_t n,
                          int64_t c, int64_t hw, bool training) {
  const int64_t total = n * c * hw;
  launch("bn_bwd_apply_kernel", total, kThreads, bn_bwd_apply_kernel, grad_y, x, mean, invstd, gamma, sum_dy,
         sum_dy_xhat, grad_x, total, c, hw, 1.f / static_cast<float>(n * hw), training);
}

}  // namespace sieve::cuda

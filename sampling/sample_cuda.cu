// CUDA sampling by prefix sum (CUB scan, then one search kernel) and the τ reduction.
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_scan.cuh>

#include "core/allocator.h"
#include "core/cuda_launch.cuh"
#include "core/scratch.h"
#include "sampling/sample.h"
#include "sampling/score_math.h"

namespace sieve::cuda {

// position_j = first i with prefix_i > U_j * prefix_{B-1}, weight_j = (prefix_{B-1} / B) / s_i: Algorithm 1,
// lines 8-9 (w_i = 1 / (B g_i)), by the search of Note [draw by prefix sum] shared with the CPU. One thread per draw.
__global__ void draw_by_prefix_sum_kernel(const float* __restrict__ scores,  // (count)
                                          const float* __restrict__ prefix,  // (count) inclusive scan of scores
                                          int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                                          int32_t* __restrict__ positions,  // (n)
                                          float* __restrict__ weights) {    // (n)
  SIEVE_GRID_STRIDE(j, n) {
    sieve::draw_by_prefix_sum(scores, prefix, count, seed, offset, j, positions + j, weights + j);
  }
}

// Determinism: CUB's single-pass scan is one tile (128 threads x 24 floats = 3072 scores on Hopper) for the usual
// pre-sample sizes, and then the same inputs give the same prefix sums on every run. Beyond a tile the decoupled
// look-back may associate the float additions differently from run to run (CUB documents this), which moves a draw
// only when its u lands within an ulp of a prefix boundary.
void sample_with_replacement(const float* scores, int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                             float* prefix, int32_t* positions, float* weights) {
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, scores, prefix, count, stream()));
  DeviceScratch temp(cub_bytes(temp_bytes));
  SIEVE_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp.data(), temp_bytes, scores, prefix, count, stream()));
  draw_by_prefix_sum(scores, prefix, count, n, seed, offset, positions, weights);
}

void draw_by_prefix_sum(const float* scores, const float* prefix, int64_t count, int64_t n, uint64_t seed,
                        uint64_t offset, int32_t* positions, float* weights) {
  constexpr int kThreads = 256;
  launch("draw_by_prefix_sum_kernel", n, kThreads, draw_by_prefix_sum_kernel, scores, prefix, count, n, seed, offset,
         positions, weights);
}

constexpr int kTauThreads = 256;

// τ = sqrt(B sum s_i^2) / sum s_i, eq. 26 with normalised g (Katharopoulos & Fleuret 2018). One block: B is a
// pre-sample of a few thousand scores, so a grid-wide reduction would cost more in launches than it saves. The sums
// are kept in double, like the CPU twin, so the two agree to the final rounding to float.
__global__ void tau_estimate_kernel(const float* __restrict__ scores,  // (count)
                                    int64_t count, float* __restrict__ tau) {  // (1)
  using Reduce = cub::BlockReduce<double, kTauThreads>;
  __shared__ typename Reduce::TempStorage temp;
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kTauThreads) {
    const double s = scores[i];
    sum += s;
    sum_sq += s * s;
  }
  const double total = Reduce(temp).Sum(sum);
  __syncthreads();  // the temporary storage is reused by the second reduction
  const double total_sq = Reduce(temp).Sum(sum_sq);
  if (threadIdx.x == 0) *tau = tau_from_sums(total, total_sq, count);
}

void tau_estimate(const float* scores, int64_t count, float* tau) {
  launch_grid("tau_estimate_kernel", 1, kTauThreads, 0, tau_estimate_kernel, scores, count, tau);
}

}  // namespace sieve::cuda

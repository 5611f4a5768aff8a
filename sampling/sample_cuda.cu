// CUDA sampling by prefix sum (CUB scan, then one search kernel) and the τ reduction. The only file of sampling/
// that includes CUB.
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_scan.cuh>

#include "core/allocator.h"
#include "core/cuda_check.h"
#include "sampling/sample.h"
#include "sampling/score_math.h"

namespace sieve::cuda {

namespace {

// CUB's temporary storage from the caching allocator, returned when the launcher leaves (also on a throw). Freeing
// right after the launches is safe: the next user of the block runs after them on the same stream
// (Note [stream-ordered reuse] in core/allocator.cpp).
class DeviceScratch {
 public:
  DeviceScratch(size_t bytes, int device) : device_(device) {
    // At least one byte: CUB reads a null d_temp_storage as "query the size" and would silently do nothing.
    ptr_ = device_malloc(bytes == 0 ? 1 : bytes, device);
  }
  ~DeviceScratch() { device_free(ptr_, device_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  int device_ = 0;
};

}  // namespace

// position_j = first i with prefix_i > U_j * prefix_{B-1}, weight_j = (prefix_{B-1} / B) / s_i: Algorithm 1,
// lines 8-9 (w_i = 1 / (B g_i)), by the search of Note [draw by prefix sum] shared with the CPU. One thread per draw.
__global__ void draw_by_prefix_sum_kernel(const float* __restrict__ scores,  // (count)
                                          const float* __restrict__ prefix,  // (count) inclusive scan of scores
                                          int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                                          int32_t* __restrict__ positions,  // (n)
                                          float* __restrict__ weights) {    // (n)
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    draw_by_prefix_sum(scores, prefix, count, seed, offset, j, positions + j, weights + j);
  }
}

// Determinism: CUB's single-pass scan is one tile (128 threads x 24 floats = 3072 scores on Hopper) for the usual
// pre-sample sizes, and then the same inputs give the same prefix sums on every run. Beyond a tile the decoupled
// look-back may associate the float additions differently from run to run (CUB documents this), which moves a draw
// only when its u lands within an ulp of a prefix boundary.
void sample_with_replacement(const float* scores, int64_t count, int64_t n, uint64_t seed, uint64_t offset,
                             float* prefix, int32_t* positions, float* weights) {
  int device = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device));
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, scores, prefix, count, stream()));
  DeviceScratch temp(temp_bytes, device);
  SIEVE_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp.get(), temp_bytes, scores, prefix, count, stream()));
  constexpr int kThreads = 256;
  draw_by_prefix_sum_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(scores, prefix, count, n, seed,
                                                                              offset, positions, weights);
  SIEVE_CUDA_CHECK_LAUNCH("draw_by_prefix_sum_kernel");
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
  tau_estimate_kernel<<<1, kTauThreads, 0, stream()>>>(scores, count, tau);
  SIEVE_CUDA_CHECK_LAUNCH("tau_estimate_kernel");
}

}  // namespace sieve::cuda

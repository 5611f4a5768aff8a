// CUDA score bound: one fused kernel from logits and labels to scores, no softmax tensor in between.
#include <algorithm>

#include "core/cuda_launch.cuh"
#include "sampling/score_math.h"
#include "sampling/scores.h"

namespace sieve::cuda {
namespace {

// scores_i = ||softmax(z_i) - onehot(y_i)||_2, the closed-form part of G^_i in eq. 20 (Katharopoulos & Fleuret 2018).
//
// Note [score tiles]: one thread per row, running the same SIEVE_HD row function as the CPU, so both backends agree
// to the rounding of expf. A thread reading its own row straight from global memory makes every load of a warp
// touch 32 rows, cols floats apart: 32 cache lines per load, each read twice (the max, then the sums), which held
// the kernel to 34% of copy bandwidth at 65 536 x 100 on an H100. So a block first copies its kRowsPerTile rows,
// contiguous in memory, into shared memory with coalesced loads (the flat index walks row and column without a
// division), then each thread scores its row there. The tile's row stride is odd, so the threads' reads at equal
// column fall in different banks. Rows wider than the 48 KiB tile allows (cols > 191) are read directly, as before.
constexpr int kRowsPerTile = 64;
constexpr size_t kTileBytes = 48 * 1024;

__global__ void upper_bound_scores_tiled_kernel(const float* __restrict__ logits,  // (rows, cols)
                                                const int32_t* __restrict__ labels,  // (rows)
                                                float* __restrict__ scores,  // (rows)
                                                int64_t rows, int cols, int stride) {
  extern __shared__ float tile[];  // kRowsPerTile rows of `stride` floats
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerTile; first < rows;
       first += static_cast<int64_t>(gridDim.x) * kRowsPerTile) {
    const int count = rows - first < kRowsPerTile ? static_cast<int>(rows - first) : kRowsPerTile;
    const float* src = logits + first * cols;
    __syncthreads();  // every thread is done with the previous tile
    int r = static_cast<int>(threadIdx.x) / cols, j = static_cast<int>(threadIdx.x) - r * cols;
    for (int k = threadIdx.x; k < count * cols; k += blockDim.x) {
      tile[r * stride + j] = src[k];
      j += blockDim.x;
      while (j >= cols) {
        j -= cols;
        ++r;
      }
    }
    __syncthreads();
    const int i = threadIdx.x;
    if (i < count) scores[first + i] = upper_bound_score_row(tile + i * stride, cols, labels[first + i]);
  }
}

__global__ void upper_bound_scores_kernel(const float* __restrict__ logits,  // (rows, cols)
                                          const int32_t* __restrict__ labels,  // (rows)
                                          float* __restrict__ scores,  // (rows)
                                          int64_t rows, int64_t cols) {
  SIEVE_GRID_STRIDE(i, rows) {
    scores[i] = upper_bound_score_row(logits + i * cols, cols, labels[i]);
  }
}

}  // namespace

void upper_bound_scores(const float* logits, const int32_t* labels, float* scores, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  const int64_t stride = cols | 1;
  const size_t tile_bytes = sizeof(float) * kRowsPerTile * static_cast<size_t>(stride);
  if (tile_bytes <= kTileBytes) {
    const int64_t tiles = std::min<int64_t>((rows + kRowsPerTile - 1) / kRowsPerTile, int64_t{65535} * 16);
    launch_grid("upper_bound_scores_tiled_kernel", dim3(static_cast<unsigned>(std::max<int64_t>(tiles, 1))),
                dim3(kRowsPerTile), tile_bytes, upper_bound_scores_tiled_kernel, logits, labels, scores, rows,
                static_cast<int>(cols), static_cast<int>(stride));
    return;
  }
  constexpr int kThreads = 128;
  launch("upper_bound_scores_kernel", rows, kThreads, upper_bound_scores_kernel, logits, labels, scores, rows, cols);
}

}  // namespace sieve::cuda

// CUDA score bound: one fused kernel from logits and labels to scores, no softmax tensor in between.
#include "core/cuda_launch.cuh"
#include "sampling/score_math.h"
#include "sampling/scores.h"

namespace sieve::cuda {

// scores_i = ||softmax(z_i) - onehot(y_i)||_2, the closed-form part of G^_i in eq. 20 (Katharopoulos & Fleuret 2018).
//
// One thread per row: the row arithmetic is the same SIEVE_HD function the CPU runs, so both backends agree to the
// rounding of expf. The classifiers here have c <= a few hundred classes, so a thread's two passes over its row are
// a few hundred L1/L2-cached reads, and the whole kernel is launch-bound (B x c = 10^4 to 10^5 values, microseconds
// against a forward pass of milliseconds). A warp per row would pay off only for c in the thousands.
__global__ void upper_bound_scores_kernel(const float* __restrict__ logits,  // (rows, cols)
                                          const int32_t* __restrict__ labels,  // (rows)
                                          float* __restrict__ scores,  // (rows)
                                          int64_t rows, int64_t cols) {
  SIEVE_GRID_STRIDE(i, rows) {
    scores[i] = upper_bound_score_row(logits + i * cols, cols, labels[i]);
  }
}

void upper_bound_scores(const float* logits, const int32_t* labels, float* scores, int64_t rows, int64_t cols) {
  constexpr int kThreads = 128;
  launch("upper_bound_scores_kernel", rows, kThreads, upper_bound_scores_kernel, logits, labels, scores, rows, cols);
}

}  // namespace sieve::cuda

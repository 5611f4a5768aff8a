// Row-wise softmax and cross-entropy kernels: one thread per row, running the shared row functions of
// softmax_math.h. Classification rows are short (10 to 1000 classes), so a row fits one thread's loop;
// a wide-row (warp per row) variant is for when sieve-bench shows this on the critical path.
#include "core/cuda_launch.cuh"
#include "core/ops/softmax.h"
#include "core/ops/softmax_math.h"

namespace sieve::cuda {
namespace {

// y_r = softmax(x_r) or log_softmax(x_r)
__global__ void softmax_fwd_kernel(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
  SIEVE_GRID_STRIDE(r, rows)
    softmax_row(x + r * cols, y + r * cols, cols, log);
}

// gx_r = J_softmax(y_r)^T gy_r
__global__ void softmax_bwd_kernel(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols, bool log) {
  SIEVE_GRID_STRIDE(r, rows)
    softmax_row_backward(y + r * cols, gy + r * cols, gx + r * cols, cols, log);
}

// loss_r = logsumexp(z_r) - z_r[y_r]
__global__ void cross_entropy_fwd_kernel(const float* z, const int32_t* labels, float* loss, int64_t rows,
                                         int64_t cols) {
  SIEVE_GRID_STRIDE(r, rows)
    loss[r] = cross_entropy_row(z + r * cols, labels[r], cols);
}

// gz_r = g_r (softmax(z_r) - onehot(y_r))
__global__ void cross_entropy_bwd_kernel(const float* z, const int32_t* labels, const float* g, float* gz, int64_t rows,
                                         int64_t cols) {
  SIEVE_GRID_STRIDE(r, rows)
    cross_entropy_row_backward(z + r * cols, labels[r], g[r], gz + r * cols, cols);
}

constexpr int kThreads = 128;

}  // namespace

void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
  launch("softmax_fwd_kernel", rows, kThreads, softmax_fwd_kernel, x, y, rows, cols, log);
}

void softmax_bwd(const float* y, const float* grad_y, float* grad_x, int64_t rows, int64_t cols, bool log) {
  launch("softmax_bwd_kernel", rows, kThreads, softmax_bwd_kernel, y, grad_y, grad_x, rows, cols, log);
}

void cross_entropy_fwd(const float* logits, const int32_t* labels, float* loss, int64_t rows, int64_t cols) {
  launch("cross_entropy_fwd_kernel", rows, kThreads, cross_entropy_fwd_kernel, logits, labels, loss, rows, cols);
}

void cross_entropy_bwd(const float* logits, const int32_t* labels, const float* grad_loss, float* grad_logits,
                       int64_t rows, int64_t cols) {
  launch("cross_entropy_bwd_kernel", rows, kThreads, cross_entropy_bwd_kernel, logits, labels, grad_loss, grad_logits,
         rows, cols);
}

}  // namespace sieve::cuda

// Row-wise softmax and cross-entropy kernels: one thread per row, running the shared row functions of
// softmax_math.h. Classification rows are short (10 to 1000 classes), so a row fits one thread's loop;
// a wide-row (warp per row) variant is for when sieve-bench shows this on the critical path.
#include "core/cuda_check.h"
#include "core/ops/softmax.h"
#include "core/ops/softmax_math.h"

namespace sieve::cuda {
namespace {

// y_r = softmax(x_r) or log_softmax(x_r)
__global__ void softmax_fwd_kernel(const float* x, float* y, long long rows, long long cols, bool log) {
  for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x)
    softmax_row(x + r * cols, y + r * cols, cols, log);
}

// gx_r = J_softmax(y_r)^T gy_r
__global__ void softmax_bwd_kernel(const float* y, const float* gy, float* gx, long long rows, long long cols,
                                   bool log) {
  for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x)
    softmax_row_backward(y + r * cols, gy + r * cols, gx + r * cols, cols, log);
}

// loss_r = logsumexp(z_r) - z_r[y_r]
__global__ void cross_entropy_fwd_kernel(const float* z, const int32_t* labels, float* loss, long long rows,
                                         long long cols) {
  for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x)
    loss[r] = cross_entropy_row(z + r * cols, labels[r], cols);
}

// gz_r = g_r (softmax(z_r) - onehot(y_r))
__global__ void cross_entropy_bwd_kernel(const float* z, const int32_t* labels, const float* g, float* gz,
                                         long long rows, long long cols) {
  for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x)
    cross_entropy_row_backward(z + r * cols, labels[r], g[r], gz + r * cols, cols);
}

constexpr int kThreads = 128;

}  // namespace

void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
  if (rows == 0) return;
  softmax_fwd_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream()>>>(x, y, rows, cols, log);
  SIEVE_CUDA_CHECK_LAUNCH("softmax_fwd");
}

void softmax_bwd(const float* y, const float* grad_y, float* grad_x, int64_t rows, int64_t cols, bool log) {
  if (rows == 0) return;
  softmax_bwd_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream()>>>(y, grad_y, grad_x, rows, cols, log);
  SIEVE_CUDA_CHECK_LAUNCH("softmax_bwd");
}

void cross_entropy_fwd(const float* logits, const int32_t* labels, float* loss, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  cross_entropy_fwd_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream()>>>(logits, labels, loss, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH("cross_entropy_fwd");
}

void cross_entropy_bwd(const float* logits, const int32_t* labels, const float* grad_loss, float* grad_logits,
                       int64_t rows, int64_t cols) {
  if (rows == 0) return;
  cross_entropy_bwd_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream()>>>(logits, labels, grad_loss,
                                                                                  grad_logits, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH("cross_entropy_bwd");
}

}  // namespace sieve::cuda

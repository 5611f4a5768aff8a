#include <cstdint>

#include "core/cuda_check.h"
#include "core/ops/linear.h"

namespace sieve::cuda {
namespace {

// y[r, c] = x[r, c] + bias[c]
__global__ void bias_add_kernel(const float* x, const float* bias, float* y, long long rows, long long cols) {
  const long long n = rows * cols;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = x[i] + bias[i % cols];
}

// out[c] = sum_r x[r, c] + beta out[c]: 32 columns per block in x, 8 row-strided partial sums in y.
__global__ void column_sums_kernel(const float* x, float* out, long long rows, long long cols, float beta) {
  __shared__ float partial[8][33];
  const long long c = blockIdx.x * 32LL + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (long long r = threadIdx.y; r < rows; r += 8) s += x[r * cols + c];
  partial[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.f;
    for (int j = 0; j < 8; ++j) total += partial[j][threadIdx.x];
    out[c] = total + beta * out[c];
  }
}

}  // namespace

void bias_add(const float* x, const float* bias, float* y, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  bias_add_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(x, bias, y, rows, cols);
  SIEVE_CUDA_CHECK_LAUNCH("bias_add");
}

void column_sums(const float* x, float* out, int64_t rows, int64_t cols, float beta) {
  if (cols == 0) return;
  const dim3 block(32, 8);
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32));
  column_sums_kernel<<<grid, block, 0, stream()>>>(x, out, rows, cols, beta);
  SIEVE_CUDA_CHECK_LAUNCH("column_sums");
}

}  // namespace sieve::cuda

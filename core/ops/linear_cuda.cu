#include <cstdint>

#include "core/cuda_launch.cuh"
#include "core/ops/linear.h"

namespace sieve::cuda {
namespace {

// y[r, c] = x[r, c] + bias[c]
__global__ void bias_add_kernel(const float* x, const float* bias, float* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  SIEVE_GRID_STRIDE(i, n)
    y[i] = x[i] + bias[i % cols];
}

// out[c] = sum_r x[r, c] + beta out[c]: 32 columns per block in x, 8 row-strided partial sums in y.
__global__ void column_sums_kernel(const float* x, float* out, int64_t rows, int64_t cols, float beta) {
  __shared__ float partial[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += 8) s += x[r * cols + c];
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
  launch("bias_add_kernel", rows * cols, 256, bias_add_kernel, x, bias, y, rows, cols);
}

void column_sums(const float* x, float* out, int64_t rows, int64_t cols, float beta) {
  if (cols == 0) return;
  const dim3 block(32, 8);
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32));
  launch_grid("column_sums_kernel", grid, block, 0, column_sums_kernel, x, out, rows, cols, beta);
}

}  // namespace sieve::cuda

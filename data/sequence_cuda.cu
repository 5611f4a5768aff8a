#include <cstdint>

#include "core/cuda_launch.cuh"
#include "data/sequence.h"

namespace sieve::cuda {
namespace {

// dst[r, t] = src[r, order[t]]: the permuted pixel sequence of every image
__global__ void gather_columns_u8_kernel(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order,
                                         uint8_t* dst) {
  // src, dst: (rows, cols); order: (cols). Consecutive threads write consecutive bytes of a row.
  const int64_t total = rows * cols;
  SIEVE_GRID_STRIDE(i, total) {
    const int64_t r = i / cols, t = i - r * cols;
    dst[i] = src[r * cols + order[t]];
  }
}

}  // namespace

void gather_columns_u8(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order, uint8_t* dst) {
  launch("gather_columns_u8_kernel", rows * cols, 256, gather_columns_u8_kernel, src, rows, cols, order, dst);
}

}  // namespace sieve::cuda

#include <cstdint>

#include "core/cuda_check.h"
#include "data/sequence.h"

namespace sieve::cuda {
namespace {

// dst[r, t] = src[r, order[t]]: the permuted pixel sequence of every image
__global__ void gather_columns_u8_kernel(const uint8_t* src, long long rows, long long cols, const int32_t* order,
                                         uint8_t* dst) {
  // src, dst: (rows, cols); order: (cols). Consecutive threads write consecutive bytes of a row.
  const long long total = rows * cols;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / cols, t = i - r * cols;
    dst[i] = src[r * cols + order[t]];
  }
}

}  // namespace

void gather_columns_u8(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order, uint8_t* dst) {
  if (rows * cols == 0) return;
  gather_columns_u8_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(src, rows, cols, order, dst);
  SIEVE_CUDA_CHECK_LAUNCH("gather_columns_u8");
}

}  // namespace sieve::cuda

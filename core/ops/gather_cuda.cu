#include <cstdint>

#include "core/cuda_check.h"
#include "core/ops/gather.h"

namespace sieve::cuda {
namespace {

// dst[i, :] = src[idx[i], :], copying `Word`s (4-byte words when rows allow, else bytes); a zero row for an
// out-of-range index.
template <typename Index, typename Word>
__global__ void gather_rows_kernel(const Word* src, long long src_rows, long long row_words, const Index* idx,
                                   long long n, Word* dst) {
  const long long total = n * row_words;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
    const long long i = t / row_words, w = t % row_words;
    const long long r = idx[i];
    dst[t] = (r >= 0 && r < src_rows) ? src[r * row_words + w] : Word(0);
  }
}

// dst[idx[i], :] += src[i, :]
template <typename Index>
__global__ void scatter_add_rows_kernel(const float* src, const Index* idx, long long n, long long cols, float* dst,
                                        long long dst_rows) {
  const long long total = n * cols;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
    const long long i = t / cols, c = t % cols;
    const long long r = idx[i];
    if (r >= 0 && r < dst_rows) atomicAdd(dst + r * cols + c, src[t]);
  }
}

template <typename Index>
void launch_gather(const void* src, int64_t src_rows, int64_t row_bytes, const Index* idx, int64_t n, void* dst) {
  // Words only when both pointers are 4-byte aligned too: a byte view (rows() of a uint8 tensor) may start anywhere,
  // and a misaligned 4-byte load is a fatal "misaligned address" error on the device.
  const bool words_aligned = reinterpret_cast<uintptr_t>(src) % 4 == 0 && reinterpret_cast<uintptr_t>(dst) % 4 == 0;
  if (row_bytes % 4 == 0 && words_aligned) {
    const long long words = row_bytes / 4;
    gather_rows_kernel<Index, uint32_t><<<blocks_for(n * words), 256, 0, stream()>>>(
        static_cast<const uint32_t*>(src), src_rows, words, idx, n, static_cast<uint32_t*>(dst));
  } else {
    gather_rows_kernel<Index, uint8_t><<<blocks_for(n * row_bytes), 256, 0, stream()>>>(
        static_cast<const uint8_t*>(src), src_rows, row_bytes, idx, n, static_cast<uint8_t*>(dst));
  }
  SIEVE_CUDA_CHECK_LAUNCH("gather_rows");
}

}  // namespace

void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, TensorView idx, void* dst) {
  const int64_t n = idx.numel();
  if (n == 0 || row_bytes == 0) return;
  if (idx.dtype == DType::I32) {
    launch_gather(src, src_rows, row_bytes, static_cast<const int32_t*>(idx.data), n, dst);
  } else {
    launch_gather(src, src_rows, row_bytes, static_cast<const long long*>(idx.data), n, dst);
  }
}

void scatter_add_rows(const float* src, TensorView idx, int64_t cols, float* dst, int64_t dst_rows) {
  const int64_t n = idx.numel();
  if (n == 0 || cols == 0) return;
  if (idx.dtype == DType::I32) {
    scatter_add_rows_kernel<<<blocks_for(n * cols), 256, 0, stream()>>>(src, static_cast<const int32_t*>(idx.data), n,
                                                                         cols, dst, dst_rows);
  } else {
    scatter_add_rows_kernel<<<blocks_for(n * cols), 256, 0, stream()>>>(src, static_cast<const long long*>(idx.data),
                                                                         n, cols, dst, dst_rows);
  }
  SIEVE_CUDA_CHECK_LAUNCH("scatter_add_rows");
}

}  // namespace sieve::cuda

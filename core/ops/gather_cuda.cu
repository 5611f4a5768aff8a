#include <cstdint>

#include "core/cuda_launch.cuh"
#include "core/ops/gather.h"

namespace sieve::cuda {
namespace {

// dst[i, :] = src[idx[i], :], copying `Word`s (4-byte words when rows allow, else bytes); a zero row for an
// out-of-range index.
template <typename Index, typename Word>
__global__ void gather_rows_kernel(const Word* src, int64_t src_rows, int64_t row_words, const Index* idx, int64_t n,
                                   Word* dst) {
  const int64_t total = n * row_words;
  SIEVE_GRID_STRIDE(t, total) {
    const int64_t i = t / row_words, w = t % row_words;
    const int64_t r = idx[i];
    dst[t] = (r >= 0 && r < src_rows) ? src[r * row_words + w] : Word(0);
  }
}

// dst[idx[i], :] += src[i, :]
template <typename Index>
__global__ void scatter_add_rows_kernel(const float* src, const Index* idx, int64_t n, int64_t cols, float* dst,
                                        int64_t dst_rows) {
  const int64_t total = n * cols;
  SIEVE_GRID_STRIDE(t, total) {
    const int64_t i = t / cols, c = t % cols;
    const int64_t r = idx[i];
    if (r >= 0 && r < dst_rows) atomicAdd(dst + r * cols + c, src[t]);
  }
}

template <typename Index>
void launch_gather(const void* src, int64_t src_rows, int64_t row_bytes, const Index* idx, int64_t n, void* dst) {
  // Words only when both pointers are 4-byte aligned too: a byte view (rows() of a uint8 tensor) may start anywhere,
  // and a misaligned 4-byte load is a fatal "misaligned address" error on the device.
  const bool words_aligned = reinterpret_cast<uintptr_t>(src) % 4 == 0 && reinterpret_cast<uintptr_t>(dst) % 4 == 0;
  if (row_bytes % 4 == 0 && words_aligned) {
    const int64_t words = row_bytes / 4;
    launch("gather_rows_kernel", n * words, 256, gather_rows_kernel<Index, uint32_t>, static_cast<const uint32_t*>(src),
           src_rows, words, idx, n, static_cast<uint32_t*>(dst));
  } else {
    launch("gather_rows_kernel", n * row_bytes, 256, gather_rows_kernel<Index, uint8_t>,
           static_cast<const uint8_t*>(src), src_rows, row_bytes, idx, n, static_cast<uint8_t*>(dst));
  }
}

}  // namespace

void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, TensorView idx, void* dst) {
  const int64_t n = idx.numel();
  if (n == 0 || row_bytes == 0) return;
  if (idx.dtype == DType::I32) {
    launch_gather(src, src_rows, row_bytes, static_cast<const int32_t*>(idx.data), n, dst);
  } else {
    launch_gather(src, src_rows, row_bytes, static_cast<const int64_t*>(idx.data), n, dst);
  }
}

void scatter_add_rows(const float* src, TensorView idx, int64_t cols, float* dst, int64_t dst_rows) {
  const int64_t n = idx.numel();
  if (n == 0 || cols == 0) return;
  if (idx.dtype == DType::I32) {
    launch("scatter_add_rows_kernel", n * cols, 256, scatter_add_rows_kernel<int32_t>, src,
           static_cast<const int32_t*>(idx.data), n, cols, dst, dst_rows);
  } else {
    launch("scatter_add_rows_kernel", n * cols, 256, scatter_add_rows_kernel<int64_t>, src,
           static_cast<const int64_t*>(idx.data), n, cols, dst, dst_rows);
  }
}

}  // namespace sieve::cuda

#include <cstring>

#include "core/ops/gather.h"

namespace sieve::cpu {
namespace {
int64_t index_at(const TensorView& idx, int64_t i) {
  return idx.dtype == DType::I32 ? static_cast<const int32_t*>(idx.data)[i] : static_cast<const int64_t*>(idx.data)[i];
}
}  // namespace

void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, TensorView idx, void* dst) {
  const int64_t n = idx.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = index_at(idx, i);
    SIEVE_CHECK(r >= 0 && r < src_rows, "index_select: index ", r, " at position ", i, " is outside [0, ", src_rows, ")");
    std::memcpy(static_cast<char*>(dst) + i * row_bytes, static_cast<const char*>(src) + r * row_bytes,
                static_cast<size_t>(row_bytes));
  }
}

void scatter_add_rows(const float* src, TensorView idx, int64_t cols, float* dst, int64_t dst_rows) {
  const int64_t n = idx.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = index_at(idx, i);
    SIEVE_CHECK(r >= 0 && r < dst_rows, "scatter_add_rows: index ", r, " is outside [0, ", dst_rows, ")");
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] += src[i * cols + c];
  }
}

}  // namespace sieve::cpu

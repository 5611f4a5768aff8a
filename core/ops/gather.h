// Row gather by an index tensor: out[i] = x[idx[i]] along dimension 0, any dtype, int32 or int64 indices.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// Indices are checked against the row count on the CPU; on the GPU they are trusted (they come from
// selectors that draw them in range) and an out-of-range index yields a zero row.
Tensor index_select(const Tensor& x, const Tensor& idx);

namespace cpu {
void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, TensorView idx, void* dst);
// dst[idx[i]] += src[i] for float32 rows of `cols` values (the gradient of a gather).
void scatter_add_rows(const float* src, TensorView idx, int64_t cols, float* dst, int64_t dst_rows);
}  // namespace cpu

namespace cuda {
void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, TensorView idx, void* dst);
void scatter_add_rows(const float* src, TensorView idx, int64_t cols, float* dst, int64_t dst_rows);
}  // namespace cuda

}  // namespace sieve

// Reductions: sum, mean, weighted mean, argmax. Scalars are 0-d tensors on the input's device.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// sum_i w_i x_i / n for x, w of shape [n]: the weighted loss of importance sampling (w = 1 gives the mean).
Tensor weighted_mean(const Tensor& x, const Tensor& w);
// Index of the largest value in each row of [n, c], int32 [n] (the first on ties).
Tensor argmax_rows(const Tensor& x);
// Number of positions where int32 a == b, as an int64 on the host (synchronises).
int64_t count_equal(const Tensor& a, const Tensor& b);

namespace cpu {
void sum(const float* x, int64_t n, float* out);                          // out[0] = sum x
void dot(const float* x, const float* w, int64_t n, float scale, float* out);  // out[0] = scale sum w x (w null: 1)
void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols);
int64_t count_equal(const int32_t* a, const int32_t* b, int64_t n);
// out_i = g[0] * scale * w_i (w may be null: 1); the backward of sum, mean and weighted_mean.
void broadcast_scaled(const float* g, float scale, const float* w, float* out, int64_t n);
}  // namespace cpu

namespace cuda {
void sum(const float* x, int64_t n, float* out);
void dot(const float* x, const float* w, int64_t n, float scale, float* out);
void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols);
int64_t count_equal(const int32_t* a, const int32_t* b, int64_t n);
void broadcast_scaled(const float* g, float scale, const float* w, float* out, int64_t n);
}  // namespace cuda

}  // namespace sieve

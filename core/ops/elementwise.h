// Elementwise arithmetic on float32 tensors of equal shape, ReLU, and in-place updates.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);
Tensor relu(const Tensor& x);

// In place, never recorded by autograd.
void fill_(Tensor& t, double value);                  // any dtype
void add_(Tensor& y, const Tensor& x);                // y += x
void axpy_(Tensor& y, float alpha, const Tensor& x);  // y += alpha * x
void scale_(Tensor& y, float s);                      // y *= s

enum class BinaryOp { Add, Sub, Mul };

namespace cpu {
void fill(TensorView t, double value);
void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
void axpby(float alpha, const float* x, float beta, float* y, int64_t n);  // y = alpha x + beta y
void relu_fwd(const float* x, float* y, int64_t n);
void relu_bwd(const float* y, const float* grad_y, float* grad_x, int64_t n);  // grad_x = grad_y [y > 0]
}  // namespace cpu

namespace cuda {
void fill(TensorView t, double value);
void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
void axpby(float alpha, const float* x, float beta, float* y, int64_t n);
void relu_fwd(const float* x, float* y, int64_t n);
void relu_bwd(const float* y, const float* grad_y, float* grad_x, int64_t n);
}  // namespace cuda

}  // namespace sieve

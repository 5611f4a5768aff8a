#include <cstdint>

#include "core/cuda_launch.cuh"
#include "core/ops/elementwise_math.h"

namespace sieve::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T v) {
  SIEVE_GRID_STRIDE(i, n)
    p[i] = v;
}

// out = a (op) b
__global__ void binary_kernel(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    out[i] = apply_binary(op, a[i], b[i]);
}

// y = alpha x + beta y
__global__ void axpby_kernel(float alpha, const float* x, float beta, float* y, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    y[i] = alpha * x[i] + beta * y[i];
}

// y = max(x, 0)
__global__ void relu_fwd_kernel(const float* x, float* y, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    y[i] = relu_value(x[i]);
}

// grad_x = grad_y [y > 0]
__global__ void relu_bwd_kernel(const float* y, const float* gy, float* gx, int64_t n) {
  SIEVE_GRID_STRIDE(i, n)
    gx[i] = relu_grad(y[i], gy[i]);
}

template <typename T>
void launch_fill(void* p, int64_t n, T v) {
  launch("fill_kernel", n, 256, fill_kernel<T>, static_cast<T*>(p), n, v);
}

}  // namespace

void fill(TensorView t, double value) {
  const int64_t n = t.numel();
  if (n == 0) return;
  switch (t.dtype) {
    case DType::F32: launch_fill<float>(t.data, n, static_cast<float>(value)); break;
    case DType::I32: launch_fill<int32_t>(t.data, n, static_cast<int32_t>(value)); break;
    case DType::I64: launch_fill<int64_t>(t.data, n, static_cast<int64_t>(value)); break;
    case DType::U8: SIEVE_CUDA_CHECK(cudaMemsetAsync(t.data, static_cast<uint8_t>(value), n, stream())); break;
  }
}

void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  launch("binary_kernel", n, 256, binary_kernel, op, a, b, out, n);
}

void axpby(float alpha, const float* x, float beta, float* y, int64_t n) {
  launch("axpby_kernel", n, 256, axpby_kernel, alpha, x, beta, y, n);
}

void relu_fwd(const float* x, float* y, int64_t n) {
  launch("relu_fwd_kernel", n, 256, relu_fwd_kernel, x, y, n);
}

void relu_bwd(const float* y, const float* grad_y, float* grad_x, int64_t n) {
  launch("relu_bwd_kernel", n, 256, relu_bwd_kernel, y, grad_y, grad_x, n);
}

}  // namespace sieve::cuda

#include <cstdint>

#include "core/cuda_check.h"
#include "core/ops/elementwise_math.h"

namespace sieve::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* p, long long n, T v) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = v;
}

// out = a (op) b
__global__ void binary_kernel(BinaryOp op, const float* a, const float* b, float* out, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = apply_binary(op, a[i], b[i]);
}

// y = alpha x + beta y
__global__ void axpby_kernel(float alpha, const float* x, float beta, float* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = alpha * x[i] + beta * y[i];
}

// y = max(x, 0)
__global__ void relu_fwd_kernel(const float* x, float* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = relu_value(x[i]);
}

// grad_x = grad_y [y > 0]
__global__ void relu_bwd_kernel(const float* y, const float* gy, float* gx, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    gx[i] = relu_grad(y[i], gy[i]);
}

template <typename T>
void launch_fill(void* p, long long n, T v) {
  fill_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<T*>(p), n, v);
  SIEVE_CUDA_CHECK_LAUNCH("fill");
}

}  // namespace

void fill(TensorView t, double value) {
  const long long n = t.numel();
  if (n == 0) return;
  switch (t.dtype) {
    case DType::F32: launch_fill<float>(t.data, n, static_cast<float>(value)); break;
    case DType::I32: launch_fill<int32_t>(t.data, n, static_cast<int32_t>(value)); break;
    case DType::I64: launch_fill<long long>(t.data, n, static_cast<long long>(value)); break;
    case DType::U8: SIEVE_CUDA_CHECK(cudaMemsetAsync(t.data, static_cast<uint8_t>(value), n, stream())); break;
  }
}

void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  binary_kernel<<<blocks_for(n), 256, 0, stream()>>>(op, a, b, out, n);
  SIEVE_CUDA_CHECK_LAUNCH("binary");
}

void axpby(float alpha, const float* x, float beta, float* y, int64_t n) {
  if (n == 0) return;
  axpby_kernel<<<blocks_for(n), 256, 0, stream()>>>(alpha, x, beta, y, n);
  SIEVE_CUDA_CHECK_LAUNCH("axpby");
}

void relu_fwd(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  relu_fwd_kernel<<<blocks_for(n), 256, 0, stream()>>>(x, y, n);
  SIEVE_CUDA_CHECK_LAUNCH("relu_fwd");
}

void relu_bwd(const float* y, const float* grad_y, float* grad_x, int64_t n) {
  if (n == 0) return;
  relu_bwd_kernel<<<blocks_for(n), 256, 0, stream()>>>(y, grad_y, grad_x, n);
  SIEVE_CUDA_CHECK_LAUNCH("relu_bwd");
}

}  // namespace sieve::cuda

#include <cstring>

#include "core/ops/elementwise.h"
#include "core/ops/elementwise_math.h"
#include "core/ops/cpu_parallel.h"

namespace sieve::cpu {

template <typename T>
static void fill_typed(T* p, int64_t n, T v) {
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

void fill(TensorView t, double value) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::F32: fill_typed(static_cast<float*>(t.data), n, static_cast<float>(value)); break;
    case DType::I32: fill_typed(static_cast<int32_t*>(t.data), n, static_cast<int32_t>(value)); break;
    case DType::I64: fill_typed(static_cast<int64_t*>(t.data), n, static_cast<int64_t>(value)); break;
    case DType::U8: std::memset(t.data, static_cast<uint8_t>(value), static_cast<size_t>(n)); break;
  }
}

// One loop per operation, so that the operation is known inside it and the loop vectorises (one loop that
// switched per element did not: scalar code); out may be a or b.
template <BinaryOp kOp>
static void binary_loop(const float* a, const float* b, float* out, int64_t n) {
  SIEVE_PARALLEL_FOR(n >= kParallelMin)  // Note [cpu threads]
  for (int64_t i = 0; i < n; ++i) out[i] = apply_binary(kOp, a[i], b[i]);
}

void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: return binary_loop<BinaryOp::Add>(a, b, out, n);
    case BinaryOp::Sub: return binary_loop<BinaryOp::Sub>(a, b, out, n);
    case BinaryOp::Mul: return binary_loop<BinaryOp::Mul>(a, b, out, n);
  }
}

void axpby(float alpha, const float* x, float beta, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}

void relu_fwd(const float* x, float* y, int64_t n) {
  SIEVE_PARALLEL_FOR(n >= kParallelMin)  // Note [cpu threads]
  for (int64_t i = 0; i < n; ++i) y[i] = relu_value(x[i]);
}

void relu_bwd(const float* y, const float* grad_y, float* grad_x, int64_t n) {
  SIEVE_PARALLEL_FOR(n >= kParallelMin)  // Note [cpu threads]
  for (int64_t i = 0; i < n; ++i) grad_x[i] = relu_grad(y[i], grad_y[i]);
}

}  // namespace sieve::cpu

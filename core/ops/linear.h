// Matrix products (OpenBLAS on the CPU, cuBLAS on the GPU) and the bias add of affine layers.
#pragma once

#include <string>

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// op(a) @ op(b) for 2-d float32 tensors, op = transpose when the flag is set. matmul and linear (forward and
// backward) multiply in the precision of matmul_precision() (core/ops/precision.h, Note [bf16 products]).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// Note [openblas kernels]: OpenBLAS picks its kernels by the CPU model when the library loads. Debian's 0.3.21 does
// not know every recent model and falls back to its oldest x86-64 kernels (Prescott, SSE3) on CPUs with AVX-512,
// as on the development machine, where sgemm then ran at 36 GFLOP/s instead of 208 with OPENBLAS_CORETYPE=SkylakeX
// (sieve-bench). The choice cannot be changed once loaded: sieve's programs start themselves again with
// OPENBLAS_CORETYPE set (apps/blas_kernels.h) unless it is set already; a program of one's own can set it, as the
// advice says.
// The kernels OpenBLAS uses ("SkylakeX", "Haswell", "Prescott", ...), or "" when the BLAS is not OpenBLAS's.
std::string cpu_blas_kernels();
// The OPENBLAS_CORETYPE that suits this CPU when the kernels in use are older than it ("SkylakeX" with AVX-512,
// "Haswell" with AVX2), else "" (also when OPENBLAS_CORETYPE is set: the user's choice stands).
std::string cpu_blas_better_kernels();
// One line of advice when cpu_blas_better_kernels() names some, else "".
std::string cpu_blas_advice();
// x [n, c] + bias [c] broadcast over rows.
Tensor add_bias(const Tensor& x, const Tensor& bias);
// x [n, in] @ weight[out, in]^T + bias [out]: one GEMM with the bias folded in (bias may be undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Row-major C[m, n] = alpha op(A) op(B) + beta C, with op(A) [m, k] and op(B) [k, n].
namespace cpu {
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c);
// The same product with A and B rounded to bfloat16 and float32 accumulation (Note [bf16 products] in
// core/ops/precision.h); C stays float32.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               const float* b, float beta, float* c);
void bias_add(const float* x, const float* bias, float* y, int64_t rows, int64_t cols);
void column_sums(const float* x, float* out, int64_t rows, int64_t cols, float beta);  // out = sum_rows x + beta out
}  // namespace cpu

namespace cuda {
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c);
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               const float* b, float beta, float* c);
void bias_add(const float* x, const float* bias, float* y, int64_t rows, int64_t cols);
void column_sums(const float* x, float* out, int64_t rows, int64_t cols, float beta);
}  // namespace cuda

}  // namespace sieve

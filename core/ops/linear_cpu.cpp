#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/ops/cpu_backend.h"
#include "core/ops/linear.h"
#include "core/ops/precision.h"

namespace sieve::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  if (m == 0 || n == 0) return;
  if (k > 0 && cpu_backend() == CpuBackend::OneDnn) {  // Note [cpu backends]
    onednn::gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    return;
  }
  // Leading dimensions are at least 1 even for an empty inner dimension (k = 0), as BLAS requires.
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? m : k));
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? k : n));
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, lda, b, ldb, beta, c,
              static_cast<int>(n));
}

// Rounds copies of A and B (thread_local, grown and never shrunk) and multiplies them in float32: the arithmetic
// of cuda::gemm_bf16 up to the order of accumulation (Note [bf16 products]).
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  thread_local std::vector<float> a16, b16;
  if (a16.size() < static_cast<size_t>(m * k)) a16.resize(static_cast<size_t>(m * k));
  if (b16.size() < static_cast<size_t>(k * n)) b16.resize(static_cast<size_t>(k * n));
  round_to_bf16(a, a16.data(), m * k);
  round_to_bf16(b, b16.data(), k * n);
  gemm(trans_a, trans_b, m, n, k, alpha, a16.data(), b16.data(), beta, c);
}

void bias_add(const float* x, const float* bias, float* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + bias[c];
}

void column_sums(const float* x, float* out, int64_t rows, int64_t cols, float beta) {
  for (int64_t c = 0; c < cols; ++c) out[c] *= beta;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c] += x[r * cols + c];
}

}  // namespace sieve::cpu

// Note [openblas kernels]. A weak declaration: a BLAS other than OpenBLAS leaves it null.
extern "C" char* openblas_get_corename(void) __attribute__((weak));

namespace sieve {

std::string cpu_blas_kernels() { return openblas_get_corename ? std::string(openblas_get_corename()) : ""; }

std::string cpu_blas_better_kernels() {
  const std::string kernels = cpu_blas_kernels();
  if (kernels.empty() || std::getenv("OPENBLAS_CORETYPE")) return "";
  const bool old = kernels == "Prescott" || kernels == "Core2" || kernels == "Nehalem" || kernels == "Sandybridge" ||
                   kernels == "Katmai" || kernels == "Coppermine" || kernels == "Northwood" || kernels == "Banias";
  if (!old) return "";
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

std::string cpu_blas_advice() {
  const std::string better = cpu_blas_better_kernels();
  if (better.empty()) return "";
  return "OpenBLAS chose its " + cpu_blas_kernels() + " kernels on a CPU that runs its " + better +
         " ones: export OPENBLAS_CORETYPE=" + better +
         " for matrix products several times faster (Note [openblas kernels])";
}

}  // namespace sieve


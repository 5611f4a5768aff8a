// cuBLAS matrix products. Host-compiled: nvcc never sees cuBLAS headers.
#include <cublas_v2.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "core/cuda_check.h"
#include "core/ops/linear.h"
#include "core/ops/precision.h"
#include "core/scratch.h"

namespace sieve::cuda {
namespace {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

#define SIEVE_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                    \
    cublasStatus_t s_ = (call);                                                                           \
    if (s_ != CUBLAS_STATUS_SUCCESS) SIEVE_FAIL("cuBLAS error ", cublas_status_name(s_), " in ", #call); \
  } while (0)

// One handle per device, bound to that device's compute stream.
cublasHandle_t handle() {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;
  int device = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= static_cast<int>(handles.size())) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) {
    SIEVE_CUBLAS_CHECK(cublasCreate(&handles[device]));
    SIEVE_CUBLAS_CHECK(cublasSetStream(handles[device], stream()));
    // A workspace of its own for the process's life (PyTorch's default size on recent GPUs), so that cuBLAS works
    // in the same memory and may choose the same kernels whether or not the stream is being captured into a CUDA
    // graph (Note [cuda graphs]); cublasSetStream resets it, so it is set after.
    constexpr size_t kWorkspaceBytes = size_t{32} << 20;
    SIEVE_CUBLAS_CHECK(cublasSetWorkspace(handles[device], device_malloc(kWorkspaceBytes, device), kWorkspaceBytes));
  }
  return handles[device];
}

}  // namespace

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  if (m == 0 || n == 0) return;
  // Leading dimensions are at least 1 even for an empty inner dimension (k = 0), as BLAS requires.
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? m : k));
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? k : n));
  SIEVE_CUBLAS_CHECK(cublasSgemm(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, ldb, a, lda,
                                 &beta, c, static_cast<int>(n)));
}

// The bf16 product on cuBLAS (Note [bf16 products]): A and B are cast to bf16 into scratch (the rounding of precision_math.h, the same as the
// CPU's), then multiplied on tensor cores with float32 accumulation and a float32 C. cuBLAS lists bf16 A/B with
// a float32 C under CUBLAS_COMPUTE_32F (scale type float). The casts read A and B once each, small next to the
// product for the shapes of a training step.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? m : k));
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? k : n));
  DeviceScratch a16(static_cast<size_t>(m * k) * sizeof(uint16_t)), b16(static_cast<size_t>(k * n) * sizeof(uint16_t));
  float_to_bf16(a, a16.as<uint16_t>(), m * k);
  float_to_bf16(b, b16.as<uint16_t>(), k * n);
  SIEVE_CUBLAS_CHECK(cublasGemmEx(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b16.data(),
                                  CUDA_R_16BF, ldb, a16.data(), CUDA_R_16BF, lda, &beta, c, CUDA_R_32F,
                                  static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace sieve::cuda

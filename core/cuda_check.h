// Internal: CUDA runtime checking and the per-device compute stream. Included by .cu files and by the
// host-compiled .cpp files that call CUDA libraries; never by public headers (they stay free of CUDA types).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/error.h"

namespace sieve::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);

// The one compute stream of the current device (created on first use). All sieve work on a device is
// ordered on it, which is what makes the caching allocator's reuse safe (Note [stream-ordered reuse]).
cudaStream_t stream();

// Blocks of 256 threads cover n elements; grid size capped for grid-stride loops.
inline unsigned int blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > int64_t{65535} * 16) b = int64_t{65535} * 16;
  return static_cast<unsigned int>(b);
}

// After a kernel launch: a launch-configuration error, reported as "... in the launch of <kernel> at file:line".
inline void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t status = cudaPeekAtLastError();
  if (status != cudaSuccess) throw_cuda_error(status, detail::concat("the launch of ", kernel).c_str(), file, line);
}

}  // namespace sieve::cuda

#define SIEVE_CUDA_CHECK(call)                                                         \
  do {                                                                                 \
    cudaError_t sieve_status_ = (call);                                                \
    if (sieve_status_ != cudaSuccess)                                                  \
      ::sieve::cuda::throw_cuda_error(sieve_status_, #call, __FILE__, __LINE__);       \
  } while (0)

// After a kernel launched by hand: reports launch-configuration errors at the launch site, naming the kernel. The
// launchers of core/cuda_launch.cuh check for themselves.
#define SIEVE_CUDA_CHECK_LAUNCH(name) ::sieve::cuda::check_launch((name), __FILE__, __LINE__)

// Internal: temporary device memory for one call (workspaces, bf16 copies of operands) from the caching
// allocator, returned when the call has been queued: the next user of the block runs after it on the same
// stream (Note [stream-ordered reuse] in allocator.cpp). Used by the library's host files (workspaces, bf16 copies)
// and its kernels' launchers (CUB temporary storage).
#pragma once

#include <cstddef>

#include "core/allocator.h"
#include "core/cuda_check.h"

namespace sieve::cuda {

class DeviceScratch {
 public:
  explicit DeviceScratch(size_t bytes) : bytes_(bytes) {
    if (bytes_ == 0) return;
    SIEVE_CUDA_CHECK(cudaGetDevice(&device_));
    ptr_ = device_malloc(bytes_, device_);
  }
  ~DeviceScratch() {
    if (ptr_) device_free(ptr_, device_);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  void* data() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

// CUB reads a null temporary storage pointer as "query the size" and would silently do nothing: its callers ask for
// at least one byte.
inline size_t cub_bytes(size_t bytes) { return bytes == 0 ? 1 : bytes; }

}  // namespace sieve::cuda

// Internal: what the host-compiled cuDNN files share (conv2d_cudnn.cpp, lstm_cudnn.cpp): the status check, one
// handle per device and workspaces from the caching allocator. Included only by those files; public headers stay
// free of cuDNN types.
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "core/cuda_check.h"

#define SIEVE_CUDNN_CHECK(call)                                                                    \
  do {                                                                                             \
    const cudnnStatus_t sieve_cudnn_status_ = (call);                                              \
    if (sieve_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                               \
      SIEVE_FAIL("cuDNN error ", cudnnGetErrorString(sieve_cudnn_status_), " in ", #call);         \
  } while (0)

namespace sieve::cuda {

// The cuDNN handle of the current device, bound to that device's compute stream (Note [stream-ordered reuse] in
// allocator.cpp).
cudnnHandle_t cudnn_handle();

// Device memory for one call from the caching allocator, returned when the call has been queued: the next user of
// the block runs after it on the same stream (Note [stream-ordered reuse]). Sharing the cache across shapes keeps
// one workspace's worth of memory alive rather than one per plan.
class Workspace {
 public:
  explicit Workspace(size_t bytes);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

}  // namespace sieve::cuda

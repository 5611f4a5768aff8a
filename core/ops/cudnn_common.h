// Internal: what the host-compiled cuDNN files share (conv2d_cudnn.cpp, lstm_cudnn.cpp): the status check, one
// handle per device (workspaces come from core/ops/scratch.h). Included only by those files; public headers stay
// free of cuDNN types.
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "core/cuda_check.h"
#include "core/scratch.h"

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

}  // namespace sieve::cuda

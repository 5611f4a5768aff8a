// Internal: what the host-compiled cuDNN files share (conv2d_cudnn.cpp, lstm_cudnn.cpp): the status check, one
// handle per device (workspaces come from core/scratch.h). Included only by those files; public headers stay
// free of cuDNN types.
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

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
// core/allocator.cpp).
cudnnHandle_t cudnn_handle();

// What a cached plan is built for: a shape on a device under a TF32 setting.
template <typename Shape>
struct PlanKey {
  int device = 0;
  Shape shape;
  bool tf32 = true;
  bool benchmark = false;  // an algorithm timed by cudnnFind* (set_conv_benchmark in core/ops/conv2d.h)
  auto operator<=>(const PlanKey&) const = default;
};

// The plan of `shape` on the current device under the TF32 setting `tf32`, built by make(key) (returning a
// std::unique_ptr<Plan>) on first use and kept for the life of the process. Never destroyed: destroying descriptors
// during static destruction may run after cuDNN is unloaded.
template <typename Plan, typename Shape, typename Make>
const Plan& cached_plan(const Shape& shape, bool tf32, Make&& make, bool benchmark = false) {
  static std::mutex mutex;
  static auto* plans = new std::map<PlanKey<Shape>, std::unique_ptr<Plan>>();
  PlanKey<Shape> key{0, shape, tf32, benchmark};
  SIEVE_CUDA_CHECK(cudaGetDevice(&key.device));
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, make(key)).first;
  return *it->second;
}

}  // namespace sieve::cuda

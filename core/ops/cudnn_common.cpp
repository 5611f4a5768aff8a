#include "core/ops/cudnn_common.h"

#include <mutex>
#include <vector>

#include "core/allocator.h"

namespace sieve::cuda {

cudnnHandle_t cudnn_handle() {
  static std::mutex mutex;
  static std::vector<cudnnHandle_t> handles;
  int device = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= static_cast<int>(handles.size())) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) {
    SIEVE_CUDNN_CHECK(cudnnCreate(&handles[device]));
    SIEVE_CUDNN_CHECK(cudnnSetStream(handles[device], stream()));
  }
  return handles[device];
}

}  // namespace sieve::cuda

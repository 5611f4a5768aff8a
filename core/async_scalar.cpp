#include "core/async_scalar.h"

#include "core/allocator.h"
#include "core/cuda_check.h"

namespace sieve {

AsyncScalar::AsyncScalar() { host_ = static_cast<float*>(pinned_malloc(sizeof(float))); }

AsyncScalar::~AsyncScalar() {
  // Never throws (a DeviceGuard could, at exit, once the runtime is unloading). A copy still queued into host_
  // must land before the pinned buffer is released.
  if (event_) {
    const cudaEvent_t e = static_cast<cudaEvent_t>(event_);
    int previous = 0;
    const bool switch_device = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                               cudaSetDevice(device_) == cudaSuccess;
    if (pending_) cudaEventSynchronize(e);
    cudaEventDestroy(e);
    if (switch_device) cudaSetDevice(previous);
    cudaGetLastError();
  }
  pinned_free(host_);
}

void AsyncScalar::capture(const Tensor& scalar) {
  check_dtype(scalar, DType::F32, "AsyncScalar");
  SIEVE_CHECK(scalar.numel() == 1, "AsyncScalar: expected one element, found ", scalar.description());
  if (scalar.device().is_cpu()) {
    value_ = *scalar.data<float>();
    ready_ = true;
    pending_ = false;
    return;
  }
  DeviceGuard guard(scalar.device());
  if (event_ == nullptr || device_ != scalar.device().index) {
    if (event_) {  // a copy from the previous device may still be on its way into host_: let it land first
      if (pending_) SIEVE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
      cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    }
    cudaEvent_t e;
    SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    event_ = e;
    device_ = scalar.device().index;
  }
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(host_, scalar.raw_data(), sizeof(float), cudaMemcpyDeviceToHost, cuda::stream()));
  SIEVE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), cuda::stream()));
  pending_ = true;
}

float AsyncScalar::get() {
  SIEVE_CHECK(has_value(), "AsyncScalar::get before any capture");
  if (pending_) {
    SIEVE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
    value_ = *host_;
    pending_ = false;
    ready_ = true;
  }
  return value_;
}

}  // namespace sieve

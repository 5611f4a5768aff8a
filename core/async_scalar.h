// Reads a device scalar on the host without stalling the stream at the point of capture: capture() queues a
// copy into pinned memory behind the work that computes the value; get() waits only for that copy.
#pragma once

#include <memory>

#include "core/tensor.h"

namespace sieve {

class AsyncScalar {
 public:
  AsyncScalar();
  ~AsyncScalar();
  AsyncScalar(const AsyncScalar&) = delete;
  AsyncScalar& operator=(const AsyncScalar&) = delete;

  void capture(const Tensor& scalar);  // a one-element float32 tensor on any device
  bool has_value() const { return pending_ || ready_; }
  float get();                         // waits for the last capture

 private:
  float* host_ = nullptr;  // pinned
  void* event_ = nullptr;  // cudaEvent_t, kept opaque so the header stays free of CUDA types
  int device_ = -1;
  bool pending_ = false;
  bool ready_ = false;
  float value_ = 0.f;
};

}  // namespace sieve

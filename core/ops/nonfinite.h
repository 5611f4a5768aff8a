// Note [divergence flag]: watching a training loss for NaN and ±inf every step without waiting for the device.
// `first_step` (int64, one element) holds -1 until the first call whose `value` (float32, one element) is not finite;
// that call stores `step` there and the value in `first_value` (float32, one element); later calls change nothing.
// All three stay on their device (one kernel, no host round trip); the caller reads `first_step` where it waits
// anyway, and it still names the first bad step however late it is read.
#pragma once

#include <cfloat>
#include <cstdint>

#include "core/host_device.h"
#include "core/tensor.h"

namespace sieve {

void record_first_nonfinite(const Tensor& value, int64_t step, Tensor& first_step, Tensor& first_value);

// The rule of record_first_nonfinite, shared by the CPU and the CUDA backends.
SIEVE_HD void note_first_nonfinite(float value, int64_t step, int64_t* first_step, float* first_value) {
  const bool finite = value >= -FLT_MAX && value <= FLT_MAX;  // false for NaN and ±inf alone
  if (*first_step < 0 && !finite) {
    *first_step = step;
    *first_value = value;
  }
}

namespace cpu {
void record_first_nonfinite(const float* value, int64_t step, int64_t* first_step, float* first_value);
}  // namespace cpu
namespace cuda {
void record_first_nonfinite(const float* value, int64_t step, int64_t* first_step, float* first_value);
}  // namespace cuda

}  // namespace sieve

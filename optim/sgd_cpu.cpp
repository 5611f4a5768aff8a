#include "optim/sgd.h"
#include "optim/sgd_math.h"

namespace sieve::cpu {

void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step) {
  // Elements are independent, so threads change nothing but the time (worth it only for large tensors).
#pragma omp parallel for schedule(static) if (n >= (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) {
    const float v = (momentum != nullptr && !step.first) ? momentum[i] : 0.f;
    const SgdElement r = sgd_element(param[i], grad[i], v, step);
    param[i] = r.param;
    if (momentum != nullptr) momentum[i] = r.momentum;
  }
}

}  // namespace sieve::cpu

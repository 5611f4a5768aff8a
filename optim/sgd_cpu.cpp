#include "optim/sgd.h"
#include "optim/sgd_math.h"

namespace sieve::cpu {

void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step) {
  // Single-threaded on purpose: the loop runs at copy bandwidth already, and an OpenMP team left spinning after
  // it takes the cores from OpenBLAS's threads in the next matrix product (measured in sieve-bench).
  for (int64_t i = 0; i < n; ++i) {
    const float v = (momentum != nullptr && !step.first) ? momentum[i] : 0.f;
    const SgdElement r = sgd_element(param[i], grad[i], v, step);
    param[i] = r.param;
    if (momentum != nullptr) momentum[i] = r.momentum;
  }
}

}  // namespace sieve::cpu

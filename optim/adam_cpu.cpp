#include "optim/adam.h"
#include "optim/adam_math.h"

namespace sieve::cpu {

void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, AdamStep step) {
  // Single-threaded, as sgd_update (optim/sgd_cpu.cpp): memory-bound, and an idle OpenMP team would slow OpenBLAS.
  for (int64_t i = 0; i < n; ++i) {
    const float m = step.first ? 0.f : exp_avg[i];
    const float v = step.first ? 0.f : exp_avg_sq[i];
    const AdamElement r = adam_element(param[i], grad[i], m, v, step);
    param[i] = r.param;
    exp_avg[i] = r.exp_avg;
    exp_avg_sq[i] = r.exp_avg_sq;
  }
}

}  // namespace sieve::cpu

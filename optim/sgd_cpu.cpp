#include "optim/sgd.h"
#include "optim/sgd_math.h"

namespace sieve::cpu {
namespace {

// One loop per case of the buffer (none, new, kept), its pointers __restrict (parameters, gradients and buffers
// never overlap) and its step a value: the conditions inside sgd_element are then the same for every element, GCC
// moves them out of the loop and vectorises it, 3x faster than one loop that tests the buffer per element (0.25
// against 0.75 ms over the MLP's 536k parameters here), with the same bits.
template <bool kMomentum, bool kFirst>
void update(float* __restrict param, const float* __restrict grad, float* __restrict momentum, int64_t n,
            const SgdStep step) {
  for (int64_t i = 0; i < n; ++i) {
    const SgdElement r = sgd_element(param[i], grad[i], kMomentum && !kFirst ? momentum[i] : 0.f, step);
    param[i] = r.param;
    if (kMomentum) momentum[i] = r.momentum;
  }
}

}  // namespace

void sgd_update(float* param, const float* grad, float* momentum, int64_t n, SgdStep step) {
  // Single-threaded on purpose: the loop runs at copy bandwidth already, and an OpenMP team left spinning after
  // it takes the cores from OpenBLAS's threads in the next matrix product (measured in sieve-bench).
  if (momentum == nullptr)
    update<false, false>(param, grad, nullptr, n, step);
  else if (step.first)
    update<true, true>(param, grad, momentum, n, step);
  else
    update<true, false>(param, grad, momentum, n, step);
}

}  // namespace sieve::cpu

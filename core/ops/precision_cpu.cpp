#include "core/ops/precision.h"
#include "core/ops/precision_math.h"

namespace sieve::cpu {

void round_to_bf16(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = sieve::round_to_bf16(x[i]);
}

}  // namespace sieve::cpu

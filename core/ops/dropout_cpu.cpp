#include "core/ops/dropout.h"

namespace sieve::cpu {

void dropout_apply(const float* in, float* out, int64_t n, uint64_t seed, uint64_t offset, float p, float scale) {
  for (int64_t i = 0; i < n; ++i) out[i] = dropout_element(in[i], seed, offset, static_cast<uint64_t>(i), p, scale);
}

}  // namespace sieve::cpu

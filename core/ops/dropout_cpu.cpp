#include "core/ops/dropout.h"

namespace sieve::cpu {

void dropout_apply(const float* in, float* out, int64_t n, PhiloxCounter c, float p, float scale) {
  SIEVE_CHECK(c.base == nullptr, "dropout: a device base on the CPU");
  for (int64_t i = 0; i < n; ++i)
    out[i] = dropout_element(in[i], c.seed, c.offset, static_cast<uint64_t>(i), p, scale);
}

}  // namespace sieve::cpu

#include "core/philox.h"
#include "core/random.h"

namespace sieve {

Generator Generator::fork(uint64_t stream_id) const {
  // A new key from (seed, stream_id) through one Philox block: streams are independent and reproducible.
  const Philox4 r = philox4x32(static_cast<uint32_t>(stream_id), static_cast<uint32_t>(stream_id >> 32), 0xF0C4u,
                               0x5EEDu, static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32));
  return Generator((static_cast<uint64_t>(r.v[0]) << 32) | r.v[1], 0);
}

namespace cpu {

void fill_random(float* out, int64_t n, PhiloxCounter c, Distribution dist, float a, float b) {
  SIEVE_CHECK(c.base == nullptr, "fill_random: a device base on the CPU");
  const uint64_t seed = c.seed, offset = c.offset;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = dist == Distribution::Uniform ? mul_add_unfused(a, b - a, philox_uniform(seed, offset, i))
                                           : mul_add_unfused(a, b, philox_normal(seed, offset, i));
  }
}

void fill_randint(int32_t* out, int64_t n, PhiloxCounter c, uint32_t high) {
  SIEVE_CHECK(c.base == nullptr, "fill_randint: a device base on the CPU");
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(philox_below(c.seed, c.offset, i, high));
}

}  // namespace cpu
}  // namespace sieve

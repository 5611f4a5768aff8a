#include "layers/init.h"

#include <cmath>

namespace sieve::init {

Tensor kaiming_normal(const Shape& shape, int64_t fan_in, Generator& gen, Device device) {
  SIEVE_CHECK(fan_in > 0, "kaiming_normal: fan_in must be positive, got ", fan_in);
  return normal(shape, gen, device, 0.f, std::sqrt(2.f / static_cast<float>(fan_in)));
}

Tensor glorot_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen, Device device) {
  SIEVE_CHECK(fan_in + fan_out > 0, "glorot_uniform: fan_in + fan_out must be positive");
  const float a = std::sqrt(6.f / static_cast<float>(fan_in + fan_out));
  return uniform(shape, gen, device, -a, a);
}

}  // namespace sieve::init

// Weight initialisation from the Philox generator: identical weights on every device for the same seed.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace sieve::init {

// N(0, 2 / fan_in): He et al. 2015, for layers followed by a ReLU.
Tensor kaiming_normal(const Shape& shape, int64_t fan_in, Generator& gen, Device device);
// U(-a, a), a = sqrt(6 / (fan_in + fan_out)): Glorot & Bengio 2010, for the output layer.
Tensor glorot_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen, Device device);

}  // namespace sieve::init

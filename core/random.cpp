#include "core/random.h"

#include "core/ops/dispatch.h"

namespace sieve {

Tensor uniform(const Shape& shape, Generator& gen, Device device, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::F32, device);
  const uint64_t offset = gen.advance(static_cast<uint64_t>(t.numel()));
  SIEVE_DISPATCH(device, fill_random, t.data<float>(), t.numel(), gen.seed(), offset, cpu::Distribution::Uniform, lo, hi);
  return t;
}

Tensor normal(const Shape& shape, Generator& gen, Device device, float mean, float std) {
  Tensor t = Tensor::empty(shape, DType::F32, device);
  const uint64_t offset = gen.advance(static_cast<uint64_t>(t.numel()));
  SIEVE_DISPATCH(device, fill_random, t.data<float>(), t.numel(), gen.seed(), offset, cpu::Distribution::Normal, mean,
                 std);
  return t;
}

Tensor randint(const Shape& shape, int64_t n, Generator& gen, Device device) {
  SIEVE_CHECK(n > 0 && n <= (int64_t{1} << 31), "randint: upper bound ", n, " must be in [1, 2^31]");
  Tensor t = Tensor::empty(shape, DType::I32, device);
  const uint64_t offset = gen.advance(static_cast<uint64_t>(t.numel()));
  SIEVE_DISPATCH(device, fill_randint, t.data<int32_t>(), t.numel(), gen.seed(), offset, static_cast<uint32_t>(n));
  return t;
}

}  // namespace sieve

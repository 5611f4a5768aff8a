#include "core/random.h"

#include "core/cuda_graph.h"
#include "core/ops/dispatch.h"

namespace sieve {

PhiloxCounter Generator::next() const {
  SIEVE_CHECK(base_ != nullptr || !capturing_cuda_graph(),
              "a random draw inside a CUDA graph capture from a generator without a device base would repeat its "
              "numbers at every replay (Note [captured draws])");
  return PhiloxCounter{seed_, offset_, base_};
}

Tensor uniform(const Shape& shape, Generator& gen, Device device, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::F32, device);
  SIEVE_DISPATCH(device, fill_random, t.data<float>(), t.numel(), gen.draw(static_cast<uint64_t>(t.numel())),
                 cpu::Distribution::Uniform, lo, hi);
  return t;
}

Tensor normal(const Shape& shape, Generator& gen, Device device, float mean, float std) {
  Tensor t = Tensor::empty(shape, DType::F32, device);
  SIEVE_DISPATCH(device, fill_random, t.data<float>(), t.numel(), gen.draw(static_cast<uint64_t>(t.numel())),
                 cpu::Distribution::Normal, mean, std);
  return t;
}

Tensor randint(const Shape& shape, int64_t n, Generator& gen, Device device) {
  SIEVE_CHECK(n > 0 && n <= (int64_t{1} << 31), "randint: upper bound ", n, " must be in [1, 2^31]");
  Tensor t = Tensor::empty(shape, DType::I32, device);
  SIEVE_DISPATCH(device, fill_randint, t.data<int32_t>(), t.numel(), gen.draw(static_cast<uint64_t>(t.numel())),
                 static_cast<uint32_t>(n));
  return t;
}

}  // namespace sieve

// Seeded random tensors from the Philox generator (core/philox.h): the same numbers on CPU and GPU.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// A seed and a position in its stream. Each draw of n numbers uses counters [offset, offset + n) and
// advances the offset, so a run is reproduced exactly by (seed, offset), which checkpoints record.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) {
    const uint64_t start = offset_;
    offset_ += n;
    return start;
  }
  // An independent stream for a named purpose (initialisation, sampling, ...), derived from this seed.
  Generator fork(uint64_t stream_id) const;

 private:
  uint64_t seed_;
  uint64_t offset_;
};

Tensor uniform(const Shape& shape, Generator& gen, Device device = Device::cpu(), float lo = 0.f, float hi = 1.f);
Tensor normal(const Shape& shape, Generator& gen, Device device = Device::cpu(), float mean = 0.f, float std = 1.f);
// int32 values uniform in [0, n).
Tensor randint(const Shape& shape, int64_t n, Generator& gen, Device device = Device::cpu());

namespace cpu {
enum class Distribution { Uniform, Normal };
void fill_random(float* out, int64_t n, uint64_t seed, uint64_t offset, Distribution dist, float a, float b);
void fill_randint(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, uint32_t high);
}  // namespace cpu
namespace cuda {
void fill_random(float* out, int64_t n, uint64_t seed, uint64_t offset, cpu::Distribution dist, float a, float b);
void fill_randint(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, uint32_t high);
}  // namespace cuda

}  // namespace sieve

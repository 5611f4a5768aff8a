// Seeded random tensors from the Philox generator (core/philox.h): the same numbers on CPU and GPU.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// Note [one seed]: a run has one seed, and every random number in it comes from that seed. Each purpose draws from
// a stream of its own, Generator(seed).fork(id) with a fixed id per purpose (apps/trainer.cpp: initialisation, the
// selector, the evaluation subset, augmentation, the pixel permutation, score diagnostics), so a purpose that draws
// more or less leaves the others' numbers unchanged: runs of one seed with different samplers start from the same
// model and are evaluated on the same examples, and differ only by their selection. A stream is (seed, offset), and
// checkpoints store both, so a resumed run draws what the uninterrupted run would have. Philox numbers depend only
// on (key, counter), so the same stream gives the same values on the CPU and on a GPU.
//
// Where a kernel's draws start in a Philox stream: counter `offset` of `seed`, plus, for a kernel in a captured CUDA
// graph, the value the device cell `base` holds when the kernel runs (Note [captured draws]).
struct PhiloxCounter {
  uint64_t seed = 0, offset = 0;
  const uint64_t* base = nullptr;  // device memory; null outside captured graphs (and always on the CPU)
};

// Note [captured draws]: a kernel captured in a CUDA graph (Note [cuda graphs] in core/cuda_graph.h) runs with the
// arguments of its capture at every replay, so a random draw's offset, which moves every step, is split in two:
// the stream's position at the start of the captured work, which the replaying code writes into a device cell
// before each replay, and the draw's place within the work, fixed at capture. A generator given that cell
// (set_device_base) hands out offsets relative to it, from its own offset, which the capture starts at 0; the
// kernel adds the cell's value (philox_counter_offset in core/philox.h). The counters are then exactly those of
// the same work run without capture. A draw under capture from a generator without a cell would repeat its numbers
// at every replay: draw() refuses it.
//
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
  // Reserves n counters for a kernel (Note [captured draws]); fails inside a graph capture without a device base.
  PhiloxCounter draw(uint64_t n) {
    const PhiloxCounter c = next();
    advance(n);
    return c;
  }
  // Where the next draw starts, checked as draw() checks it, without reserving anything.
  PhiloxCounter next() const;
  // From here the offsets this generator hands out count from the device cell `base` (nullptr: absolute again).
  void set_device_base(const uint64_t* base) { base_ = base; }
  // An independent stream for a named purpose (initialisation, sampling, ...), derived from this seed
  // (Note [one seed]).
  Generator fork(uint64_t stream_id) const;

 private:
  uint64_t seed_;
  uint64_t offset_;
  const uint64_t* base_ = nullptr;
};

Tensor uniform(const Shape& shape, Generator& gen, Device device = Device::cpu(), float lo = 0.f, float hi = 1.f);
Tensor normal(const Shape& shape, Generator& gen, Device device = Device::cpu(), float mean = 0.f, float std = 1.f);
// int32 values uniform in [0, n).
Tensor randint(const Shape& shape, int64_t n, Generator& gen, Device device = Device::cpu());

namespace cpu {
enum class Distribution { Uniform, Normal };
void fill_random(float* out, int64_t n, PhiloxCounter c, Distribution dist, float a, float b);
void fill_randint(int32_t* out, int64_t n, PhiloxCounter c, uint32_t high);
}  // namespace cpu
namespace cuda {
void fill_random(float* out, int64_t n, PhiloxCounter c, cpu::Distribution dist, float a, float b);
void fill_randint(int32_t* out, int64_t n, PhiloxCounter c, uint32_t high);
}  // namespace cuda

}  // namespace sieve

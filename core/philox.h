// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
// generator. The numbers depend only on (key, counter), so the CPU and every GPU thread produce the same
// stream for the same seed and offset, in any order and with any parallelism.
#pragma once

#include <cstdint>

#include <math.h>

#include "core/host_device.h"

namespace sieve {

struct Philox4 {
  uint32_t v[4];
};

SIEVE_HD uint32_t philox_mulhi(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// Ten rounds of Philox4x32 on counter (c0, c1, c2, c3) with key (k0, k1).
SIEVE_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = philox_mulhi(kM0, c0), lo0 = kM0 * c0;
    const uint32_t hi1 = philox_mulhi(kM1, c2), lo1 = kM1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0; k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// The i-th 32-bit random word of the stream (seed, offset): one Philox block per element, word 0, with the
// element's 64-bit counter offset + i. Simple and order-free; each element costs one block.
SIEVE_HD uint32_t philox_word(uint64_t seed, uint64_t offset, uint64_t i, uint32_t lane = 0) {
  const uint64_t c = offset + i;
  const Philox4 r = philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), lane, 0x5349u,
                               static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return r.v[0];
}

// The first counter of a kernel's draws: its offset, plus the device cell's value in a captured graph (Note
// [captured draws] in core/random.h). `base` is null on the CPU.
SIEVE_HD uint64_t philox_counter_offset(uint64_t offset, const uint64_t* base) {
  return base ? *base + offset : offset;
}

// a + b * c with the product and the sum each rounded, on both backends. nvcc contracts a multiply feeding an add
// into one fused multiply-add (one rounding) by default, the host compiler (no FMA in the x86-64 baseline) does not;
// without this the GPU's uniform(lo, hi) would differ from the CPU's in the last bit for most values.
SIEVE_HD float mul_add_unfused(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, __fmul_rn(b, c));
#else
  return a + b * c;
#endif
}

// Uniform in [0, 1) with 24 bits: exactly representable, identical on CPU and GPU.
SIEVE_HD float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return static_cast<float>(philox_word(seed, offset, i) >> 8) * (1.0f / 16777216.0f);
}

// Uniform integer in [0, n) by multiply-shift (bias below n / 2^32, negligible for data-set sizes).
SIEVE_HD uint32_t philox_below(uint64_t seed, uint64_t offset, uint64_t i, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(philox_word(seed, offset, i)) * n) >> 32);
}

// Standard normal by Box-Muller from words 0 and 1 of the element's block. The uniforms are identical on
// both backends; log/cos may differ in the last ulp between the host and device maths libraries.
SIEVE_HD float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const uint64_t c = offset + i;
  const Philox4 r = philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 1u, 0x5349u,
                               static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>(r.v[1] >> 8) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
}

}  // namespace sieve

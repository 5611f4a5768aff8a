// Float32 <-> bfloat16 conversion shared by the CPU and CUDA backends (Note [one meaning], Note [bf16 products]).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace sieve {

SIEVE_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

SIEVE_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// The bfloat16 nearest to f, ties to even, as its 16 bits (the high half of a float32). Adding 0x7fff plus the
// lowest kept bit to the bits and truncating rounds the 16 dropped bits to nearest even; a carry out of the
// mantissa moves to the next binade, and past the largest finite value to infinity, as IEEE rounding does.
// Subnormals round the same way (their bits are ordered like their values). NaN would carry into the exponent
// or become infinity, so it is kept apart: its sign and high payload bits are kept and the quiet bit is set, so
// that a NaN whose payload lies only in the dropped bits stays a NaN.
SIEVE_HD uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

SIEVE_HD float bf16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// f rounded to the nearest bfloat16, as a float32 (exact: every bfloat16 is a float32).
SIEVE_HD float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

}  // namespace sieve

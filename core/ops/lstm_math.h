// The CPU LSTM's activations (core/ops/lstm_cpu.cpp): the GPU runs cuDNN's.
//
// Note [lstm activations]: the cell update evaluates three sigmoids and two tanh per unit and step, and with std::exp
// and std::tanh, calls the compiler cannot vectorise, they and the scalar loop around them took most of a CPU LSTM
// step (b 32, H 128: the forward of 196 steps fell from 41-47 ms to 21-26 ms once vectorised). These are straight-line float arithmetic that the compiler turns into vector code: exp by
// Cody-Waite range reduction and Cephes' degree-5 polynomial, tanh by Cephes' odd polynomial below |x| = 0.625 and
// 1 - 2 / (exp(2|x|) + 1) above it (no cancellation on either side); branches are selects, and lstm_cpu.cpp is
// compiled with -fno-trapping-math (CMakeLists.txt) so that GCC may vectorise those. Within a few float ulps of std::exp,
// std::tanh and 1 / (1 + std::exp(-x)) over the whole float range (tests/core/test_lstm.cpp), which is far inside
// every LSTM test's tolerance; the CPU LSTM stays the reference the cuDNN path is tested against.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace sieve::cpu {

// e^x for x in [-87, 88] (clamped there: 2^n stays a normal float, no infinities).
inline float lstm_exp(float x) {
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  // n = x / ln 2 rounded to the nearest integer, by adding and subtracting 1.5 2^23 (no branch, no call).
  const float fn = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const auto n = static_cast<int32_t>(fn);
  float r = x - fn * 0.693359375f;  // x - n ln 2 in two parts (Cody-Waite)
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * (r * r) + r + 1.f;
  return e * std::bit_cast<float>(static_cast<uint32_t>(n + 127) << 23);  // times 2^n
}

inline float lstm_sigmoid(float x) { return 1.f / (1.f + lstm_exp(-x)); }

inline float lstm_tanh(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;  // Cephes tanhf, |x| < 0.625
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = 1.f - 2.f / (lstm_exp(2.f * a) + 1.f);
  return a < 0.625f ? small : std::copysign(big, x);
}

}  // namespace sieve::cpu

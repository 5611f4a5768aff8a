// bf16 products (Note [bf16 products] in core/ops/precision.h): the rounding function against known bit
// patterns, the CPU's bf16 matmul and conv2d against float32 products of pre-rounded inputs (exactly), their
// distance from float32, the GPU against the CPU, the precision switch and its scope over backward passes.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/ops.h"
#include "core/ops/conv2d.h"
#include "core/ops/linear.h"
#include "core/ops/precision.h"
#include "core/ops/precision_math.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceCase;
using testing::DeviceTest;
using testing::evaluate;
using testing::Evaluation;
using testing::GpuTest;
using testing::matches_cpu;
using testing::random_tensor;
using testing::Tolerance;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// ---------------------------------------------------------------------------------------------------------------
// The rounding function

TEST(Bf16Rounding, KnownBitPatterns) {
  struct Case {
    uint32_t in;
    uint16_t out;
    const char* what;
  };
  const Case cases[] = {
      {0x3f800000u, 0x3f80, "1.0 is exact"},
      {0x3f808000u, 0x3f80, "1 + 2^-8, halfway between 1 and 1 + 2^-7: ties to the even 1"},
      {0x3f818000u, 0x3f82, "1 + 3 * 2^-8, halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even 1 + 2^-6"},
      {0x3f808001u, 0x3f81, "just above halfway rounds up"},
      {0x3f807fffu, 0x3f80, "just below halfway rounds down"},
      {0x3fffffffu, 0x4000, "a carry out of the mantissa moves to the next binade"},
      {0xbf808000u, 0xbf80, "-(1 + 2^-8) ties to the even -1"},
      {0xbf818000u, 0xbf82, "-(1 + 3 * 2^-8) ties to the even -(1 + 2^-6)"},
      {0x00000000u, 0x0000, "+0"},
      {0x80000000u, 0x8000, "-0 keeps its sign"},
      {0x7f800000u, 0x7f80, "+inf"},
      {0xff800000u, 0xff80, "-inf"},
      {0x7f7f0000u, 0x7f7f, "the largest bf16 is exact"},
      {0x7f7f7fffu, 0x7f7f, "below the overflow threshold stays finite"},
      {0x7f7f8000u, 0x7f80, "the overflow threshold (a tie with odd 0x7f7f) rounds to infinity"},
      {0x7f7fffffu, 0x7f80, "the largest float rounds to infinity"},
      {0x00010000u, 0x0001, "the smallest bf16 subnormal is exact"},
      {0x00000001u, 0x0000, "the smallest float subnormal rounds to zero"},
      {0x00008000u, 0x0000, "half the smallest bf16 subnormal ties to the even zero"},
      {0x00008001u, 0x0001, "just above half the smallest bf16 subnormal rounds up"},
      {0x00018000u, 0x0002, "a subnormal tie rounds to even"},
      {0x007fffffu, 0x0080, "the largest float subnormal rounds up to the smallest normal"},
      {0x807fffffu, 0x8080, "and its negative to the negative smallest normal"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(float_to_bf16_bits(from_bits(c.in)), c.out) << std::hex << "0x" << c.in << ": " << c.what;
    EXPECT_EQ(to_bits(round_to_bf16(from_bits(c.in))), static_cast<uint32_t>(c.out) << 16) << c.what;
  }
}

TEST(Bf16Rounding, NanStaysNanWithItsSign) {
  const uint32_t nans[] = {0x7fc00000u, 0x7f800001u /* payload only in the dropped bits */, 0x7fffffffu,
                           0xffc00000u, 0xff800001u, 0x7fa00000u};
  for (uint32_t u : nans) {
    const uint16_t b = float_to_bf16_bits(from_bits(u));
    EXPECT_TRUE(std::isnan(bf16_bits_to_float(b))) << std::hex << "0x" << u << " -> 0x" << b;
    EXPECT_EQ(b >> 15, u >> 31) << std::hex << "0x" << u << ": sign";
    EXPECT_EQ(b & 0x0040u, 0x0040u) << std::hex << "0x" << u << ": quiet bit";
  }
}

TEST(Bf16Rounding, EveryBf16IsAFixedPoint) {
  for (uint32_t b = 0; b <= 0xffffu; ++b) {
    const float f = bf16_bits_to_float(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16_bits(f), b) << std::hex << "0x" << b;
  }
}

// On random floats over the whole finite range: the result is a neighbour of x that no other bf16 beats.
TEST(Bf16Rounding, RandomFloatsRoundToTheNearestBf16) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 200000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t u = static_cast<uint32_t>(state >> 32);
    const float x = from_bits(u);
    if (!std::isfinite(x)) continue;
    const uint16_t b = float_to_bf16_bits(x);
    if (std::isinf(bf16_bits_to_float(b))) {  // overflow: only at or beyond the threshold 0x7f7f8000
      ASSERT_GE(std::fabs(x), from_bits(0x7f7f8000u)) << std::hex << "0x" << u;
      continue;
    }
    const uint16_t below = static_cast<uint16_t>(u >> 16), above = static_cast<uint16_t>(below + 1);
    ASSERT_TRUE(b == below || b == above) << std::hex << "0x" << u << " -> 0x" << b;
    const double d = std::fabs(static_cast<double>(bf16_bits_to_float(b)) - x);
    for (uint16_t other : {below, above}) {
      const float o = bf16_bits_to_float(other);
      if (std::isinf(o) || other == b) continue;
      ASSERT_LE(d, std::fabs(static_cast<double>(o) - x)) << std::hex << "0x" << u;
    }
    if (std::fabs(x) >= std::numeric_limits<float>::min())  // normal: half an ulp is at most 2^-8 |x|
      ASSERT_LE(d, std::ldexp(std::fabs(static_cast<double>(x)), -8)) << std::hex << "0x" << u;
  }
}

::testing::AssertionResult same_bits(const Tensor& actual, const Tensor& expected) {
  const std::vector<float> a = actual.to(Device::cpu()).to_vector<float>();
  const std::vector<float> e = expected.to(Device::cpu()).to_vector<float>();
  if (a.size() != e.size()) return ::testing::AssertionFailure() << a.size() << " elements, expected " << e.size();
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (to_bits(a[i]) != to_bits(e[i]) && differ++ == 0) first = i;
  if (differ == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differ << " of " << a.size() << " differ; first at " << first << ": 0x"
                                       << std::hex << to_bits(a[first]) << ", expected 0x" << to_bits(e[first]);
}

// Random floats of every magnitude and sign plus the special values, as a float32 tensor on `device`.
Tensor awkward_floats(Device device) {
  std::vector<float> v;
  uint64_t state = 12345;
  for (int i = 0; i < 5000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v.push_back(from_bits(static_cast<uint32_t>(state >> 32)));
  }
  for (uint32_t u : {0x3f808000u, 0x3f818000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0x7f7fffffu,
                     0x00008000u, 0x00018000u, 0x007fffffu})
    v.push_back(from_bits(u));
  return Tensor::from_vector<float>(v, {static_cast<int64_t>(v.size())}, device);
}

class Bf16RoundingOnDevice : public DeviceTest {};

TEST_P(Bf16RoundingOnDevice, RoundToBf16MatchesTheScalarFunctionBitForBit) {
  const Tensor x = awkward_floats(device());
  const std::vector<float> host = x.to(Device::cpu()).to_vector<float>();
  std::vector<float> expected(host.size());
  for (size_t i = 0; i < host.size(); ++i) expected[i] = round_to_bf16(host[i]);
  EXPECT_TRUE(same_bits(round_to_bf16(x), Tensor::from_vector<float>(expected, x.shape())));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Bf16RoundingOnDevice);

class Bf16CastGpu : public GpuTest {};

// The casts the GPU products use: to bf16 bits and back gives the CPU's rounding, bit for bit.
TEST_F(Bf16CastGpu, CastToBf16AndBackMatchesTheCpuRounding) {
  const Tensor x = awkward_floats(Device::cuda(0));
  const int64_t n = x.numel();
  Tensor bits = Tensor::empty({(n + 1) / 2}, DType::F32, Device::cuda(0));  // storage for n bf16 values
  Tensor back = Tensor::empty({n}, DType::F32, Device::cuda(0));
  cuda::float_to_bf16(x.data<float>(), reinterpret_cast<uint16_t*>(bits.data<float>()), n);
  cuda::bf16_to_float(reinterpret_cast<const uint16_t*>(bits.data<float>()), back.data<float>(), n);
  EXPECT_TRUE(same_bits(back, round_to_bf16(x.to(Device::cpu()))));
}

// ---------------------------------------------------------------------------------------------------------------
// The switch

TEST(MatmulPrecision, Float32ByDefaultAndScoped) {
  EXPECT_EQ(matmul_precision(), MatmulPrecision::F32);
  {
    const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
    EXPECT_EQ(matmul_precision(), MatmulPrecision::BF16);
  }
  EXPECT_EQ(matmul_precision(), MatmulPrecision::F32);
  EXPECT_STREQ(precision_name(MatmulPrecision::BF16), "bf16");
  EXPECT_STREQ(precision_name(MatmulPrecision::F32), "f32");
  EXPECT_EQ(parse_matmul_precision("bf16"), MatmulPrecision::BF16);
  EXPECT_EQ(parse_matmul_precision("none"), MatmulPrecision::F32);
  EXPECT_EQ(parse_matmul_precision(""), MatmulPrecision::F32);
  EXPECT_TRUE(testing::throws_error([] { parse_matmul_precision("fp16"); },
                                    std::vector<std::string>{"fp16", "none", "bf16"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Matrix products

struct Product {
  bool ta, tb;
};
const Product kTransposes[] = {{false, false}, {false, true}, {true, false}, {true, true}};

// Operands of op(a) [m, k] and op(b) [k, n] stored as the flags say.
std::pair<Tensor, Tensor> operands(Product p, int64_t m, int64_t n, int64_t k, uint64_t seed, Device device) {
  Tensor a = p.ta ? random_tensor({k, m}, seed, device) : random_tensor({m, k}, seed, device);
  Tensor b = p.tb ? random_tensor({n, k}, seed + 1, device) : random_tensor({k, n}, seed + 1, device);
  return {a, b};
}

TEST(MatmulBf16, CpuEqualsTheFloat32ProductOfRoundedInputs) {
  for (const Product p : kTransposes) {
    auto [a, b] = operands(p, 23, 17, 41, 100, Device::cpu());
    const Tensor expected = matmul(round_to_bf16(a), round_to_bf16(b), p.ta, p.tb);
    const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
    EXPECT_TRUE(same_bits(matmul(a, b, p.ta, p.tb), expected)) << "ta " << p.ta << ", tb " << p.tb;
  }
}

// Each input moves by at most 2^-8 of itself, so each product a b by at most (2^-7 + 2^-16) |a b|: the bf16
// result lies within that fraction of sum_k |a||b| of the float32 one, plus float32 rounding (k 2^-24 of it).
TEST(MatmulBf16, DiffersFromFloat32ByTheInputRoundingAtMost) {
  const int64_t m = 31, n = 29, k = 257;
  const Tensor a = random_tensor({m, k}, 110), b = random_tensor({k, n}, 111);
  const std::vector<float> f32 = matmul(a, b).to_vector<float>();
  std::vector<float> bf16;
  {
    const MatmulPrecisionScope scope(MatmulPrecision::BF16);
    bf16 = matmul(a, b).to_vector<float>();
  }
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  double largest = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double bound = 0;
      for (int64_t l = 0; l < k; ++l) bound += std::fabs(av[i * k + l]) * std::fabs(bv[l * n + j]);
      const double d = std::fabs(static_cast<double>(bf16[i * n + j]) - f32[i * n + j]);
      ASSERT_LE(d, bound * (std::ldexp(1.0, -7) + std::ldexp(1.0, -16) + 2 * k * std::ldexp(1.0, -24)))
          << "element (" << i << ", " << j << ")";
      largest = std::max(largest, d / bound);
    }
  // And the rounding did happen: random inputs move sums by ~2^-9 sqrt(k) of a typical term.
  EXPECT_GT(largest, std::ldexp(1.0, -12));
}

// The GPU against the CPU, both in bf16: the inputs are rounded identically, so only the order of float32
// accumulation differs: each of k = 67 additions rounds by at most 2^-24 of a partial sum (|partial| < 6 here),
// ~3e-6 in all for a random walk, 2.4e-5 at worst. A GPU that did not round its inputs would be off by
// ~2^-9 sqrt(k) E|a b| ~ 4e-3.
class MatmulBf16OnDevice : public DeviceTest {};

TEST_P(MatmulBf16OnDevice, MatchesCpuForEveryTransposeCombination) {
  for (const Product p : kTransposes) {
    auto [a, b] = operands(p, 37, 29, 67, 120, Device::cpu());
    const Tensor expected = matmul(round_to_bf16(a), round_to_bf16(b), p.ta, p.tb);
    const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
    const Tensor got = matmul(a.to(device()), b.to(device()), p.ta, p.tb);
    EXPECT_TRUE(all_close(got, expected, 1e-4f, 1e-4f)) << "ta " << p.ta << ", tb " << p.tb;
  }
}

// linear(x, w, b) with x [n, in] and w [out, in] as a device case: x, w and b random from seeds seed, seed + 1 and
// seed + 2, the upstream gradient g from seed + 3, all in [-1, 1).
DeviceCase linear_case(int64_t n, int64_t in, int64_t out, uint64_t seed, Tolerance tolerance = {}) {
  return {.name = "linear, x [" + std::to_string(n) + ", " + std::to_string(in) + "], w [" + std::to_string(out) +
                  ", " + std::to_string(in) + "]",
          .inputs = {random_tensor({n, in}, seed), random_tensor({out, in}, seed + 1), random_tensor({out}, seed + 2)},
          .forward = [](const std::vector<Tensor>& t) { return std::vector<Tensor>{linear(t[0], t[1], t[2])}; },
          .upstream = {.seed = seed + 3, .lo = -1.f, .hi = 1.f},
          .tolerance = tolerance};
}

// Linear's forward and both backward products (x w^T, g w, g^T x) in bf16 on the device against the CPU.
TEST_P(MatmulBf16OnDevice, LinearForwardAndGradientsMatchCpu) {
  const DeviceCase c = linear_case(45, 70, 24, 130, {1e-4f, 1e-4f});
  const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
  EXPECT_TRUE(matches_cpu(c, device()));
  // And the CPU's gradients are the float32 products of rounded operands: dx = g w, dw = g^T x.
  const Evaluation ref = evaluate(c, Device::cpu());
  const Tensor &x = c.inputs[0], &w = c.inputs[1], &g = ref.upstream[0];
  EXPECT_TRUE(same_bits(ref.gradients[0], matmul(round_to_bf16(g), round_to_bf16(w))));
  EXPECT_TRUE(same_bits(ref.gradients[1], matmul(round_to_bf16(g), round_to_bf16(x), true, false)));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(MatmulBf16OnDevice);

// ‖a - b‖ / ‖b‖ over all elements.
double relative_distance(const Tensor& a, const Tensor& b) {
  const std::vector<float> av = a.to(Device::cpu()).to_vector<float>(), bv = b.to(Device::cpu()).to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num += (static_cast<double>(av[i]) - bv[i]) * (static_cast<double>(av[i]) - bv[i]);
    den += static_cast<double>(bv[i]) * bv[i];
  }
  return std::sqrt(num / den);
}

// With random inputs the relative error of each result is ~2^-8 (inputs) + 2^-9 (output rounding for
// convolutions), far below 2^-5, and never zero. bf16 and f32 are runs of one case (linear or conv2d with bias).
void expect_close_to_float32(const Evaluation& bf16, const Evaluation& f32) {
  for (auto [got, ref, what] : {std::tuple{bf16.outputs[0], f32.outputs[0], "y"},
                                std::tuple{bf16.gradients[0], f32.gradients[0], "dx"},
                                std::tuple{bf16.gradients[1], f32.gradients[1], "dw"}}) {
    const double d = relative_distance(got, ref);
    EXPECT_LT(d, std::ldexp(1.0, -5)) << what;
    EXPECT_GT(d, 0.0) << what;
  }
  EXPECT_TRUE(all_close(bf16.gradients[2], f32.gradients[2], 0.f, 0.f))
      << "the bias gradient is no product: float32 either way";
}

TEST(MatmulBf16, LinearGradientsAreCloseToFloat32) {
  const DeviceCase c = linear_case(64, 100, 32, 140);
  const Evaluation f32 = evaluate(c, Device::cpu());
  Evaluation bf16;
  {
    const MatmulPrecisionScope scope(MatmulPrecision::BF16);
    bf16 = evaluate(c, Device::cpu());
  }
  expect_close_to_float32(bf16, f32);
}

// The backward pass multiplies in the precision its forward pass ran with, whatever the switch says by then.
TEST(MatmulBf16, BackwardUsesThePrecisionOfItsForwardPass) {
  const Tensor a = random_tensor({12, 30}, 150), b = random_tensor({30, 9}, 151), g = random_tensor({12, 9}, 152);
  Tensor ad = a.clone();
  ad.set_requires_grad(true);
  Tensor c;
  {
    const MatmulPrecisionScope scope(MatmulPrecision::BF16);
    c = matmul(ad, b);
  }
  ASSERT_EQ(matmul_precision(), MatmulPrecision::F32);
  c.backward(g);
  EXPECT_TRUE(same_bits(ad.grad(), matmul(round_to_bf16(g), round_to_bf16(b), false, true)));
  EXPECT_GT(relative_distance(ad.grad(), matmul(g, b, false, true)), 0.0);
}

// ---------------------------------------------------------------------------------------------------------------
// Convolutions

Shape x_shape(const Conv2dShape& s) { return {s.n, s.c, s.h, s.w}; }
Shape w_shape(const Conv2dShape& s) { return {s.k, s.c, s.r, s.s}; }
Shape y_shape(const Conv2dShape& s) { return {s.n, s.k, s.p(), s.q()}; }
Conv2dParams params_of(const Conv2dShape& s) { return {s.stride_h, s.stride_w, s.pad_h, s.pad_w}; }

std::string describe(const Conv2dShape& s) {
  std::ostringstream o;
  o << "x [" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << "], w [" << s.k << ", " << s.c << ", " << s.r
    << ", " << s.s << "], stride " << s.stride_h << "x" << s.stride_w << ", padding " << s.pad_h << "x" << s.pad_w;
  return o.str();
}

// conv2d with bias as a device case: x, w and b random from seeds seed, seed + 1 and seed + 2, the upstream
// gradient dy from seed + 3, all in [-1, 1).
DeviceCase conv_case(const Conv2dShape& s, uint64_t seed, Tolerance tolerance = {}) {
  return {.name = describe(s),
          .inputs = {random_tensor(x_shape(s), seed), random_tensor(w_shape(s), seed + 1),
                     random_tensor({s.k}, seed + 2)},
          .forward = [p = params_of(s)](const std::vector<Tensor>& t) {
            return std::vector<Tensor>{conv2d(t[0], t[1], t[2], p)};
          },
          .upstream = {.seed = seed + 3, .lo = -1.f, .hi = 1.f},
          .tolerance = tolerance};
}

// n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w
const std::vector<Conv2dShape> kConvCases = {
    {4, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1},  // a Wide-ResNet block's 3x3 convolution (tensor-core friendly)
    {4, 16, 12, 12, 32, 3, 3, 2, 2, 1, 1},  // the downsampling 3x3 convolution
    {4, 16, 12, 12, 32, 1, 1, 2, 2, 0, 0},  // the 1x1 shortcut
    {3, 3, 11, 10, 5, 3, 2, 1, 2, 1, 0},    // odd channels and sizes: no tensor-core alignment
};

// The CPU in bf16 is exactly: float32 products of rounded inputs, each result rounded once, then the bias.
TEST(Conv2dBf16, CpuEqualsFloat32ProductsOfRoundedInputsRoundedOnce) {
  // bf16 products run on im2col (Note [cpu backends]); the float32 products of the reference must sum in the
  // same order for the bits to agree.
  const CpuBackendScope same_order(CpuBackend::Reference);
  uint64_t seed = 200;
  for (const Conv2dShape& s : kConvCases) {
    const DeviceCase c = conv_case(s, seed);
    seed += 4;
    Evaluation got;
    {
      const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
      got = evaluate(c, Device::cpu());
    }
    const Tensor &x = c.inputs[0], &w = c.inputs[1], &b = c.inputs[2], &dy = got.upstream[0];
    const Tensor rx = round_to_bf16(x), rw = round_to_bf16(w), rdy = round_to_bf16(dy);
    // y: round(conv(rx, rw)) + b, the bias added in float32 per output channel.
    std::vector<float> y = round_to_bf16(conv2d(rx, rw, Tensor(), params_of(s))).to_vector<float>();
    const std::vector<float> bv = b.to_vector<float>();
    const int64_t pq = s.p() * s.q();
    for (size_t i = 0; i < y.size(); ++i) y[i] += bv[(i / pq) % s.k];
    EXPECT_TRUE(same_bits(got.outputs[0], Tensor::from_vector<float>(y, y_shape(s)))) << "forward, " << describe(s);
    Tensor dx = Tensor::empty(x_shape(s)), dw = Tensor::empty(w_shape(s));
    cpu::conv2d_bwd_data(s, rdy.data<float>(), rw.data<float>(), dx.data<float>());
    cpu::conv2d_bwd_filter(s, rx.data<float>(), rdy.data<float>(), dw.data<float>());
    EXPECT_TRUE(same_bits(got.gradients[0], round_to_bf16(dx))) << "input gradient, " << describe(s);
    EXPECT_TRUE(same_bits(got.gradients[1], round_to_bf16(dw))) << "weight gradient, " << describe(s);
  }
}

TEST(Conv2dBf16, GradientsAreCloseToFloat32) {
  const DeviceCase c = conv_case(kConvCases[0], 220);
  const Evaluation f32 = evaluate(c, Device::cpu());
  Evaluation bf16;
  {
    const MatmulPrecisionScope scope(MatmulPrecision::BF16);
    bf16 = evaluate(c, Device::cpu());
  }
  expect_close_to_float32(bf16, f32);
}

// GPU and CPU both round each result once to bf16 after float32 sums that differ only in order (by ~1e-6 of
// sum |terms|). Where the two sums straddle a rounding boundary the results differ by one bf16 ulp (at most
// 2^-7 of the value); anywhere else they are equal. So: every element within one ulp, and differing elements
// rare (expected ~1e-6 / 2^-8 of them; at most 1% allowed). A GPU that did not round its inputs, or rounded
// partial sums, would differ in most elements.
::testing::AssertionResult within_one_bf16_ulp_mostly_equal(const std::vector<float>& g, const std::vector<float>& r,
                                                            float atol) {
  size_t differ = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::fabs(static_cast<double>(g[i]) - r[i]);
    if (d > atol + std::ldexp(std::fabs(static_cast<double>(r[i])), -7))
      return ::testing::AssertionFailure() << "element " << i << ": " << g[i] << ", expected " << r[i];
    differ += g[i] != r[i];
  }
  if (differ > g.size() / 100 + 1)
    return ::testing::AssertionFailure() << differ << " of " << g.size() << " elements differ";
  return ::testing::AssertionSuccess();
}
::testing::AssertionResult within_one_bf16_ulp_mostly_equal(const Tensor& got, const Tensor& ref) {
  return within_one_bf16_ulp_mostly_equal(got.to_vector<float>(), ref.to_vector<float>(), 0.f);
}

// y [n, k, p, q] less bias [k]: the bf16-rounded sum, up to float32 rounding of the addition and subtraction.
std::vector<float> without_bias(const Tensor& y, const Tensor& bias) {
  std::vector<float> v = y.to_vector<float>();
  const std::vector<float> b = bias.to_vector<float>();
  const int64_t pq = y.size(2) * y.size(3), k = y.size(1);
  for (size_t i = 0; i < v.size(); ++i) v[i] -= b[(static_cast<int64_t>(i) / pq) % k];
  return v;
}

// The forward and the input and weight gradients of one bf16 conv2d case with bias on two devices.
// y = round(sum) + bias, compared without the bias (which may cancel the sum); adding and subtracting it rounds by
// ~6e-8 of |y| + |bias| < 1e-5.
void expect_bf16_conv_matches(const Evaluation& got, const Evaluation& ref, const Tensor& bias,
                              const std::string& what) {
  EXPECT_TRUE(within_one_bf16_ulp_mostly_equal(without_bias(got.outputs[0], bias), without_bias(ref.outputs[0], bias),
                                               1e-5f))
      << "forward, " << what;
  EXPECT_TRUE(within_one_bf16_ulp_mostly_equal(got.gradients[0], ref.gradients[0])) << "input gradient, " << what;
  EXPECT_TRUE(within_one_bf16_ulp_mostly_equal(got.gradients[1], ref.gradients[1])) << "weight gradient, " << what;
}

class Conv2dBf16OnDevice : public DeviceTest {};

TEST_P(Conv2dBf16OnDevice, ForwardAndGradientsMatchCpu) {
  uint64_t seed = 240;
  const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
  for (const Conv2dShape& s : kConvCases) {
    const DeviceCase c = conv_case(s, seed);
    seed += 4;
    // Compared element by element below rather than by matches_cpu: a bf16 result may sit one ulp off the CPU's.
    const Evaluation ref = evaluate(c, Device::cpu()), got = evaluate(c, device());
    expect_bf16_conv_matches(got, ref, c.inputs[2], describe(s));
    // The bias gradient sums float32 dy on both devices (in double on the CPU).
    EXPECT_TRUE(all_close(got.gradients[2], ref.gradients[2], 1e-4f, 1e-5f)) << "bias gradient, " << describe(s);
    // Results come out of cuDNN in bf16: widened, they are bf16 values.
    EXPECT_TRUE(same_bits(got.gradients[0], round_to_bf16(got.gradients[0]))) << describe(s);
    EXPECT_TRUE(same_bits(got.gradients[1], round_to_bf16(got.gradients[1]))) << describe(s);
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Conv2dBf16OnDevice);

class Conv2dBf16Gpu : public GpuTest {};

// One shape in float32, then bf16, then float32 again: each call finds the cuDNN plan of its own precision
// (Note [conv plans]), so each matches the CPU in its precision.
TEST_F(Conv2dBf16Gpu, PrecisionIsPartOfThePlanKey) {
  const AllowTf32Scope exact(false);  // exact float32 on the GPU (Note [conv tf32])
  const DeviceCase c = conv_case({4, 8, 10, 10, 16, 3, 3, 1, 1, 1, 1}, 260);
  for (MatmulPrecision precision : {MatmulPrecision::F32, MatmulPrecision::BF16, MatmulPrecision::F32}) {
    const MatmulPrecisionScope scope(precision);
    const Evaluation ref = evaluate(c, Device::cpu()), got = evaluate(c, Device::cuda(0));
    // float32: sums of 72 (y), 144 (dx) and 400 (dw) terms below 1 in another order, ~1e-5, up to ~10x more
    // through Winograd or FFT transforms (as in Conv2dOnDevice); bf16 inputs would be off by ~1e-2.
    if (precision == MatmulPrecision::F32) {
      EXPECT_TRUE(all_close(got.outputs[0], ref.outputs[0], 1e-3f, 1e-4f)) << "float32 forward";
      EXPECT_TRUE(all_close(got.gradients[0], ref.gradients[0], 1e-3f, 1e-4f)) << "float32 input gradient";
      EXPECT_TRUE(all_close(got.gradients[1], ref.gradients[1], 1e-3f, 1e-4f)) << "float32 weight gradient";
    } else {
      expect_bf16_conv_matches(got, ref, c.inputs[2], "bf16");
    }
  }
}

}  // namespace
}  // namespace sieve

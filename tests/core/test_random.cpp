#include <cmath>
#include <numeric>

#include "core/philox.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

TEST(Philox, MatchesPublishedKnownAnswer) {
  // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
  const Philox4 zero = philox4x32(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const Philox4 pi = philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Random, UniformMomentsAndRange) {
  Generator gen(7);
  const auto v = uniform({200000}, gen).to_vector<float>();
  double mean = 0, var = 0;
  for (float x : v) {
    ASSERT_GE(x, 0.f);
    ASSERT_LT(x, 1.f);
    mean += x;
  }
  mean /= v.size();
  for (float x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  // Standard error of the mean: sqrt(1/12 / n) = 6.5e-4; allow 5 of them.
  EXPECT_NEAR(mean, 0.5, 3.3e-3);
  EXPECT_NEAR(var, 1.0 / 12.0, 1e-3);
}

TEST(Random, NormalMoments) {
  Generator gen(8);
  const auto v = normal({200000}, gen, Device::cpu(), 1.f, 2.f).to_vector<float>();
  double mean = 0, var = 0;
  for (float x : v) mean += x;
  mean /= v.size();
  for (float x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 1.0, 5 * 2.0 / std::sqrt(200000.0));
  EXPECT_NEAR(var, 4.0, 0.05);
}

TEST(Random, RandintCoversRangeUniformly) {
  Generator gen(9);
  const auto v = randint({100000}, 10, gen).to_vector<int32_t>();
  std::vector<int> counts(10, 0);
  for (int32_t x : v) {
    ASSERT_GE(x, 0);
    ASSERT_LT(x, 10);
    counts[x]++;
  }
  // Chi-square with 9 degrees of freedom; 27.88 is the 0.001 critical value.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - 10000.0) * (c - 10000.0) / 10000.0;
  EXPECT_LT(chi2, 27.88);
}

TEST(Random, SameSeedAndOffsetReproduce) {
  Generator a(5), b(5);
  EXPECT_EQ(uniform({10}, a).to_vector<float>(), uniform({10}, b).to_vector<float>());
  Generator c(5, 3);  // starts 3 counters in: the 4th value of the stream above
  Generator d(5);
  EXPECT_EQ(uniform({1}, c).to_vector<float>()[0], uniform({4}, d).to_vector<float>()[3]);
  EXPECT_NE(a.fork(1).seed(), a.fork(2).seed());
}

}  // namespace
}  // namespace sieve

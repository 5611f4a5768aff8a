// Pixel-sequence views: the seeded permutation is a permutation, reproducible, seed-dependent and uniform; the
// view holds pixel perm[t] of each image at step t on both devices, the GPU equals the CPU, bad input is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "data/sequence.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using ::sieve::testing::random_dataset;
using ::sieve::testing::throws_error;

bool is_permutation_of_range(const std::vector<int32_t>& p) {
  std::vector<int32_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != static_cast<int32_t>(i)) return false;
  return true;
}

TEST(PixelPermutation, IsAPermutationReproducibleFromItsSeed) {
  for (int64_t n : {0, 1, 2, 784, 1000}) {
    SCOPED_TRACE(n);
    const std::vector<int32_t> p = pixel_permutation(n, 7);
    ASSERT_EQ(static_cast<int64_t>(p.size()), n);
    EXPECT_TRUE(is_permutation_of_range(p));
    EXPECT_EQ(pixel_permutation(n, 7), p);
  }
  const std::vector<int32_t> a = pixel_permutation(784, 1), b = pixel_permutation(784, 2);
  EXPECT_NE(a, b);
  int fixed_points = 0;
  for (int32_t i = 0; i < 784; ++i) fixed_points += a[static_cast<size_t>(i)] == i;
  EXPECT_LT(fixed_points, 8);  // a uniform permutation has Poisson(1) fixed points: P(>= 8) < 1e-5
  EXPECT_THROW(pixel_permutation(-1, 0), Error);
}

// Over 12000 seeds every one of the 4! = 24 permutations of 4 elements appears about 500 times: Pearson's
// chi-squared with 23 degrees of freedom stays below 49.7 with probability 0.999.
TEST(PixelPermutation, IsUniformOverSeeds) {
  std::vector<int> counts(24, 0);
  const int runs = 12000;
  for (int s = 0; s < runs; ++s) {
    std::vector<int32_t> p = pixel_permutation(4, static_cast<uint64_t>(s) * 0x9E3779B97F4A7C15ull + 11);
    int rank = 0;  // the permutation's lexicographic rank (Lehmer code)
    for (int i = 0; i < 4; ++i) {
      int smaller = 0;
      for (int j = i + 1; j < 4; ++j) smaller += p[static_cast<size_t>(j)] < p[static_cast<size_t>(i)];
      rank = rank * (4 - i) + smaller;
    }
    counts[static_cast<size_t>(rank)]++;
  }
  const double expected = runs / 24.0;
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 49.7);
}

class PixelSequence : public ::sieve::testing::DeviceTest {};

TEST_P(PixelSequence, StepTOfExampleIHoldsPixelPermTOfImageI) {
  const Dataset d = random_dataset(9, 1, 5, 6, 3, device());
  const std::vector<int32_t> perm = pixel_permutation(30, 42);
  const Dataset s = pixel_sequence(d, perm);
  EXPECT_EQ(s.images.shape(), (Shape{9, 1, 30, 1}));
  EXPECT_EQ(s.device(), device());
  EXPECT_EQ(s.mean, d.mean);
  EXPECT_EQ(s.std, d.std);
  EXPECT_EQ(s.num_classes, d.num_classes);
  EXPECT_EQ(s.labels.to_vector<int32_t>(), d.labels.to_vector<int32_t>());
  const std::vector<uint8_t> in = d.images.to_vector<uint8_t>(), out = s.images.to_vector<uint8_t>();
  for (int64_t i = 0; i < 9; ++i)
    for (int64_t t = 0; t < 30; ++t) {
      // pixel perm[t] = y * W + x of image i
      const int64_t y = perm[static_cast<size_t>(t)] / 6, x = perm[static_cast<size_t>(t)] % 6;
      ASSERT_EQ(out[static_cast<size_t>(i * 30 + t)], in[static_cast<size_t>((i * 5 + y) * 6 + x)])
          << "example " << i << ", step " << t;
    }
}

TEST_P(PixelSequence, PlainOrderIsTheRowMajorPixels) {
  const Dataset d = random_dataset(4, 1, 7, 3, 5, device());
  const Dataset s = pixel_sequence(d);
  EXPECT_EQ(s.images.shape(), (Shape{4, 1, 21, 1}));
  EXPECT_EQ(s.images.to_vector<uint8_t>(), d.images.to_vector<uint8_t>());
  std::vector<int32_t> identity(21);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(pixel_sequence(d, identity).images.to_vector<uint8_t>(), d.images.to_vector<uint8_t>());
}

SIEVE_INSTANTIATE_DEVICE_TESTS(PixelSequence);

class PixelSequenceGpu : public ::sieve::testing::GpuTest {};

TEST_F(PixelSequenceGpu, MatchesCpu) {
  const Dataset d = random_dataset(300, 1, 28, 28, 8, Device::cpu());
  const std::vector<int32_t> perm = pixel_permutation(784, 9);
  const Dataset cpu = pixel_sequence(d, perm);
  const Dataset gpu = pixel_sequence(d.to(Device::cuda(0)), perm);
  EXPECT_EQ(gpu.device(), Device::cuda(0));
  EXPECT_EQ(gpu.images.to_vector<uint8_t>(), cpu.images.to_vector<uint8_t>());
}

TEST(PixelSequenceErrors, RefusesColourImagesAndBadOrders) {
  const Dataset colour = random_dataset(2, 3, 4, 4, 1, Device::cpu());
  EXPECT_TRUE(throws_error([&] { pixel_sequence(colour); }, {"single-channel", "uint8[2, 3, 4, 4]"}));
  const Dataset d = random_dataset(2, 1, 2, 2, 1, Device::cpu());
  EXPECT_TRUE(throws_error([&] { pixel_sequence(d, {0, 1, 2}); }, {"3 entries", "expected one per pixel, 4"}));
  EXPECT_TRUE(throws_error([&] { pixel_sequence(d, {0, 1, 1, 3}); }, {"not a permutation", "entry 2 is 1 again"}));
  EXPECT_TRUE(throws_error([&] { pixel_sequence(d, {0, 1, 2, 4}); }, {"not a permutation", "out of range"}));
}

TEST(SequenceViewSpec, ParsesPixelsAndNone) {
  EXPECT_EQ(parse_sequence_view(""), SequenceView::None);
  EXPECT_EQ(parse_sequence_view("none"), SequenceView::None);
  EXPECT_EQ(parse_sequence_view("pixels"), SequenceView::Pixels);
  EXPECT_TRUE(throws_error([] { parse_sequence_view("rows"); }, {"\"rows\"", "pixels"}));
}

}  // namespace
}  // namespace sieve

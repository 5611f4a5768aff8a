// gather_batch with random crop and flip: each output image is its source under exactly one of the (2 pad + 1)^2
// shifts times two mirrorings, found by brute force; the draws are spread as specified, reproducible from the
// seed, and the GPU matches the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "data/batch.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_dataset;

Tensor random_indices(int64_t b, int64_t n, uint32_t seed, Device device) {
  std::mt19937 rng(seed);
  std::vector<int32_t> out(static_cast<size_t>(b));
  for (auto& i : out) i = static_cast<int32_t>(rng() % static_cast<uint32_t>(n));
  return Tensor::from_vector(out, {b}, device);
}

struct Draw {
  int dx, dy;
  bool flip;
};

// Finds, for every batch row, the draws under which the row equals its source image: out[c, y, x] =
// norm_c(image[c, y + dy, x' + dx]), x' = W - 1 - x if flipped, byte 0 outside the image (Note [crop and flip]).
// norm_c is (v / 255 - mean) / std in double; the float32 path is within a few ulps of 4 (see test_batch.cpp),
// while two different bytes differ by at least 1 / 255 / std > 0.01, so 1e-5 separates a match from a miss.
class AugmentCheck {
 public:
  AugmentCheck(const Dataset& d, const Tensor& indices, const Tensor& out, int pad)
      : pixels_(d.images.to_vector<uint8_t>()), indices_(indices.to_vector<int32_t>()),
        out_(out.to_vector<float>()), c_(static_cast<int>(d.channels())), h_(static_cast<int>(d.height())),
        w_(static_cast<int>(d.width())), pad_(pad) {
    for (int ch = 0; ch < c_; ++ch)
      for (int v = 0; v < 256; ++v) table_.push_back(static_cast<float>((v / 255.0 - d.mean[ch]) / d.std[ch]));
  }

  std::vector<Draw> matches(size_t b) const {
    std::vector<Draw> found;
    for (int flip = 0; flip < 2; ++flip)
      for (int dy = -pad_; dy <= pad_; ++dy)
        for (int dx = -pad_; dx <= pad_; ++dx)
          if (equal(b, {dx, dy, flip == 1})) found.push_back({dx, dy, flip == 1});
    return found;
  }

  // The one draw that row b matches; a failure when none or several do.
  ::testing::AssertionResult unique_draw(size_t b, Draw& draw) const {
    const std::vector<Draw> found = matches(b);
    if (found.size() != 1)
      return ::testing::AssertionFailure() << "row " << b << " matches " << found.size() << " of the "
                                           << 2 * (2 * pad_ + 1) * (2 * pad_ + 1) << " crops and flips";
    draw = found[0];
    return ::testing::AssertionSuccess();
  }

 private:
  bool equal(size_t b, Draw t) const {
    const size_t sample = static_cast<size_t>(c_ * h_ * w_);
    const uint8_t* src = pixels_.data() + static_cast<size_t>(indices_[b]) * sample;
    const float* got = out_.data() + b * sample;
    for (int ch = 0; ch < c_; ++ch)
      for (int y = 0; y < h_; ++y)
        for (int x = 0; x < w_; ++x) {
          const int sy = y + t.dy, sx = (t.flip ? w_ - 1 - x : x) + t.dx;
          const bool inside = sy >= 0 && sy < h_ && sx >= 0 && sx < w_;
          const uint8_t v = inside ? src[(ch * h_ + sy) * w_ + sx] : 0;
          const float want = table_[static_cast<size_t>(ch * 256 + v)];
          if (std::fabs(got[(ch * h_ + y) * w_ + x] - want) > 1e-5f * (1.f + std::fabs(want))) return false;
        }
    return true;
  }

  std::vector<uint8_t> pixels_;
  std::vector<int32_t> indices_;
  std::vector<float> out_;
  std::vector<float> table_;  // (C, 256)
  int c_, h_, w_, pad_;
};

class AugmentGather : public ::sieve::testing::DeviceTest {};

TEST_P(AugmentGather, OffEqualsPlainGatherAndDrawsNothing) {
  const Dataset d = random_dataset(40, 3, 32, 32, 1, device());
  const Tensor idx = random_indices(64, 40, 2, device());
  Generator gen(7, 123);
  const Tensor out = gather_batch(d, idx, Augment{}, gen);
  EXPECT_EQ(out.to_vector<float>(), gather_batch(d, idx).to_vector<float>());
  EXPECT_EQ(gen.offset(), 123u);
}

TEST_P(AugmentGather, EveryImageIsItsSourceShiftedWithZeroFillAndMaybeMirrored) {
  const Dataset d = random_dataset(50, 3, 32, 32, 3, device());
  const Tensor idx = random_indices(256, 50, 4, device());
  Generator gen(11, 5);
  const Tensor out = gather_batch(d, idx, Augment{true, 4}, gen);
  EXPECT_EQ(out.shape(), (Shape{256, 3, 32, 32}));
  EXPECT_EQ(gen.offset(), 5u + 256u);  // one counter per row
  const AugmentCheck check(d, idx, out, 4);
  std::set<std::pair<int, int>> shifts;
  int flips = 0;
  for (size_t b = 0; b < 256; ++b) {
    Draw t{};
    ASSERT_TRUE(check.unique_draw(b, t));
    shifts.insert({t.dx, t.dy});
    flips += t.flip;
  }
  // 256 draws over 81 shifts cover about 77 of them; mirrored and plain rows both occur.
  EXPECT_GE(shifts.size(), 60u);
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 256);
}

TEST_P(AugmentGather, DrawsAreUniformAndFlipHalfTheTime) {
  // Many small images: 4000 rows of 1x8x8, shifts up to 4.
  constexpr int kRows = 4000, kPad = 4;
  const Dataset d = random_dataset(300, 1, 8, 8, 5, device());
  const Tensor idx = random_indices(kRows, 300, 6, device());
  Generator gen(13);
  const Tensor out = gather_batch(d, idx, Augment{true, kPad}, gen);
  const AugmentCheck check(d, idx, out, kPad);
  int flips = 0;
  std::vector<int> dx_count(2 * kPad + 1), dy_count(2 * kPad + 1);
  for (size_t b = 0; b < kRows; ++b) {
    Draw t{};
    ASSERT_TRUE(check.unique_draw(b, t));
    flips += t.flip;
    ++dx_count[static_cast<size_t>(t.dx + kPad)];
    ++dy_count[static_cast<size_t>(t.dy + kPad)];
  }
  // Binomial(4000, 1/2): sd sqrt(1000) ~ 31.6; 4.5 sd fails a correct generator with probability ~7e-6.
  EXPECT_NEAR(flips, kRows / 2, 4.5 * std::sqrt(kRows * 0.25)) << flips << " flips in " << kRows;
  // Each shift coordinate: Binomial(4000, 1/9), mean 444, sd sqrt(4000 * 1/9 * 8/9) ~ 19.9.
  const double mean = kRows / 9.0, sd = std::sqrt(kRows * (1.0 / 9) * (8.0 / 9));
  for (int k = 0; k <= 2 * kPad; ++k) {
    EXPECT_NEAR(dx_count[static_cast<size_t>(k)], mean, 4.5 * sd) << "dx = " << k - kPad;
    EXPECT_NEAR(dy_count[static_cast<size_t>(k)], mean, 4.5 * sd) << "dy = " << k - kPad;
  }
}

TEST_P(AugmentGather, SameSeedAndOffsetGiveTheSameBatch) {
  const Dataset d = random_dataset(30, 3, 32, 32, 7, device());
  const Tensor idx = random_indices(128, 30, 8, device());
  Generator a(21), b(21), other(22);
  const std::vector<float> first = gather_batch(d, idx, Augment{true}, a).to_vector<float>();
  EXPECT_EQ(gather_batch(d, idx, Augment{true}, b).to_vector<float>(), first);
  EXPECT_NE(gather_batch(d, idx, Augment{true}, other).to_vector<float>(), first);
  // The next call uses fresh counters, so it draws anew; (seed, offset) replays any earlier batch.
  EXPECT_NE(gather_batch(d, idx, Augment{true}, a).to_vector<float>(), first);
  Generator replay(21, 0);
  EXPECT_EQ(gather_batch(d, idx, Augment{true}, replay).to_vector<float>(), first);
}

TEST_P(AugmentGather, WorksOnIdxSizedImages) {
  const Dataset d = random_dataset(60, 1, 28, 28, 9, device());
  const Tensor idx = random_indices(200, 60, 10, device());
  Generator gen(31);
  const Tensor out = gather_batch(d, idx, Augment{true, 4}, gen);
  EXPECT_EQ(out.shape(), (Shape{200, 1, 28, 28}));
  const AugmentCheck check(d, idx, out, 4);
  int flips = 0;
  for (size_t b = 0; b < 200; ++b) {
    Draw t{};
    ASSERT_TRUE(check.unique_draw(b, t));
    flips += t.flip;
  }
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 200);
}

TEST_P(AugmentGather, ZeroPaddingOnlyFlips) {
  const Dataset d = random_dataset(20, 2, 9, 7, 11, device());
  const Tensor idx = random_indices(64, 20, 12, device());
  Generator gen(41);
  const Tensor out = gather_batch(d, idx, Augment{true, 0}, gen);
  const AugmentCheck check(d, idx, out, 0);
  int flips = 0;
  for (size_t b = 0; b < 64; ++b) {
    Draw t{};
    ASSERT_TRUE(check.unique_draw(b, t));
    flips += t.flip;
  }
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 64);
}

TEST_P(AugmentGather, RejectsPaddingAsLargeAsTheImage) {
  const Dataset d = random_dataset(5, 3, 32, 30, 13, device());
  const Tensor idx = random_indices(4, 5, 14, device());
  Generator gen(1, 9);
  EXPECT_TRUE(::sieve::testing::throws_error([&] { gather_batch(d, idx, Augment{true, 30}, gen); },
                                             {"crop padding 30", "32x30", "0 <= pad < 30"}));
  EXPECT_TRUE(::sieve::testing::throws_error([&] { gather_batch(d, idx, Augment{true, -1}, gen); },
                                             "crop padding -1"));
  EXPECT_EQ(gen.offset(), 9u);  // a rejected call reserves nothing
}

SIEVE_INSTANTIATE_DEVICE_TESTS(AugmentGather);

TEST(AugmentGatherChecks, CpuRejectedIndexReservesNothing) {
  const Dataset d = random_dataset(10, 1, 8, 8, 15, Device::cpu());
  Generator gen(1, 4);
  EXPECT_THROW(gather_batch(d, Tensor::from_vector(std::vector<int32_t>{3, 10}, {2}), Augment{true}, gen), Error);
  EXPECT_EQ(gen.offset(), 4u);
}

class AugmentGatherGpu : public ::sieve::testing::GpuTest {};

TEST_F(AugmentGatherGpu, MatchesCpu) {
  struct Case { int64_t n; int c, h, w; int64_t b; int pad; };
  // The last case has more rows than a grid's y dimension holds (65535): the kernel strides over them.
  for (const Case& k : {Case{500, 3, 32, 32, 512, 4}, Case{1000, 1, 28, 28, 256, 4}, Case{100, 1, 2, 3, 70000, 1}}) {
    const Dataset cpu = random_dataset(k.n, k.c, k.h, k.w, 21, Device::cpu());
    const Dataset gpu = cpu.to(Device::cuda(0));
    const Tensor idx = random_indices(k.b, k.n, 22, Device::cpu());
    Generator gen_cpu(51, 17), gen_gpu(51, 17);
    const Tensor want = gather_batch(cpu, idx, Augment{true, k.pad}, gen_cpu);
    const Tensor got = gather_batch(gpu, idx.to(Device::cuda(0)), Augment{true, k.pad}, gen_gpu);
    EXPECT_EQ(gen_gpu.offset(), gen_cpu.offset());
    // The same draws and the same IEEE operations (data/batch_math.h): equal up to fast-math, as in test_batch.
    EXPECT_TRUE(::sieve::testing::all_close(got.to_vector<float>(), want.to_vector<float>(), 1e-6f, 1e-6f))
        << "case " << k.n << "x" << k.c << "x" << k.h << "x" << k.w << ", batch " << k.b;
  }
}

}  // namespace
}  // namespace sieve

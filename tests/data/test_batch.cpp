// gather_batch and gather_labels: against a direct host computation on both devices, and the GPU against the CPU.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "data/batch.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_dataset;

// b indices in [0, n), with repeats, as a sampler with replacement draws them.
std::vector<int32_t> random_indices(int64_t b, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> out(static_cast<size_t>(b));
  for (auto& i : out) i = static_cast<int32_t>(rng() % static_cast<uint32_t>(n));
  return out;
}

// (x / 255 - mean) / std in double, straight from the definition.
std::vector<float> host_gather(const Dataset& d, const std::vector<int32_t>& idx) {
  const std::vector<uint8_t> pixels = d.images.to_vector<uint8_t>();
  const int64_t c = d.channels(), hw = d.height() * d.width();
  std::vector<float> out;
  for (int32_t row : idx)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t j = 0; j < hw; ++j) {
        const double x = pixels[static_cast<size_t>((row * c + ch) * hw + j)];
        out.push_back(static_cast<float>((x / 255.0 - d.mean[ch]) / d.std[ch]));
      }
  return out;
}

// Three float32 roundings of values of magnitude <= 4 (x/255, the subtraction, the division by std >= 0.25):
// a few float32 ulps of 4, well below 1e-6 absolute.
constexpr float kAtol = 1e-6f, kRtol = 1e-6f;

class BatchGather : public ::sieve::testing::DeviceTest {};

TEST_P(BatchGather, MatchesHostNormalisation) {
  struct Case { int64_t n; int c, h, w; int64_t b; };
  for (const Case& k : {Case{50, 1, 28, 28, 64}, Case{37, 3, 8, 9, 100}, Case{5, 4, 3, 2, 1}}) {
    const Dataset d = random_dataset(k.n, k.c, k.h, k.w, 7, device());
    const std::vector<int32_t> idx = random_indices(k.b, k.n, 8);
    const Tensor out = gather_batch(d, Tensor::from_vector(idx, {k.b}, device()));
    EXPECT_EQ(out.shape(), (Shape{k.b, k.c, k.h, k.w}));
    EXPECT_EQ(out.dtype(), DType::F32);
    EXPECT_EQ(out.device(), device());
    EXPECT_TRUE(::sieve::testing::all_close(out.to_vector<float>(), host_gather(d, idx), kAtol, kRtol))
        << "case " << k.n << "x" << k.c << "x" << k.h << "x" << k.w << ", batch " << k.b;
  }
}

TEST_P(BatchGather, GathersLabelsByIndex) {
  const Dataset d = random_dataset(40, 1, 4, 4, 9, device());
  const std::vector<int32_t> idx = random_indices(300, 40, 10);
  const std::vector<int32_t> labels = d.labels.to_vector<int32_t>();
  const Tensor out = gather_labels(d, Tensor::from_vector(idx, {300}, device()));
  EXPECT_EQ(out.shape(), (Shape{300}));
  EXPECT_EQ(out.device(), device());
  const std::vector<int32_t> got = out.to_vector<int32_t>();
  for (size_t i = 0; i < idx.size(); ++i) ASSERT_EQ(got[i], labels[static_cast<size_t>(idx[i])]) << "position " << i;
}

TEST_P(BatchGather, EmptyBatchGivesEmptyTensor) {
  const Dataset d = random_dataset(10, 3, 4, 4, 11, device());
  const Tensor out = gather_batch(d, Tensor::from_vector(std::vector<int32_t>{}, {0}, device()));
  EXPECT_EQ(out.shape(), (Shape{0, 3, 4, 4}));
}

TEST_P(BatchGather, SubsetKeepsRowsInOrder) {
  const Dataset d = random_dataset(30, 2, 3, 3, 12, device());
  const std::vector<int32_t> idx = {29, 0, 7, 7, 15};
  const Dataset s = d.subset(Tensor::from_vector(idx, {5}, device()));
  EXPECT_EQ(s.size(), 5);
  EXPECT_EQ(s.mean, d.mean);
  const std::vector<int32_t> all = {0, 1, 2, 3, 4};
  EXPECT_TRUE(::sieve::testing::all_close(gather_batch(s, Tensor::from_vector(all, {5}, device())).to_vector<float>(),
                                          host_gather(d, idx), kAtol, kRtol));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(BatchGather);

TEST(BatchGatherChecks, CpuRejectsOutOfRangeIndex) {
  const Dataset d = random_dataset(10, 1, 2, 2, 13, Device::cpu());
  try {
    gather_batch(d, Tensor::from_vector(std::vector<int32_t>{3, 10}, {2}));
    FAIL() << "no error for index 10 of 10 images";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index 10 at position 1 is out of range"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gather_batch(d, Tensor::from_vector(std::vector<int32_t>{-1}, {1})), Error);
}

TEST(BatchGatherChecks, RejectsBadArguments) {
  Dataset d = random_dataset(10, 1, 2, 2, 14, Device::cpu());
  EXPECT_THROW(gather_batch(d, Tensor::from_vector(std::vector<int64_t>{1}, {1})), Error);  // int64 indices
  EXPECT_THROW(gather_batch(d, Tensor::from_vector(std::vector<int32_t>{1, 2}, {1, 2})), Error);  // 2-d indices
  d.mean.push_back(0.5f);  // two means for one channel
  EXPECT_THROW(gather_batch(d, Tensor::from_vector(std::vector<int32_t>{1}, {1})), Error);
}

class BatchGatherGpu : public ::sieve::testing::GpuTest {};

TEST_F(BatchGatherGpu, MatchesCpu) {
  struct Case { int64_t n; int c, h, w; int64_t b; };
  // The last case has more batch rows than a grid's y dimension holds (65535): the kernel strides over them.
  for (const Case& k : {Case{1000, 1, 28, 28, 512}, Case{300, 3, 32, 32, 256}, Case{100, 1, 2, 3, 70000}}) {
    const Dataset cpu = random_dataset(k.n, k.c, k.h, k.w, 21, Device::cpu());
    const Dataset gpu = cpu.to(Device::cuda(0));
    const std::vector<int32_t> idx = random_indices(k.b, k.n, 22);
    const Tensor want = gather_batch(cpu, Tensor::from_vector(idx, {k.b}));
    const Tensor got = gather_batch(gpu, Tensor::from_vector(idx, {k.b}, Device::cuda(0)));
    // Both backends run the same IEEE operations in the same order (data/batch_math.h), so they agree exactly
    // unless fast-math is switched on; the host tolerance covers that case too.
    EXPECT_TRUE(::sieve::testing::all_close(got.to_vector<float>(), want.to_vector<float>(), kAtol, kRtol))
        << "case " << k.n << "x" << k.c << "x" << k.h << "x" << k.w << ", batch " << k.b;
  }
}

TEST_F(BatchGatherGpu, OutOfRangeIndexGivesZeros) {
  const Dataset d = random_dataset(10, 1, 2, 2, 23, Device::cuda(0));
  const Tensor out = gather_batch(d, Tensor::from_vector(std::vector<int32_t>{10, -1, 2}, {3}, Device::cuda(0)));
  const std::vector<float> got = out.to_vector<float>();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], 0.f) << "element " << i;
  EXPECT_TRUE(::sieve::testing::all_close(std::vector<float>(got.begin() + 8, got.end()), host_gather(d, {2}), kAtol,
                                          kRtol));
}

}  // namespace
}  // namespace sieve

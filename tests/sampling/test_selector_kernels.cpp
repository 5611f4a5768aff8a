// The per-example kernels of InfoBatch, selective backprop and the training loop's counts (sampling/selectors.h): each
// against a plain transcription of its definition on the CPU, statistically where it draws, and GPU against CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/philox.h"
#include "sampling/selectors.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_tensor;

std::vector<int32_t> permutation(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return random_permutation(n, gen, Device::cpu()).to_vector<int32_t>();
}

TEST(InfoBatchPrune, KeepsWellLearnedWithProbabilityKAtWeightOneOverK) {
  const int64_t n = 5000;
  const float keep_ratio = 0.3f;
  const Tensor scores = random_tensor({n}, 3, Device::cpu(), 0.f, 2.f);
  const std::vector<int32_t> order = permutation(n, 4);
  const std::vector<float> s = scores.to_vector<float>();
  const float mean = 1.f;
  Generator gen(9, 100);
  Tensor keep = Tensor::empty({n}, DType::U8), weights = Tensor::empty({n});
  infobatch_prune(scores, Tensor::from_vector(order, {n}), mean, keep_ratio, gen, keep, weights);
  EXPECT_EQ(gen.offset(), 100u + n);  // n counters used
  const std::vector<uint8_t> k = keep.to_vector<uint8_t>();
  const std::vector<float> w = weights.to_vector<float>();
  int64_t well_learned = 0, kept_well_learned = 0;
  for (int64_t p = 0; p < n; ++p) {
    const int32_t e = order[p];
    const float u = philox_uniform(9, 100, static_cast<uint64_t>(p));
    if (s[e] < mean) {
      ++well_learned;
      const bool expected = u < keep_ratio;
      ASSERT_EQ(k[p], expected ? 1 : 0) << p;
      ASSERT_EQ(w[e], expected ? 1.f / keep_ratio : 0.f) << e;
      kept_well_learned += expected;
    } else {
      ASSERT_EQ(k[p], 1) << p;
      ASSERT_EQ(w[e], 1.f) << e;
    }
  }
  // Binomial(well_learned, 0.3): within 5 standard deviations.
  const double sd = std::sqrt(well_learned * keep_ratio * (1 - keep_ratio));
  EXPECT_NEAR(kept_well_learned, well_learned * keep_ratio, 5 * sd);
}

TEST(SelectiveBackpropKeep, KeepRateIsThePercentileToTheBeta) {
  // History 0, 1/R, ..., (R-1)/R: a loss of q is at percentile about q.
  const int64_t r = 1000, n = 20000;
  std::vector<float> history(r);
  for (int64_t k = 0; k < r; ++k) history[k] = static_cast<float>(k) / r;
  const Tensor h = Tensor::from_vector(history, {r});
  for (float beta : {1.f, 2.f, 3.f}) {
    for (float q : {0.25f, 0.5f, 0.9f}) {
      const Tensor losses = Tensor::full({n}, q + 0.5f / r);
      Tensor keep = Tensor::empty({n}, DType::U8);
      Generator gen(5);
      selective_backprop_keep(losses, h, r, beta, gen, keep);
      const std::vector<uint8_t> k = keep.to_vector<uint8_t>();
      const double rate = std::count(k.begin(), k.end(), 1) / static_cast<double>(n);
      const double p = std::pow(std::round(q * r + 1) / r, beta);  // entries <= q + 0.5/R: round(qR) + 1
      EXPECT_NEAR(rate, p, 5 * std::sqrt(p * (1 - p) / n) + 1e-9) << "beta " << beta << ", q " << q;
    }
  }
  // No history yet, or a NaN loss: always kept.
  const Tensor losses = Tensor::from_vector<float>({0.f, NAN, 5.f}, {3});
  Tensor keep = Tensor::empty({3}, DType::U8);
  Generator gen(1);
  selective_backprop_keep(losses, h, 0, 1.f, gen, keep);
  EXPECT_EQ(keep.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1, 1}));
  selective_backprop_keep(losses, h, r, 1.f, gen, keep);
  EXPECT_EQ(keep.to_vector<uint8_t>()[1], 1);  // NaN as +inf: percentile 1
  EXPECT_EQ(keep.to_vector<uint8_t>()[2], 1);  // above every recorded loss
  EXPECT_TRUE(testing::throws_error([&] { selective_backprop_keep(losses, h, r + 1, 1.f, gen, keep); },
                                    "1001 recorded losses in a history of 1000"));
}

TEST(RecordRing, WrapsAround) {
  Tensor history = Tensor::zeros({5});
  record_ring(Tensor::from_vector<float>({1, 2, 3}, {3}), history, 3);
  EXPECT_EQ(history.to_vector<float>(), (std::vector<float>{3, 0, 0, 1, 2}));
  EXPECT_TRUE(testing::throws_error([&] { record_ring(Tensor::zeros({6}), history, 0); }, "exceed a ring of 5"));
}

TEST(CountIndices, CountsRepeats) {
  Tensor counts = Tensor::zeros({4}, DType::I32);
  count_indices(Tensor::from_vector<int32_t>({1, 3, 1, 1}, {4}), counts);
  EXPECT_EQ(counts.to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 0, 1}));
  EXPECT_TRUE(testing::throws_error([&] { count_indices(Tensor::from_vector<int32_t>({4}, {1}), counts); },
                                    "index 4 is outside [0, 4)"));
}

TEST(Compact, KeepsFlaggedValuesInOrder) {
  int64_t count = -1;
  const Tensor out = compact(Tensor::from_vector<int32_t>({7, 8, 9, 10}, {4}),
                             Tensor::from_vector<uint8_t>({0, 1, 0, 1}, {4}), &count);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{8, 10}));
}

class SelectorKernelsGpu : public testing::GpuTest {};

TEST_F(SelectorKernelsGpu, MatchCpu) {
  const Device gpu = Device::cuda(0), cpu = Device::cpu();
  const int64_t n = 70001;
  {  // infobatch_prune
    const Tensor scores = random_tensor({n}, 11, cpu, 0.f, 3.f);
    const Tensor order = Tensor::from_vector(permutation(n, 12), {n});
    Generator g_cpu(13, 7), g_gpu(13, 7);
    Tensor keep_c = Tensor::empty({n}, DType::U8), w_c = Tensor::empty({n});
    Tensor keep_g = Tensor::empty({n}, DType::U8, gpu), w_g = Tensor::empty({n}, DType::F32, gpu);
    infobatch_prune(scores, order, 1.4f, 0.5f, g_cpu, keep_c, w_c);
    infobatch_prune(scores.to(gpu), order.to(gpu), 1.4f, 0.5f, g_gpu, keep_g, w_g);
    EXPECT_EQ(keep_g.to(cpu).to_vector<uint8_t>(), keep_c.to_vector<uint8_t>());
    EXPECT_EQ(w_g.to(cpu).to_vector<float>(), w_c.to_vector<float>());
    int64_t count_c = 0, count_g = 0;
    const Tensor kept_c = compact(order, keep_c, &count_c), kept_g = compact(order.to(gpu), keep_g, &count_g);
    EXPECT_EQ(count_g, count_c);
    EXPECT_EQ(kept_g.to(cpu).to_vector<int32_t>(), kept_c.to_vector<int32_t>());
  }
  {  // selective_backprop_keep and record_ring
    const int64_t r = 1024, m = 4096;
    const Tensor history = random_tensor({r}, 21, cpu, 0.f, 2.f);
    const Tensor losses = random_tensor({m}, 22, cpu, 0.f, 2.f);
    for (float beta : {1.f, 2.5f}) {
      Generator g_cpu(23), g_gpu(23);
      Tensor keep_c = Tensor::empty({m}, DType::U8), keep_g = Tensor::empty({m}, DType::U8, gpu);
      selective_backprop_keep(losses, history, 700, beta, g_cpu, keep_c);
      selective_backprop_keep(losses.to(gpu), history.to(gpu), 700, beta, g_gpu, keep_g);
      EXPECT_EQ(keep_g.to(cpu).to_vector<uint8_t>(), keep_c.to_vector<uint8_t>()) << beta;
    }
    Tensor ring_c = history.clone(), ring_g = history.to(gpu).clone();
    record_ring(losses.rows(0, 1000), ring_c, 900);
    record_ring(losses.rows(0, 1000).to(gpu), ring_g, 900);
    EXPECT_EQ(ring_g.to(cpu).to_vector<float>(), ring_c.to_vector<float>());
  }
  {  // count_indices with many repeats
    Generator g(31);
    const Tensor idx = randint({200000}, 1000, g, cpu);
    Tensor c_cpu = Tensor::zeros({1000}, DType::I32), c_gpu = Tensor::zeros({1000}, DType::I32, gpu);
    count_indices(idx, c_cpu);
    count_indices(idx.to(gpu), c_gpu);
    EXPECT_EQ(c_gpu.to(cpu).to_vector<int32_t>(), c_cpu.to_vector<int32_t>());
  }
}

}  // namespace
}  // namespace sieve

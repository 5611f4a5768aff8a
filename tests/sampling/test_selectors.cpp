// The operations behind SRS, random-subset and online batch selection (sampling/selectors.h), on both devices, each
// against a host reference, and the CUDA kernels against their CPU twins at data-set sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include "sampling/selectors.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_tensor;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Draws of n indices in [0, count) with many repeats.
std::vector<int32_t> repeated_indices(int64_t n, int64_t count, uint64_t seed) {
  Generator gen(seed);
  return randint({n}, count, gen).to_vector<int32_t>();
}

class SelectorOps : public testing::DeviceTest {};

TEST_P(SelectorOps, MarkSeenCountsEachExampleOnce) {
  const int64_t count = 500;
  Tensor seen = Tensor::zeros({count}, DType::I32, device());
  Tensor distinct = Tensor::zeros({}, DType::I32, device());
  std::set<int32_t> expected;
  for (uint64_t round = 0; round < 3; ++round) {
    const std::vector<int32_t> idx = repeated_indices(300, count, 10 + round);  // about 45% repeats over 3 rounds
    expected.insert(idx.begin(), idx.end());
    mark_seen(Tensor::from_vector(idx, {300}, device()), seen, distinct);
    EXPECT_EQ(distinct.to_vector<int32_t>()[0], static_cast<int32_t>(expected.size())) << "round " << round;
  }
  const std::vector<int32_t> flags = seen.to_vector<int32_t>();
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(flags[i], expected.count(static_cast<int32_t>(i)) ? 1 : 0) << i;
}

TEST_P(SelectorOps, ScatterLossesKeepsTheLastOfRepeats) {
  const int64_t count = 200, n = 150;
  const std::vector<int32_t> idx = repeated_indices(n, count, 21);
  const std::vector<float> losses = random_tensor({n}, 22, Device::cpu(), 0.1f, 5.f).to_vector<float>();
  std::vector<float> expected = random_tensor({count}, 23, Device::cpu(), 0.1f, 5.f).to_vector<float>();
  Tensor table = Tensor::from_vector(expected, {count}, device());
  for (int64_t j = 0; j < n; ++j) expected[idx[j]] = losses[j];
  scatter_losses(Tensor::from_vector(idx, {n}, device()), Tensor::from_vector(losses, {n}, device()), table);
  EXPECT_EQ(table.to_vector<float>(), expected);
}

TEST_P(SelectorOps, RandomPermutationIsAUniformPermutation) {
  const int64_t n = 1000;
  Generator gen(31);
  const std::vector<int32_t> p = random_permutation(n, gen, device()).to_vector<int32_t>();
  EXPECT_EQ(gen.offset(), static_cast<uint64_t>(n));
  std::vector<int32_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(p, identity);
  EXPECT_NE(random_permutation(n, gen, device()).to_vector<int32_t>(), p);  // the next counters: another order
  // Where element 0 lands, over many permutations of 10: uniform over the 10 positions. Chi-square with 9 degrees of
  // freedom; 33.7 is its 1e-4 upper quantile.
  const int64_t k = 10, trials = 20000;
  std::vector<int64_t> counts(k, 0);
  for (int64_t t = 0; t < trials; ++t) {
    const std::vector<int32_t> q = random_permutation(k, gen, device()).to_vector<int32_t>();
    ++counts[std::find(q.begin(), q.end(), 0) - q.begin()];
  }
  double chi2 = 0.0;
  const double expected = static_cast<double>(trials) / k;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 33.7);
}

// Stable descending order of order[] by the rank key (NaN as +inf, -0 as +0), computed independently of sieve.
std::vector<int32_t> reference_ranking(const std::vector<float>& losses, const std::vector<int32_t>& order) {
  auto key = [&](int32_t e) {
    const float v = losses[e];
    return std::isnan(v) ? kInf : (v == 0.f ? 0.f : v);
  };
  std::vector<std::pair<float, int64_t>> rows;  // (key, previous position)
  for (size_t i = 0; i < order.size(); ++i) rows.emplace_back(key(order[i]), static_cast<int64_t>(i));
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<int32_t> out;
  for (const auto& r : rows) out.push_back(order[r.second]);
  return out;
}

// Losses quantised to 20 values (ties everywhere), with +inf (unseen), NaN (diverged), -0 and +0.
std::vector<float> tied_losses(int64_t n, uint64_t seed) {
  std::vector<float> v = random_tensor({n}, seed, Device::cpu(), 0.f, 20.f).to_vector<float>();
  for (float& x : v) x = std::floor(x) / 4.f;
  for (int64_t i = 0; i < n; i += 7) v[i] = kInf;
  for (int64_t i = 3; i < n; i += 53) v[i] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 5; i < n; i += 31) v[i] = -0.f;
  return v;
}

TEST_P(SelectorOps, RankByLossIsAStableDescendingSort) {
  const int64_t n = 3000;
  const std::vector<float> losses = tied_losses(n, 41);
  Generator gen(42);
  const Tensor order = random_permutation(n, gen, device());
  const Tensor ranked = rank_by_loss(Tensor::from_vector(losses, {n}, device()), order);
  EXPECT_EQ(ranked.to_vector<int32_t>(), reference_ranking(losses, order.to_vector<int32_t>()));
}

TEST_P(SelectorOps, RejectsBadInput) {
  Tensor seen = Tensor::zeros({10}, DType::I32, device()), distinct = Tensor::zeros({}, DType::I32, device());
  Tensor table = Tensor::zeros({10}, DType::F32, device());
  const Tensor idx = Tensor::from_vector<int32_t>({1, 2, 3}, {3}, device());
  EXPECT_TRUE(testing::throws_error([&] { mark_seen(idx, table, distinct); }, "mark_seen seen"));
  EXPECT_TRUE(testing::throws_error([&] { scatter_losses(idx, Tensor::zeros({2}, DType::F32, device()), table); },
                                    {"3 indices", "2 losses"}));
  Generator gen(1);
  EXPECT_TRUE(testing::throws_error([&] { random_permutation(0, gen, device()); }, "random_permutation"));
  EXPECT_TRUE(testing::throws_error([&] { rank_by_loss(table, idx); }, {"order of 3", "10 losses"}));
  if (device().is_cpu()) {
    const Tensor bad = Tensor::from_vector<int32_t>({1, 10}, {2});
    EXPECT_TRUE(testing::throws_error([&] { mark_seen(bad, seen, distinct); }, {"index 10", "[0, 10)"}));
    EXPECT_TRUE(testing::throws_error([&] { scatter_losses(bad, Tensor::ones({2}), table); }, "index 10"));
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SelectorOps);

// The CUDA kernels against their CPU twins at the sizes of real data sets (CUB's sorts span many tiles there).
class SelectorOpsGpu : public testing::GpuTest {};

TEST_F(SelectorOpsGpu, MarkSeenMatchesCpu) {
  const int64_t count = 60000, n = 40000;
  const Tensor idx = Tensor::from_vector(repeated_indices(n, count, 51), {n});
  Tensor seen_cpu = Tensor::zeros({count}, DType::I32), distinct_cpu = Tensor::zeros({}, DType::I32);
  Tensor seen_gpu = seen_cpu.to(Device::cuda(0)), distinct_gpu = distinct_cpu.to(Device::cuda(0));
  mark_seen(idx, seen_cpu, distinct_cpu);
  mark_seen(idx.to(Device::cuda(0)), seen_gpu, distinct_gpu);
  EXPECT_EQ(seen_gpu.to_vector<int32_t>(), seen_cpu.to_vector<int32_t>());
  EXPECT_EQ(distinct_gpu.to_vector<int32_t>(), distinct_cpu.to_vector<int32_t>());
}

TEST_F(SelectorOpsGpu, ScatterLossesMatchesCpu) {
  const int64_t count = 60000, n = 4096;
  const Tensor idx = Tensor::from_vector(repeated_indices(n, count / 20, 61), {n});  // many repeats
  const Tensor losses = random_tensor({n}, 62, Device::cpu(), 0.f, 4.f);
  Tensor cpu_table = random_tensor({count}, 63, Device::cpu(), 0.f, 4.f);
  Tensor gpu_table = cpu_table.to(Device::cuda(0));
  scatter_losses(idx, losses, cpu_table);
  scatter_losses(idx.to(Device::cuda(0)), losses.to(Device::cuda(0)), gpu_table);
  EXPECT_EQ(gpu_table.to_vector<float>(), cpu_table.to_vector<float>());
}

TEST_F(SelectorOpsGpu, RandomPermutationMatchesCpu) {
  for (int64_t n : {1, 1000, 60000}) {
    Generator a(71), b(71);
    EXPECT_EQ(random_permutation(n, b, Device::cuda(0)).to_vector<int32_t>(),
              random_permutation(n, a, Device::cpu()).to_vector<int32_t>())
        << "n = " << n;
  }
}

TEST_F(SelectorOpsGpu, RankByLossMatchesCpu) {
  const int64_t n = 60000;
  const Tensor losses = Tensor::from_vector(tied_losses(n, 81), {n});
  Generator gen(82);
  const Tensor order = random_permutation(n, gen, Device::cpu());
  EXPECT_EQ(rank_by_loss(losses.to(Device::cuda(0)), order.to(Device::cuda(0))).to_vector<int32_t>(),
            rank_by_loss(losses, order).to_vector<int32_t>());
}

}  // namespace
}  // namespace sieve

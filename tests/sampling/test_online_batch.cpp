// Online batch selection (Loshchilov & Hutter 2015): the rank probabilities, draws by rank, the loss table fed by
// observe(), unseen examples first, the periodic recomputation, checkpoints and option checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/ops/gather.h"
#include "core/ops/softmax.h"
#include "sampling/make_selector.h"
#include "sampling/online_batch.h"
#include "sampling/sample.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_tensor;

// Upper critical value of chi-square with k degrees of freedom at the upper-tail probability of the standard normal
// quantile z (Wilson-Hilferty), as in test_sample.cpp.
double chi_square_critical(int64_t k, double z) {
  const double a = 2.0 / (9.0 * static_cast<double>(k));
  const double c = 1.0 - a + z * std::sqrt(a);
  return static_cast<double>(k) * c * c * c;
}
constexpr double kZ1e4 = 3.719;

// p_i = s^(-i/(n-1)) / Z in double, written out independently of rank_probabilities.
std::vector<double> expected_probabilities(int64_t n, double s) {
  std::vector<double> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = std::pow(s, -static_cast<double>(i) / static_cast<double>(n - 1));
  const double z = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& v : p) v /= z;
  return p;
}

TEST(RankProbabilities, RatioIsTheSelectionPressureAndTheySumToOne) {
  for (double s : {1.0, 2.0, 100.0, 1e4}) {
    const int64_t n = 60000;
    const std::vector<float> p = rank_probabilities(n, s).to_vector<float>();
    ASSERT_EQ(p.size(), static_cast<size_t>(n));
    double total = 0.0;
    for (float v : p) total += v;
    EXPECT_NEAR(total, 1.0, 1e-4) << "s = " << s;  // n roundings to float of relative size 6e-8 each
    EXPECT_NEAR(p.front() / p.back(), s, 1e-5 * s) << "s = " << s;
    const std::vector<double> expected = expected_probabilities(n, s);
    for (int64_t i = 0; i < n; i += 997) EXPECT_NEAR(p[i], expected[i], 1e-6 * expected[i]) << i;
    for (int64_t i = 1; i < n; ++i) ASSERT_LE(p[i], p[i - 1]) << "not decreasing at " << i;
  }
  EXPECT_EQ(rank_probabilities(1, 100.0).to_vector<float>(), std::vector<float>{1.f});
  EXPECT_TRUE(testing::throws_error([] { rank_probabilities(10, 0.5); }, {"selection pressure", "0.5"}));
  EXPECT_TRUE(testing::throws_error([] { rank_probabilities(0, 10.0); }, "n = 0"));
}

TEST(RankPrefix, IsTheDoubleCumulativeSumRoundedOnce) {
  for (double s : {1.0, 100.0, 1e4}) {
    const int64_t n = 60000;
    const std::vector<float> prefix = rank_prefix(n, s).to_vector<float>();
    const std::vector<double> p = expected_probabilities(n, s);
    double running = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      running += p[i];
      // One rounding to float of a value <= 1 (half an ulp, 3e-8), plus the double sums' own error.
      ASSERT_NEAR(prefix[i], running, 1e-7) << "s = " << s << ", i = " << i;
      if (i > 0) ASSERT_LE(prefix[i - 1], prefix[i]) << "decreasing at " << i;
    }
    EXPECT_EQ(prefix.back(), 1.f) << "s = " << s;
  }
}

TEST(RankPrefix, DrawsAsTheScanningSamplerDoesWithThePrefixItComputes) {
  // With scores whose float prefix sums are exact (small integers), giving the prefix must change nothing.
  std::vector<float> scores(1000), prefix(1000);
  float running = 0.f;
  for (size_t i = 0; i < scores.size(); ++i) prefix[i] = running += scores[i] = static_cast<float>((i * 7) % 5);
  const Tensor s = Tensor::from_vector(scores, {1000}), p = Tensor::from_vector(prefix, {1000});
  Generator a(3), b(3);
  const WeightedSample scanned = sample_with_replacement(s, 4096, a), given = sample_with_replacement(s, p, 4096, b);
  EXPECT_EQ(given.positions.to_vector<int32_t>(), scanned.positions.to_vector<int32_t>());
  EXPECT_EQ(given.weights.to_vector<float>(), scanned.weights.to_vector<float>());
  EXPECT_TRUE(testing::throws_error([&] { sample_with_replacement(s, p.rows(0, 10), 1, b); }, "must match"));
}

ScoringContext context(int64_t n, Device device) {
  ScoringContext ctx;
  ctx.dataset_size = n;
  ctx.device = device;
  return ctx;
}

Tensor arange(int64_t n, Device device) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return Tensor::from_vector(v, {n}, device);
}

// Shows the selector the losses of `indices` as a training step would.
void show(OnlineBatchSelector& s, const std::vector<int32_t>& indices, const std::vector<float>& losses, Device d) {
  const int64_t n = static_cast<int64_t>(indices.size());
  const Selection sel{Tensor::from_vector(indices, {n}, d), Tensor::ones({n}, DType::F32, d)};
  s.observe(sel, Tensor(), Tensor(), Tensor::from_vector(losses, {n}, d));
}

double stat_value(const Selector& s, const std::string& key) {
  for (const auto& [k, v] : s.stats())
    if (k == key) return v;
  ADD_FAILURE() << "no stat " << key;
  return 0;
}

class OnlineBatch : public testing::DeviceTest {};

// Every example's loss known and distinct: the example of loss rank i must be drawn with probability p_i. Over 200k
// draws in 20 buckets of 50 ranks, chi-square against the exact bucket probabilities.
TEST_P(OnlineBatch, DrawFrequenciesByRankMatchTheRankProbabilities) {
  const int64_t n = 1000, b = 1000, steps = 200;
  const double s = 100.0;
  OnlineBatchOptions o;
  o.batch = b;
  o.selection_pressure = s;
  o.resort_every = 1;
  o.seed = 5;
  OnlineBatchSelector sel(o);
  const ScoringContext ctx = context(n, device());
  sel.select(ctx);
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  // Losses a random permutation of 1..n: the example with loss n - i has rank i.
  Generator g(6);
  const std::vector<int32_t> perm = randint({n}, 1 << 30, g).to_vector<int32_t>();
  std::vector<int32_t> order = all;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return perm[a] > perm[c]; });  // rank -> example
  std::vector<float> losses(n);
  std::vector<int64_t> rank_of(n);
  for (int64_t r = 0; r < n; ++r) {
    losses[order[r]] = static_cast<float>(n - r);
    rank_of[order[r]] = r;
  }
  show(sel, all, losses, device());
  const int64_t buckets = 20, width = n / buckets;
  std::vector<int64_t> counts(buckets, 0);
  for (int64_t t = 0; t < steps; ++t) {
    const Selection batch = sel.select(ctx);
    EXPECT_EQ(batch.weights.to_vector<float>(), std::vector<float>(b, 1.f));  // the paper does not re-weight
    for (int32_t e : batch.indices.to_vector<int32_t>()) ++counts[rank_of[e] / width];
  }
  EXPECT_EQ(sel.ranking().to_vector<int32_t>(), order);
  const std::vector<double> p = expected_probabilities(n, s);
  double chi2 = 0.0;
  for (int64_t k = 0; k < buckets; ++k) {
    const double expected = steps * b * std::accumulate(p.begin() + k * width, p.begin() + (k + 1) * width, 0.0);
    chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
  }
  EXPECT_LT(chi2, chi_square_critical(buckets - 1, kZ1e4));
  EXPECT_GT(counts.front(), 50 * counts.back());  // s = 100 between the ends; the end buckets differ by ~s^(0.95)
}

// The table holds the training pass's losses as observed (the last of a repeated example); the next re-sort ranks by
// them, and examples never observed (+inf) come first.
TEST_P(OnlineBatch, RanksByObservedLossesWithUnseenFirst) {
  const int64_t n = 100;
  OnlineBatchOptions o;
  o.batch = 10;
  o.resort_every = 1;
  o.seed = 8;
  OnlineBatchSelector sel(o);
  const ScoringContext ctx = context(n, device());
  sel.select(ctx);
  const std::vector<float> initial = sel.losses().to_vector<float>();
  for (float v : initial) ASSERT_TRUE(std::isinf(v) && v > 0) << "unseen examples start at +inf";
  // Examples 0..59 observed, 7 twice (the second value counts).
  std::vector<int32_t> idx(60);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> losses = random_tensor({60}, 9, Device::cpu(), 0.1f, 3.f).to_vector<float>();
  idx.push_back(7);
  losses.push_back(10.f);
  show(sel, idx, losses, device());
  const std::vector<float> table = sel.losses().to_vector<float>();
  for (int64_t i = 0; i < 60; ++i) EXPECT_EQ(table[i], i == 7 ? 10.f : losses[i]) << i;
  for (int64_t i = 60; i < n; ++i) EXPECT_TRUE(std::isinf(table[i])) << i;
  const std::vector<int32_t> before = sel.ranking().to_vector<int32_t>();
  sel.select(ctx);  // re-sorts first
  const std::vector<int32_t> ranking = sel.ranking().to_vector<int32_t>();
  const std::set<int32_t> top(ranking.begin(), ranking.begin() + 40);
  for (int32_t e = 60; e < n; ++e) EXPECT_TRUE(top.count(e)) << "unseen example " << e << " is not ranked first";
  EXPECT_EQ(ranking[40], 7);
  for (int64_t r = 41; r < n; ++r) EXPECT_GE(table[ranking[r - 1]], table[ranking[r]]) << "rank " << r;
  // Unseen examples keep their (random) order from before: a stable sort.
  std::vector<int32_t> unseen_before;
  for (int32_t e : before)
    if (e >= 60) unseen_before.push_back(e);
  EXPECT_EQ(std::vector<int32_t>(ranking.begin(), ranking.begin() + 40), unseen_before);
  // The 40 unseen examples hold ranks 0..39: a draw is unseen with probability sum_{i<40} p_i.
  const std::vector<double> p = expected_probabilities(n, o.selection_pressure);
  const double q = std::accumulate(p.begin(), p.begin() + 40, 0.0);
  int64_t unseen = 0, draws = 0;
  for (int t = 0; t < 500; ++t)
    for (int32_t e : sel.select(ctx).indices.to_vector<int32_t>()) unseen += e >= 60, ++draws;
  EXPECT_NEAR(static_cast<double>(unseen) / draws, q, 5.0 * std::sqrt(q * (1 - q) / draws));
}

// A fake model whose logits for example i are row i of a fixed table: every `recompute_every` epochs the selector
// replaces every loss by cross_entropy(logits_i, y_i), through ScoringContext::logits.
TEST_P(OnlineBatch, RecomputesEveryLossEachEpochsInterval) {
  const int64_t n = 2500, b = 700, classes = 5;  // ceil(2500 / 700) = 4 steps per epoch; 1024-example chunks
  const Tensor table = random_tensor({n, classes}, 10, device(), -3.f, 3.f);
  Tensor labels = testing::random_labels(n, classes, 11, device());
  int64_t scored = 0;
  ScoringContext ctx = context(n, device());
  ctx.labels = labels;
  ctx.logits = [&](const Tensor& idx) {
    scored += idx.numel();
    return index_select(table, idx);
  };
  OnlineBatchOptions o;
  o.batch = b;
  o.resort_every = 1000;
  o.recompute_every = 2;
  OnlineBatchSelector sel(o);
  for (int t = 0; t < 8; ++t) sel.select(ctx);  // two epochs: no recomputation yet
  EXPECT_EQ(scored, 0);
  sel.select(ctx);
  EXPECT_EQ(scored, n);
  EXPECT_TRUE(testing::all_close(sel.losses(), cross_entropy(table, labels), 0.f, 0.f));
  EXPECT_EQ(stat_value(sel, "resorts"), 2.0);  // step 0 and after the recomputation
  for (int t = 0; t < 7; ++t) sel.select(ctx);
  EXPECT_EQ(scored, n);
  sel.select(ctx);  // step 16: epoch 4
  EXPECT_EQ(scored, 2 * n);
}

TEST_P(OnlineBatch, ResumesIdentically) {
  SelectorOptions o;
  o.batch = 16;
  o.resort_every = 3;
  o.seed = 12;
  const int64_t n = 300;
  const ScoringContext ctx = context(n, device());
  auto run = [&](Selector& s, int steps, uint64_t seed) {  // select and observe deterministic losses
    std::vector<std::vector<int32_t>> out;
    for (int t = 0; t < steps; ++t) {
      const Selection sel = s.select(ctx);
      out.push_back(sel.indices.to_vector<int32_t>());
      s.observe(sel, Tensor(), Tensor(), random_tensor({o.batch}, seed + t, device(), 0.f, 2.f));
    }
    return out;
  };
  std::unique_ptr<Selector> straight = make_selector("online-batch", o), first = make_selector("online-batch", o);
  run(*straight, 10, 100);
  run(*first, 10, 100);
  testing::TempDir dir;
  CheckpointState state;
  first->save_state(state, "selector.");
  save_checkpoint(dir.file("ob.safetensors"), state);
  std::unique_ptr<Selector> resumed = make_selector("online-batch", o);
  resumed->load_state(load_checkpoint(dir.file("ob.safetensors")), "selector.");
  EXPECT_EQ(run(*resumed, 12, 200), run(*straight, 12, 200));
  EXPECT_EQ(resumed->stats(), straight->stats());
}

SIEVE_INSTANTIATE_DEVICE_TESTS(OnlineBatch);

TEST(OnlineBatchOptions, InvalidOptionsAreRejected) {
  using testing::throws_error;
  auto with = [](auto set) {
    SelectorOptions o;
    set(o);
    return [o] { make_selector("online-batch", o); };
  };
  EXPECT_TRUE(throws_error(with([](SelectorOptions& o) { o.selection_pressure = 0.5; }),
                           {"--selection-pressure", ">= 1", "0.5"}));
  EXPECT_TRUE(throws_error(with([](SelectorOptions& o) { o.selection_pressure = std::nan(""); }),
                           "--selection-pressure"));
  EXPECT_TRUE(throws_error(with([](SelectorOptions& o) { o.resort_every = 0; }), {"--resort-every", "found 0"}));
  EXPECT_TRUE(throws_error(with([](SelectorOptions& o) { o.recompute_every = -1; }), {"--recompute-every", "-1"}));
  EXPECT_TRUE(throws_error(with([](SelectorOptions& o) { o.batch = 0; }), "--batch"));
  OnlineBatchOptions o;
  o.recompute_every = 1;
  o.batch = 50;
  OnlineBatchSelector sel(o);
  const ScoringContext ctx = context(100, Device::cpu());  // no logits
  sel.select(ctx);
  sel.select(ctx);
  EXPECT_TRUE(throws_error([&] { sel.select(ctx); }, {"--recompute-every", "logits"}));
  EXPECT_TRUE(throws_error([] { make_selector("magic", SelectorOptions{}); }, {"online-batch", "srs", "random-subset"}));
}

class OnlineBatchGpu : public testing::GpuTest {};

// The same seed and losses on both devices: the same ranking and the same draws, since both search the same rank
// prefix (summed once on the host; a CUB scan of 60 000 floats would move a tenth of the draws, measured on an H100).
TEST_F(OnlineBatchGpu, MatchesCpu) {
  OnlineBatchOptions o;
  o.batch = 128;
  o.resort_every = 5;
  o.seed = 13;
  OnlineBatchSelector cpu(o), gpu(o);
  const int64_t n = 60000;
  for (int t = 0; t < 40; ++t) {
    const Selection a = cpu.select(context(n, Device::cpu()));
    const Selection b = gpu.select(context(n, Device::cuda(0)));
    ASSERT_EQ(b.indices.to_vector<int32_t>(), a.indices.to_vector<int32_t>()) << "step " << t;
    // Both observe the CPU's batch, so that their tables stay equal whatever the draws.
    const Tensor losses = random_tensor({o.batch}, 300 + t, Device::cpu(), 0.f, 2.f);
    cpu.observe(a, Tensor(), Tensor(), losses);
    gpu.observe({a.indices.to(Device::cuda(0)), b.weights}, Tensor(), Tensor(), losses.to(Device::cuda(0)));
    ASSERT_EQ(gpu.ranking().to_vector<int32_t>(), cpu.ranking().to_vector<int32_t>()) << "step " << t;
  }
  EXPECT_EQ(gpu.losses().to_vector<float>(), cpu.losses().to_vector<float>());
}

}  // namespace
}  // namespace sieve

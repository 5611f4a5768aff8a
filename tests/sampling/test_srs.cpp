// Soft Random Sampling and the random-subset baseline: epochs of round(r N) examples served in batches, the coverage
// the SRS paper predicts, checkpoints, and option checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "core/checkpoint.h"
#include "sampling/make_selector.h"
#include "sampling/random_subset.h"
#include "sampling/srs.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

ScoringContext context(int64_t n, Device device) {
  ScoringContext ctx;
  ctx.dataset_size = n;
  ctx.device = device;
  return ctx;  // no logits: these selectors never score
}

// The indices of the next `steps` batches, one vector per batch.
std::vector<std::vector<int32_t>> serve(Selector& s, const ScoringContext& ctx, int64_t steps) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < steps; ++i) {
    const Selection sel = s.select(ctx);
    EXPECT_EQ(sel.indices.device(), ctx.device);
    EXPECT_EQ(sel.weights.to_vector<float>(), std::vector<float>(sel.weights.numel(), 1.f));
    out.push_back(sel.indices.to_vector<int32_t>());
  }
  return out;
}

using testing::stat;

class SoftRandomSampling : public testing::DeviceTest {};

// After k epochs of m = r N draws with replacement an example is unseen with probability q = (1 - 1/N)^(k m)
// ≈ e^(-r k) (the paper's coverage 1 - e^(-r k)). The unseen count has at most the binomial variance N q (1 - q)
// (the indicators are negatively correlated); 4 standard deviations plus the gap between q and e^(-r k).
TEST_P(SoftRandomSampling, CoverageFollowsOneMinusExpMinusRK) {
  const int64_t n = 20000, b = 500;
  const double r = 0.3;
  SoftRandomSampler srs(b, r, 7);
  const ScoringContext ctx = context(n, device());
  const int64_t m = srs.epoch_size(n);
  ASSERT_EQ(m, 6000);
  for (int64_t k = 1; k <= 6; ++k) {
    serve(srs, ctx, m / b);
    ASSERT_EQ(srs.epochs(), k);
    const double q = std::pow(1.0 - 1.0 / n, static_cast<double>(k * m));
    const double predicted = 1.0 - std::exp(-r * static_cast<double>(k));
    const double tolerance = 4.0 * std::sqrt(q * (1.0 - q) / n) + std::abs(q - std::exp(-r * k));
    EXPECT_NEAR(stat(srs, "coverage"), predicted, tolerance) << "after " << k << " epochs";
    EXPECT_EQ(stat(srs, "epoch"), static_cast<double>(k));
    EXPECT_EQ(srs.coverage().distinct(), static_cast<int64_t>(std::llround(stat(srs, "coverage") * n)));
  }
}

// Distinct examples among d uniform draws with replacement from N: U = N - distinct examples are never drawn, with
// E[U] = N q1 and Var(U) = N q1 + N (N - 1) q2 - (N q1)^2, q1 = (1 - 1/N)^d, q2 = (1 - 2/N)^d (exact: the indicators
// of "example i never drawn" have pairwise joint probability q2).
struct DistinctMoments {
  double mean, sd;
};
DistinctMoments distinct_moments(int64_t n, int64_t draws) {
  const double nn = static_cast<double>(n), d = static_cast<double>(draws);
  const double q1 = std::pow(1.0 - 1.0 / nn, d), q2 = std::pow(1.0 - 2.0 / nn, d);
  const double var = nn * q1 + nn * (nn - 1.0) * q2 - nn * nn * q1 * q1;
  return {nn * (1.0 - q1), std::sqrt(std::max(var, 0.0))};
}

// SRS's with-replacement statistics against their exact expectations, three seeds: per epoch of m draws the distinct
// examples (and so the duplicates, m - distinct) and, after k epochs, the coverage N (1 - (1 - 1/N)^(k m)). Each count
// lies within 4.5 standard deviations (a two-sided normal tail of 7e-6 per comparison, about 50 comparisons; coverage
// is compared while at least 30 examples are expected unseen, where the normal approximation holds); the mean over 10
// epochs of the per-epoch duplicates within 4.5 standard deviations of that mean (the epochs are independent).
TEST_P(SoftRandomSampling, DuplicatesAndCoverageMatchTheirExpectation) {
  const int64_t n = 5000, b = 250;
  const double r = 0.8;  // m = 4000 draws per epoch: about 1 250 duplicates
  for (uint64_t seed : {3u, 4u, 5u}) {
    SoftRandomSampler srs(b, r, seed);
    const ScoringContext ctx = context(n, device());
    const int64_t m = srs.epoch_size(n);
    ASSERT_EQ(m, 4000);
    const DistinctMoments epoch = distinct_moments(n, m);
    double duplicates_sum = 0.0;
    const int epochs = 10;
    for (int64_t k = 1; k <= epochs; ++k) {
      std::vector<int32_t> served;
      for (const auto& batch : serve(srs, ctx, m / b)) served.insert(served.end(), batch.begin(), batch.end());
      ASSERT_EQ(static_cast<int64_t>(served.size()), m);
      const auto distinct = static_cast<double>(std::set<int32_t>(served.begin(), served.end()).size());
      const double duplicates = static_cast<double>(m) - distinct;
      EXPECT_NEAR(duplicates, static_cast<double>(m) - epoch.mean, 4.5 * epoch.sd) << "seed " << seed << ", epoch " << k;
      duplicates_sum += duplicates;
      const DistinctMoments seen = distinct_moments(n, k * m);
      if (n - seen.mean >= 30.0)  // k <= 6
        EXPECT_NEAR(stat(srs, "coverage") * n, seen.mean, 4.5 * seen.sd) << "seed " << seed << ", after " << k;
    }
    EXPECT_NEAR(duplicates_sum / epochs, static_cast<double>(m) - epoch.mean, 4.5 * epoch.sd / std::sqrt(epochs))
        << "seed " << seed;
  }
  // The scale of the tolerances: about 1 246 duplicates an epoch with a standard deviation near 21, and 41 examples
  // expected unseen after 6 epochs (24 000 draws).
  const DistinctMoments one = distinct_moments(n, 4000), six = distinct_moments(n, 24000);
  EXPECT_NEAR(4000.0 - one.mean, 1246.5, 0.5);
  EXPECT_NEAR(one.sd, 20.7, 0.1);
  EXPECT_NEAR(n - six.mean, 41.1, 0.5);
}

// Each epoch is one randint of m = round(r N) from the selector's generator, served in ceil(m / b) batches with a
// short last one (Note [epoch subset batches]); the distinct examples seen are exactly those served.
TEST_P(SoftRandomSampling, EachEpochServesExactlyMDrawsWithReplacement) {
  const int64_t n = 1000, b = 64;
  const double r = 0.25;  // m = 250 = 3 * 64 + 58
  SoftRandomSampler srs(b, r, 11);
  const ScoringContext ctx = context(n, device());
  Generator reference(11);
  std::set<int32_t> seen;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto batches = serve(srs, ctx, 4);
    std::vector<int32_t> served;
    for (size_t i = 0; i < batches.size(); ++i) {
      EXPECT_EQ(batches[i].size(), i < 3 ? 64u : 58u) << "epoch " << epoch << ", step " << i;
      served.insert(served.end(), batches[i].begin(), batches[i].end());
    }
    EXPECT_EQ(served, randint({250}, n, reference).to_vector<int32_t>()) << "epoch " << epoch;
    seen.insert(served.begin(), served.end());
    EXPECT_EQ(srs.coverage().distinct(), static_cast<int64_t>(seen.size()));
  }
  // r > 1 is allowed with replacement: an epoch of 2.5 N draws.
  SoftRandomSampler large(b, 2.5, 12);
  EXPECT_EQ(large.epoch_size(n), 2500);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SoftRandomSampling);

class RandomSubset : public testing::DeviceTest {};

TEST_P(RandomSubset, ServesEachExampleOfAFreshSubsetOncePerEpoch) {
  const int64_t n = 2000, b = 96;
  const double r = 0.4;  // m = 800 = 8 * 96 + 32
  RandomSubsetSelector sel(b, r, 13);
  const ScoringContext ctx = context(n, device());
  std::vector<std::set<int32_t>> subsets;
  std::set<int32_t> seen;
  for (int epoch = 0; epoch < 4; ++epoch) {
    std::vector<int32_t> served;
    for (const auto& batch : serve(sel, ctx, 9)) served.insert(served.end(), batch.begin(), batch.end());
    ASSERT_EQ(served.size(), 800u);
    const std::set<int32_t> subset(served.begin(), served.end());
    EXPECT_EQ(subset.size(), 800u) << "an example repeats within epoch " << epoch;
    EXPECT_GE(*subset.begin(), 0);
    EXPECT_LT(*subset.rbegin(), n);
    for (const auto& earlier : subsets) EXPECT_NE(earlier, subset) << "epoch " << epoch << " repeats a subset";
    subsets.push_back(subset);
    seen.insert(subset.begin(), subset.end());
    EXPECT_EQ(sel.coverage().distinct(), static_cast<int64_t>(seen.size()));
  }
  // Independent subsets of r N: an example is unseen after k epochs with probability (1 - r)^k, and two epochs share
  // r^2 N examples on average (hypergeometric: sd below sqrt(r^2 N)); 5 standard deviations.
  std::vector<int32_t> common;
  std::set_intersection(subsets[0].begin(), subsets[0].end(), subsets[1].begin(), subsets[1].end(),
                        std::back_inserter(common));
  EXPECT_NEAR(static_cast<double>(common.size()), r * r * n, 5.0 * std::sqrt(r * r * n));
  const double q = std::pow(1.0 - r, 4.0);
  EXPECT_NEAR(sel.coverage().fraction(), 1.0 - q, 5.0 * std::sqrt(q * (1.0 - q) / n));
}

TEST_P(RandomSubset, FullRatioIsAPermutationPerEpoch) {
  const int64_t n = 300;
  RandomSubsetSelector sel(128, 1.0, 14);
  std::vector<int32_t> served;
  for (const auto& batch : serve(sel, context(n, device()), 3)) served.insert(served.end(), batch.begin(), batch.end());
  std::sort(served.begin(), served.end());
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(served, all);
  EXPECT_EQ(sel.coverage().fraction(), 1.0);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(RandomSubset);

// Saved mid-epoch through a checkpoint file and loaded into a fresh selector, the run continues with the same batches.
void expect_resumes_identically(const std::string& name, const SelectorOptions& o, Device device, int64_t n,
                                int64_t before, int64_t after) {
  const ScoringContext ctx = context(n, device);
  std::unique_ptr<Selector> straight = make_selector(name, o), first = make_selector(name, o);
  serve(*straight, ctx, before);
  serve(*first, ctx, before);
  testing::TempDir dir;
  CheckpointState state;
  first->save_state(state, "selector.");
  save_checkpoint(dir.file("s.safetensors"), state);
  serve(*first, ctx, 3);  // moves on after saving: the saved state must not follow it
  std::unique_ptr<Selector> resumed = make_selector(name, o);
  resumed->load_state(load_checkpoint(dir.file("s.safetensors")), "selector.");
  EXPECT_EQ(serve(*resumed, ctx, after), serve(*straight, ctx, after)) << name;
  EXPECT_EQ(resumed->stats(), straight->stats()) << name;
}

class EpochSubsetCheckpoint : public testing::DeviceTest {};

TEST_P(EpochSubsetCheckpoint, ResumesIdentically) {
  SelectorOptions o;
  o.batch = 32;
  o.subset_ratio = 0.3;  // m = 150: 5 steps, the last short
  o.seed = 17;
  expect_resumes_identically("srs", o, device(), 500, 7, 12);
  expect_resumes_identically("random-subset", o, device(), 500, 7, 12);
  expect_resumes_identically("srs", o, device(), 500, 0, 3);  // before the first epoch
}

SIEVE_INSTANTIATE_DEVICE_TESTS(EpochSubsetCheckpoint);

TEST(EpochSubsetOptions, InvalidRatiosAreRejected) {
  using testing::throws_error;
  EXPECT_TRUE(throws_error([] { SoftRandomSampler(32, 0.0, 1); }, {"srs", "--srs-ratio", "(0, inf)", "0"}));
  EXPECT_TRUE(throws_error([] { SoftRandomSampler(32, -0.5, 1); }, {"--srs-ratio", "-0.5"}));
  EXPECT_TRUE(throws_error([] { SoftRandomSampler(32, std::nan(""), 1); }, "--srs-ratio"));
  EXPECT_TRUE(throws_error([] { RandomSubsetSelector(32, 1.5, 1); }, {"random-subset", "(0, 1]", "1.5"}));
  EXPECT_TRUE(throws_error([] { SoftRandomSampler(0, 0.5, 1); }, {"--batch", "0"}));
  SoftRandomSampler tiny(32, 0.001, 1);
  EXPECT_TRUE(throws_error([&] { tiny.select(context(100, Device::cpu())); }, {"round(r N) = 0", "N = 100"}));
  EXPECT_TRUE(throws_error([&] { tiny.select(context(0, Device::cpu())); }, "empty"));
  SelectorOptions o;
  o.subset_ratio = 2.0;
  EXPECT_TRUE(throws_error([&] { make_selector("random-subset", o); }, "(0, 1]"));
  EXPECT_EQ(make_selector("srs", o)->name(), "srs");
}

class EpochSubsetGpu : public testing::GpuTest {};

// The same seed gives the same batches on both devices (Philox randint and the permutation's sort agree).
TEST_F(EpochSubsetGpu, MatchesCpu) {
  for (const char* name : {"srs", "random-subset"}) {
    SelectorOptions o;
    o.batch = 100;
    o.subset_ratio = 0.5;
    o.seed = 19;
    std::unique_ptr<Selector> cpu = make_selector(name, o), gpu = make_selector(name, o);
    EXPECT_EQ(serve(*gpu, context(50000, Device::cuda(0)), 300), serve(*cpu, context(50000, Device::cpu()), 300))
        << name;
    EXPECT_EQ(gpu->stats(), cpu->stats()) << name;
  }
}

}  // namespace
}  // namespace sieve

// The bound-tightness diagnostic (sampling/score_diagnostics.h): rank correlations by hand, the variance of a
// sampled gradient against a Monte Carlo estimate, and the optimality of sampling by the exact norm.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/ops.h"
#include "sampling/score_diagnostics.h"
#include "sampling/scores.h"
#include "tests/core/softmax_classifier.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::SoftmaxClassifier;

TEST(ScoreDiagnosticsRanks, AverageTiedRanks) {
  EXPECT_EQ(average_ranks({3, 1, 3, 2, 3}), (std::vector<double>{4, 1, 4, 2, 4}));
  EXPECT_EQ(average_ranks({0.5, -2, 7}), (std::vector<double>{2, 1, 3}));
  EXPECT_EQ(average_ranks({1, 1}), (std::vector<double>{1.5, 1.5}));
  EXPECT_TRUE(average_ranks({}).empty());
  EXPECT_TRUE(testing::throws_error([] { average_ranks({1, NAN}); }, "value 1 is NaN"));
}

// Hand-computed: a = 1..5 has ranks 1..5; b = [5, 6, 7, 8, 7] has ranks [1, 2, 3.5, 5, 3.5]. Deviations from the mean
// rank 3: [-2, -1, 0, 1, 2] and [-2, -1, 0.5, 2, 0.5], so ρ = 8 / sqrt(10 × 9.5).
TEST(ScoreDiagnosticsRanks, SpearmanMatchesHandComputedValues) {
  EXPECT_NEAR(spearman_correlation({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 8.0 / std::sqrt(95.0), 1e-15);
  // Ties on both sides: ranks [1.5, 1.5, 3, 4] and [1, 2.5, 2.5, 4]; deviations from 2.5: [-1, -1, 0.5, 1.5] and
  // [-1.5, 0, 0, 1.5]: ρ = 3.75 / sqrt(4.5 × 4.5).
  EXPECT_NEAR(spearman_correlation({2, 2, 5, 9}, {0, 4, 4, 6}), 3.75 / 4.5, 1e-15);
  // Monotone but not linear: 1; reversed: -1.
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {0.4, 0.3, 0.2, 0.1}), -1.0);
  EXPECT_TRUE(std::isnan(spearman_correlation({1, 2, 3}, {4, 4, 4})));  // a constant side
  EXPECT_TRUE(std::isnan(spearman_correlation({1}, {2})));
  EXPECT_TRUE(std::isnan(spearman_correlation({1, 2, 3}, {1, NAN, 3})));
  EXPECT_TRUE(testing::throws_error([] { spearman_correlation({1, 2}, {1}); }, "2 values against 1"));
}

// g_1 = (1, 0), g_2 = (0, 2): ‖g‖² = (1, 4), ḡ = (0.5, 1), ‖ḡ‖² = 1.25. Uniform: X = g_j, Var = 2.5 − 1.25 = 1.25.
// p ∝ ‖g‖ = (1/3, 2/3): X = (3/2) g_1 or (3/4) g_2, E‖X‖² = (1/3)(9/4) + (2/3)(9/4) = 2.25, Var = 1.
TEST(ScoreDiagnosticsVariance, MatchesHandComputedValues) {
  EXPECT_DOUBLE_EQ(sampled_gradient_variance({1, 4}, {1, 1}, 1.25), 1.25);
  EXPECT_DOUBLE_EQ(sampled_gradient_variance({1, 4}, {1, 2}, 1.25), 1.0);
  EXPECT_DOUBLE_EQ(sampled_gradient_variance({1, 4}, {0, 0}, 1.25), 1.25);  // all zero: uniform, as sampled
  EXPECT_EQ(sampled_gradient_variance({1, 4}, {0, 1}, 1.25), std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(sampled_gradient_variance({0, 4}, {0, 1}, 1.0), 0.0);  // a zero gradient may be never drawn
  EXPECT_TRUE(testing::throws_error([] { sampled_gradient_variance({1, 4}, {1, -1}, 1.0); }, "score 1 is -1"));
}

// The ScoringContext of a linear softmax classifier (tests/core/softmax_classifier.h).
ScoringContext context_of(SoftmaxClassifier& m) {
  ScoringContext ctx;
  ctx.labels = m.y;
  ctx.dataset_size = m.n;
  ctx.device = m.y.device();
  ctx.parameters = m.params();
  ctx.logits = [&m](const Tensor& idx) {
    NoGradGuard no_grad;
    return linear(index_select(m.x, idx), m.w, m.b);
  };
  ctx.loss_gradient = [&m](const Tensor& idx, const Tensor& weights) {
    m.w.zero_grad();
    m.b.zero_grad();
    Tensor loss = weighted_mean(cross_entropy(linear(index_select(m.x, idx), m.w, m.b), index_select(m.y, idx)),
                                weights);
    loss.backward();
    LossGradient r{loss.detach(), {m.w.grad(), m.b.grad()}};
    m.w.zero_grad();
    m.b.zero_grad();
    return r;
  };
  return ctx;
}

std::vector<double> host(const Tensor& t) {
  const std::vector<float> v = t.to(Device::cpu()).to_vector<float>();
  return {v.begin(), v.end()};
}

class ScoreDiagnosticsOnModel : public testing::DeviceTest {};

// The closed form of Note [sampled-gradient variance] against sampling itself: per-example gradients flattened on
// the host, M = 200 000 draws j ~ p of X = g_j / (B p_j) from a fixed seed, the mean of ‖X − ḡ‖². Its standard
// error is sd(‖X − ḡ‖²) / sqrt(M), estimated from the same draws; the two must agree within 5 of them (a false
// alarm has probability < 1e-6 per distribution), and within 3% (the standard errors here are below 1%).
TEST_P(ScoreDiagnosticsOnModel, VarianceFormulaMatchesMonteCarlo) {
  const int64_t n = 12;
  SoftmaxClassifier m(n, 4, 3, 41, device());
  const ScoringContext ctx = context_of(m);
  std::vector<std::vector<double>> g;  // per-example gradients, W then b
  for (int32_t i = 0; i < n; ++i) {
    const LossGradient r = ctx.loss_gradient(Tensor::from_vector<int32_t>({i}, {1}, device()),
                                             Tensor::ones({1}, DType::F32, device()));
    g.push_back(SoftmaxClassifier::flatten(r.gradients));
  }
  const size_t dim = g[0].size();
  std::vector<double> mean(dim, 0.0), squared(n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (size_t k = 0; k < dim; ++k) {
      mean[k] += g[i][k] / static_cast<double>(n);
      squared[i] += g[i][k] * g[i][k];
    }
  double mean_squared = 0;
  for (double v : mean) mean_squared += v * v;

  std::vector<int32_t> all(n);
  for (int32_t i = 0; i < n; ++i) all[i] = i;
  const Tensor idx = Tensor::from_vector(all, {n}, device());
  const Tensor logits = ctx.logits(idx);
  std::vector<std::vector<double>> distributions = {std::vector<double>(n, 1.0),
                                                    host(loss_scores(logits, m.y)),
                                                    host(upper_bound_scores(logits, m.y)), {}};
  for (double s : squared) distributions[3].push_back(std::sqrt(s));

  std::mt19937_64 rng(2024);
  const int draws = 200000;
  for (const std::vector<double>& s : distributions) {
    const double formula = sampled_gradient_variance(squared, s, mean_squared);
    double total = 0;
    for (double v : s) total += v;
    std::discrete_distribution<int> pick(s.begin(), s.end());
    double sum = 0, sum_sq = 0;
    for (int t = 0; t < draws; ++t) {
      const int j = pick(rng);
      const double scale = total / (static_cast<double>(n) * s[j]);  // 1 / (B p_j)
      double d2 = 0;
      for (size_t k = 0; k < dim; ++k) {
        const double diff = scale * g[j][k] - mean[k];
        d2 += diff * diff;
      }
      sum += d2;
      sum_sq += d2 * d2;
    }
    const double estimate = sum / draws;
    const double se = std::sqrt((sum_sq / draws - estimate * estimate) / draws);
    EXPECT_NEAR(formula, estimate, 5 * se) << "scores " << s[0] << ", " << s[1] << ", ...";
    EXPECT_NEAR(formula, estimate, 0.03 * formula);
    EXPECT_GT(formula, 0.0);
  }
}

// On random models and pre-samples with repeats, exact-norm sampling has the smallest variance of the four
// (Cauchy–Schwarz, Note [sampled-gradient variance]), uniform's relative variance is 1 by definition, and the
// numbers are the functions above applied to the scores, norms and mean gradient computed independently here.
TEST_P(ScoreDiagnosticsOnModel, ExactNormSamplingHasTheSmallestVariance) {
  for (uint64_t seed : {3u, 5u, 8u}) {
    SoftmaxClassifier m(40, 6, 5, seed, device());
    const ScoringContext ctx = context_of(m);
    Generator gen(seed);
    const Tensor idx = randint({24}, 40, gen, device());
    const ScoreDiagnostics d = diagnose_scores(ctx, idx);
    EXPECT_EQ(d.presample, 24);
    EXPECT_GT(d.variance_uniform, 0.0);
    EXPECT_LE(d.relative_variance_gradient_norm, d.relative_variance_loss * (1 + 1e-9)) << "seed " << seed;
    EXPECT_LE(d.relative_variance_gradient_norm, d.relative_variance_upper_bound * (1 + 1e-9)) << "seed " << seed;
    EXPECT_LE(d.relative_variance_gradient_norm, 1.0 + 1e-9) << "seed " << seed;
    EXPECT_LT(d.relative_variance_gradient_norm, 0.99) << "seed " << seed << ": the norms should differ";

    // The same numbers from their parts.
    const Tensor logits = ctx.logits(idx);
    const Tensor labels = index_select(m.y, idx);
    const std::vector<double> ub = host(upper_bound_scores(logits, labels)), loss = host(loss_scores(logits, labels));
    std::vector<double> squared, norms;
    const std::vector<int32_t> ids = idx.to(Device::cpu()).to_vector<int32_t>();
    for (int32_t i : ids) {
      const LossGradient r = ctx.loss_gradient(Tensor::from_vector<int32_t>({i}, {1}, device()),
                                               Tensor::ones({1}, DType::F32, device()));
      double s2 = 0;
      for (double v : SoftmaxClassifier::flatten(r.gradients)) s2 += v * v;
      squared.push_back(s2);
      norms.push_back(std::sqrt(s2));
    }
    const LossGradient all = ctx.loss_gradient(idx, Tensor::ones({24}, DType::F32, device()));
    double mean_squared = 0;
    for (double v : SoftmaxClassifier::flatten(all.gradients)) mean_squared += v * v;
    EXPECT_NEAR(d.mean_gradient_norm, std::sqrt(mean_squared), 1e-5 * std::sqrt(mean_squared));
    const double vu = sampled_gradient_variance(squared, std::vector<double>(24, 1.0), mean_squared);
    EXPECT_NEAR(d.variance_uniform, vu, 1e-4 * vu);
    EXPECT_NEAR(d.relative_variance_loss, sampled_gradient_variance(squared, loss, mean_squared) / vu, 1e-4);
    EXPECT_NEAR(d.relative_variance_upper_bound, sampled_gradient_variance(squared, ub, mean_squared) / vu, 1e-4);
    EXPECT_NEAR(d.spearman_upper_bound, spearman_correlation(ub, norms), 1e-12);
    EXPECT_NEAR(d.spearman_loss, spearman_correlation(loss, norms), 1e-12);
    // For a linear model ‖∇ℓ_i‖ = ‖p − y‖ ‖x̃_i‖: the bound ranks the examples well, not perfectly.
    EXPECT_GT(d.spearman_upper_bound, 0.5) << "seed " << seed;
    EXPECT_LT(d.spearman_upper_bound, 1.0) << "seed " << seed;
  }
}

TEST_P(ScoreDiagnosticsOnModel, WritesJsonRecordAndRejectsBadInput) {
  SoftmaxClassifier m(10, 3, 3, 4, device());
  ScoringContext ctx = context_of(m);
  const Tensor idx = Tensor::from_vector<int32_t>({0, 3, 5, 9}, {4}, device());
  const ScoreDiagnostics d = diagnose_scores(ctx, idx);
  const nlohmann::json j = d;
  EXPECT_EQ(j.at("presample").get<int64_t>(), 4);
  EXPECT_DOUBLE_EQ(j.at("spearman_upper_bound").get<double>(), d.spearman_upper_bound);
  EXPECT_DOUBLE_EQ(j.at("relative_variance_gradient_norm").get<double>(), d.relative_variance_gradient_norm);
  EXPECT_EQ(j.size(), 8u);
  ScoreDiagnostics undefined = d;
  undefined.spearman_loss = std::numeric_limits<double>::quiet_NaN();
  undefined.relative_variance_loss = std::numeric_limits<double>::infinity();
  const nlohmann::json k = undefined;
  EXPECT_TRUE(k.at("spearman_loss").is_null());
  EXPECT_TRUE(k.at("relative_variance_loss").is_null());
  EXPECT_EQ(k.dump().find("NaN"), std::string::npos);

  EXPECT_TRUE(testing::throws_error([&] { diagnose_scores(ctx, idx.rows(0, 1)); }, "at least 2 examples, found 1"));
  ctx.loss_gradient = nullptr;
  EXPECT_TRUE(testing::throws_error([&] { diagnose_scores(ctx, idx); }, "no loss_gradient function"));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(ScoreDiagnosticsOnModel);

}  // namespace
}  // namespace sieve

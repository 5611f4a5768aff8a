// The `loss` sampler (--sampler loss: importance sampling by each example's cross-entropy, sampling/importance.h) and
// `loss-history`, through select and observe, against a fake two-class model whose losses are known in closed form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/ops/gather.h"
#include "core/ops/softmax.h"
#include "sampling/importance.h"
#include "sampling/make_selector.h"
#include "tests/sampling/two_class_model.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// Labels from seed 7 (the loss does not depend on them).
struct TwoClassModel : testing::TwoClassModel {
  TwoClassModel(int64_t n, Device d, std::function<float(int64_t)> m)
      : testing::TwoClassModel(n, d, std::move(m), 7) {}
};

// τ = sqrt(B Σ s²) / Σ s of the scores s.
double tau_of(const std::vector<double>& s) {
  double sum = 0.0, sum_sq = 0.0;
  for (double v : s) {
    sum += v;
    sum_sq += v * v;
  }
  return std::sqrt(static_cast<double>(s.size()) * sum_sq) / sum;
}

class LossSampler : public testing::DeviceTest {};

// Algorithm 1 with the loss as the score, replayed in double: while off, uniform batches of weight 1 and τ_new from
// the losses observe() is given (line 15); while on, a pre-sample of B scored by its losses, b draws in proportion to
// them with weights (Σ s / B) / s_i (lines 6-9) and τ_new from the pre-sample (line 16). One example in four is hard
// (loss 2.13) and the rest easy (0.127), so the draws favour the hard ones: their count is compared with its
// expectation Σ_draws P(hard | pre-sample), within 5 standard deviations of that sum of Bernoulli draws.
TEST_P(LossSampler, DrawsThePresampleInProportionToLossAndReweights) {
  TwoClassModel model(1000, device(), [](int64_t i) { return i % 4 == 0 ? -2.f : 2.f; });
  std::unique_ptr<Selector> made = make_selector("loss", [] {
    SelectorOptions o;
    o.batch = 32;
    o.presample = 128;
    o.tau_th = 1.05f;
    o.tau_ema = 0.5f;
    o.seed = 9;
    return o;
  }());
  ASSERT_EQ(made->name(), "loss");
  auto* sampler = dynamic_cast<ImportanceSampler*>(made.get());
  ASSERT_NE(sampler, nullptr);
  EXPECT_FLOAT_EQ(sampler->tau_th(), 1.05f);
  const ScoringContext ctx = model.context();
  double expected_tau = 0.0, expected_hard = 0.0, variance = 0.0;
  int64_t hard = 0, on_steps = 0;
  for (int step = 0; step < 60; ++step) {
    const int calls = model.calls;
    const Selection sel = sampler->select(ctx);
    ASSERT_NEAR(sampler->tau(), expected_tau, 1e-4 * expected_tau + 1e-7) << "step " << step;
    ASSERT_EQ(sampler->importance_on(), expected_tau > 1.05) << "step " << step;
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    const std::vector<float> w = sel.weights.to_vector<float>();
    ASSERT_EQ(idx.size(), 32u);
    double tau_new = 0.0;
    if (sampler->importance_on()) {
      ++on_steps;
      ASSERT_EQ(model.calls, calls + 1) << "one scoring pass per importance step";
      ASSERT_EQ(model.last_candidates.size(), 128u);
      std::vector<double> scores;
      double total = 0.0, total_hard = 0.0;
      for (int32_t c : model.last_candidates) {
        scores.push_back(model.loss(c));
        total += model.loss(c);
        if (c % 4 == 0) total_hard += model.loss(c);
      }
      const std::multiset<int32_t> pool(model.last_candidates.begin(), model.last_candidates.end());
      for (size_t j = 0; j < idx.size(); ++j) {
        ASSERT_TRUE(pool.count(idx[j])) << "example " << idx[j] << " was not pre-sampled";
        const double expected_w = total / 128.0 / model.loss(idx[j]);
        ASSERT_NEAR(w[j], expected_w, 1e-4 * expected_w) << "step " << step << ", draw " << j;
        hard += idx[j] % 4 == 0;
      }
      const double p = total_hard / total;
      expected_hard += 32.0 * p;
      variance += 32.0 * p * (1.0 - p);
      tau_new = tau_of(scores);
    } else {
      ASSERT_EQ(model.calls, calls) << "no scoring pass while importance sampling is off";
      for (float v : w) ASSERT_EQ(v, 1.f);
      std::vector<double> scores;
      for (int32_t i : idx) scores.push_back(model.loss(i));
      tau_new = tau_of(scores);
    }
    // The training loop's side: the training pass's own per-example losses.
    const Tensor logits = model.logits_of(sel.indices);
    const Tensor labels = index_select(model.labels, sel.indices);
    sampler->observe(sel, logits, labels, cross_entropy(logits, labels));
    expected_tau = 0.5 * expected_tau + 0.5 * tau_new;
  }
  ASSERT_GT(on_steps, 40) << "importance sampling must run for most steps";
  EXPECT_NEAR(static_cast<double>(hard), expected_hard, 5.0 * std::sqrt(variance));
  // Uniform draws would give a quarter hard; loss-proportional ones about 0.85.
  EXPECT_GT(static_cast<double>(hard) / (32.0 * static_cast<double>(on_steps)), 0.7);
}

// In the uniform phase τ_new comes from the losses observe() is handed (the training pass's, "for free"), not from
// the logits: equal losses give τ_new = 1 whatever the logits say; without losses the logits' cross-entropy is used.
TEST_P(LossSampler, ObserveTakesTauFromTheTrainingLosses) {
  TwoClassModel model(200, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 4.f; });
  auto run = [&](const std::function<Tensor(const Tensor& logits, const Tensor& labels)>& losses_of) {
    ImportanceOptions o;
    o.score = ScoreKind::Loss;
    o.batch = 32;
    o.presample = 64;
    o.seed = 4;
    ImportanceSampler sampler(o);
    const ScoringContext ctx = model.context();
    const Selection sel = sampler.select(ctx);
    EXPECT_EQ(sampler.tau(), 0.f);
    const Tensor logits = model.logits_of(sel.indices);
    const Tensor labels = index_select(model.labels, sel.indices);
    sampler.observe(sel, logits, labels, losses_of(logits, labels));
    sampler.select(ctx);
    std::vector<double> ce;
    for (int32_t i : sel.indices.to_vector<int32_t>()) ce.push_back(model.loss(i));
    return std::pair<double, double>{sampler.tau(), tau_of(ce)};
  };
  const auto [equal, ce_tau] = run([&](const Tensor&, const Tensor& labels) {
    return Tensor::full({labels.numel()}, 0.7, DType::F32, device());
  });
  EXPECT_NEAR(equal, 0.1, 1e-6) << "(1 - a_τ) τ_new with τ_new = 1 for equal losses";
  ASSERT_GT(ce_tau, 1.2) << "the batch's own losses must be unequal";
  const auto [from_losses, t1] = run([](const Tensor& logits, const Tensor& labels) { return cross_entropy(logits, labels); });
  EXPECT_NEAR(from_losses, 0.1 * t1, 1e-5 * t1);
  const auto [from_logits, t2] = run([](const Tensor&, const Tensor&) { return Tensor(); });
  EXPECT_NEAR(from_logits, 0.1 * t2, 1e-5 * t2);
}

// loss-history (Note [history scores]): observe() stores each trained example's loss as handed in, a refresh turns
// the table into p_i ∝ s_i + smoothing mean(s) (unseen examples taking the largest loss), and the draws carry weights
// 1 / (N p_i).
TEST_P(LossSampler, HistoryKeepsEachExamplesLastTrainingLoss) {
  const int64_t n = 50;
  TwoClassModel model(n, device(), [](int64_t) { return 1.f; });  // the logits' losses are all equal: unused
  ImportanceOptions o;
  o.score = ScoreKind::Loss;
  o.source = ScoreSource::History;
  o.batch = 8;
  o.refresh_every = 1;
  o.smoothing = 0.5f;
  o.seed = 12;
  ImportanceSampler sampler(o);
  EXPECT_EQ(sampler.name(), "loss-history");
  const ScoringContext ctx = model.context();
  auto loss_of = [](int32_t i) { return 0.1f + 0.04f * static_cast<float>(i); };
  const Selection first = sampler.select(ctx);
  EXPECT_FALSE(sampler.importance_on()) << "no loss recorded yet: uniform";
  for (float v : first.weights.to_vector<float>()) EXPECT_EQ(v, 1.f);
  std::vector<float> given;
  for (int32_t i : first.indices.to_vector<int32_t>()) given.push_back(loss_of(i));
  sampler.observe(first, model.logits_of(first.indices), index_select(model.labels, first.indices),
                  Tensor::from_vector(given, {8}, device()));
  EXPECT_EQ(model.calls, 0) << "the history samplers never score";

  const std::vector<int32_t> trained = first.indices.to_vector<int32_t>();
  const std::set<int32_t> seen(trained.begin(), trained.end());
  float largest = 0.f;
  for (int32_t i : seen) largest = std::max(largest, loss_of(i));
  std::vector<double> score(n);
  double mean = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    score[i] = seen.count(i) ? loss_of(i) : largest;
    mean += score[i] / n;
  }
  const Selection second = sampler.select(ctx);
  ASSERT_TRUE(sampler.importance_on()) << "unequal recorded losses: τ > 1";
  const std::vector<float> dist = sampler.history_distribution().to_vector<float>();
  double total = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    const double d = score[i] + 0.5 * mean;
    EXPECT_NEAR(dist[i], d, 1e-6 * d) << "example " << i;
    total += d;
  }
  const std::vector<int32_t> idx = second.indices.to_vector<int32_t>();
  const std::vector<float> w = second.weights.to_vector<float>();
  for (size_t j = 0; j < idx.size(); ++j) {
    const double p = (score[idx[j]] + 0.5 * mean) / total;
    EXPECT_NEAR(w[j], 1.0 / (n * p), 1e-5 / (n * p)) << "draw " << j;
  }
  const auto columns = sampler.example_columns();
  ASSERT_EQ(columns.size(), 1u);
  EXPECT_EQ(columns[0].first, "last_score");
  const std::vector<float> last = columns[0].second.to_vector<float>();
  for (int32_t i = 0; i < n; ++i) {
    if (seen.count(i)) EXPECT_EQ(last[i], loss_of(i)) << "example " << i;
    else EXPECT_TRUE(std::isnan(last[i])) << "example " << i;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(LossSampler);

}  // namespace
}  // namespace sieve

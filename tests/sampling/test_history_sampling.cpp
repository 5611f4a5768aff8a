// Importance sampling with history scores (Note [history scores] in sampling/importance.h): uniform until scores
// exist, then draws from all N in proportion to the smoothed last training scores with unseen examples at the
// largest, weights 1 / (N p_i) that keep the estimate unbiased, exact resume, and GPU draws equal to the CPU's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "core/checkpoint.h"
#include "sampling/importance.h"
#include "sampling/make_selector.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

ScoringContext context(int64_t n, Device device) {
  ScoringContext ctx;
  ctx.dataset_size = n;
  ctx.device = device;
  ctx.labels = Tensor::zeros({n}, DType::I32, device);
  return ctx;  // no logits: history scores never run a scoring pass
}

float score_of(int32_t e) { return 0.2f + static_cast<float>(e % 10); }  // 0.2 .. 9.2

// Selects and observes `steps` times with the loss score score_of (the "loss" of each trained example).
std::vector<Selection> serve(Selector& s, const ScoringContext& ctx, int64_t steps) {
  std::vector<Selection> out;
  for (int64_t t = 0; t < steps; ++t) {
    Selection sel = s.select(ctx);
    std::vector<float> losses;
    for (int32_t e : sel.indices.to_vector<int32_t>()) losses.push_back(score_of(e));
    const int64_t b = sel.indices.numel();
    s.observe(sel, Tensor::zeros({b, 2}, DType::F32, ctx.device), Tensor::zeros({b}, DType::I32, ctx.device),
              Tensor::from_vector(losses, {b}, ctx.device));
    out.push_back(std::move(sel));
  }
  return out;
}

ImportanceOptions history_options(int64_t b, int64_t refresh) {
  ImportanceOptions o;
  o.score = ScoreKind::Loss;
  o.source = ScoreSource::History;
  o.batch = b;
  o.refresh_every = refresh;
  o.smoothing = 0.5f;
  o.seed = 3;
  return o;
}

class HistorySampling : public testing::DeviceTest {};

TEST_P(HistorySampling, UniformUntilScoresExistThenUnseenTakeTheLargestWithSmoothing) {
  const int64_t n = 100;
  ImportanceSampler sel(history_options(8, 1));
  const ScoringContext ctx = context(n, device());
  EXPECT_EQ(sel.name(), "loss-history");
  EXPECT_FLOAT_EQ(sel.tau_th(), 1.f);
  const Selection first = serve(sel, ctx, 1).front();  // no score yet: uniform, weight 1
  EXPECT_FALSE(sel.importance_on());
  EXPECT_EQ(first.weights.to_vector<float>(), std::vector<float>(8, 1.f));
  serve(sel, ctx, 1);  // refreshes from the first step's 8 scores
  EXPECT_TRUE(sel.importance_on());
  std::vector<bool> seen(n, false);
  for (int32_t e : first.indices.to_vector<int32_t>()) seen[e] = true;
  float largest = 0;
  for (int64_t e = 0; e < n; ++e)
    if (seen[e]) largest = std::max(largest, score_of(static_cast<int32_t>(e)));
  // The distribution of the refresh at step 2 used exactly the first step's scores.
  const std::vector<float> d = sel.history_distribution().to_vector<float>();
  double total = 0;
  for (int64_t e = 0; e < n; ++e) total += seen[e] ? score_of(static_cast<int32_t>(e)) : largest;
  const double add = 0.5 * total / n;
  for (int64_t e = 0; e < n; ++e)
    ASSERT_NEAR(d[e], (seen[e] ? score_of(static_cast<int32_t>(e)) : largest) + add, 1e-5) << e;
}

// Once every example has a score, draws follow p_e ∝ s_e + 0.5 mean(s) (chi-square), each weight is 1 / (N p_e),
// and the weighted batch mean of any values is their data-set mean in expectation.
TEST_P(HistorySampling, DrawsInProportionToSmoothedScoresAndIsUnbiased) {
  const int64_t n = 50, b = 64, steps = 3000;
  const ScoringContext ctx = context(n, device());
  ImportanceSampler drawn(history_options(b, 1));  // a refresh at every step
  drawn.select(ctx);  // step 0: nothing seen yet, uniform
  {
    // Every example gets its score: one observed batch holding all N.
    std::vector<int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    std::vector<float> losses;
    for (int32_t e : all) losses.push_back(score_of(e));
    Selection everything{Tensor::from_vector(all, {n}, ctx.device), Tensor::ones({n}, DType::F32, ctx.device)};
    drawn.observe(everything, Tensor::zeros({n, 2}, DType::F32, ctx.device),
                  Tensor::zeros({n}, DType::I32, ctx.device), Tensor::from_vector(losses, {n}, ctx.device));
  }
  // From here on, no observe: the table stays, every refresh gives the same distribution.
  double smoothed_total = 0, score_total = 0;
  for (int64_t e = 0; e < n; ++e) score_total += score_of(static_cast<int32_t>(e));
  const double add = 0.5 * score_total / n;
  std::vector<double> p(n);
  for (int64_t e = 0; e < n; ++e) smoothed_total += p[e] = score_of(static_cast<int32_t>(e)) + add;
  for (double& x : p) x /= smoothed_total;
  const std::vector<float> values = testing::random_tensor({n}, 17, Device::cpu(), -2.f, 5.f).to_vector<float>();
  const double true_mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  std::vector<int64_t> counts(n, 0);
  double estimate_sum = 0, estimate_sq = 0;
  for (int64_t t = 0; t < steps; ++t) {
    const Selection s = drawn.select(ctx);
    ASSERT_TRUE(drawn.importance_on());
    const std::vector<int32_t> idx = s.indices.to_vector<int32_t>();
    const std::vector<float> w = s.weights.to_vector<float>();
    double estimate = 0;
    for (size_t j = 0; j < idx.size(); ++j) {
      ++counts[idx[j]];
      ASSERT_NEAR(w[j], 1.0 / (n * p[idx[j]]), 1e-5 * w[j]) << idx[j];
      estimate += w[j] * values[idx[j]];
    }
    estimate /= b;
    estimate_sum += estimate;
    estimate_sq += estimate * estimate;
  }
  double chi2 = 0;
  const double draws = static_cast<double>(b * steps);
  for (int64_t e = 0; e < n; ++e) chi2 += std::pow(counts[e] - draws * p[e], 2) / (draws * p[e]);
  EXPECT_LT(chi2, 49 + 3.719 * std::sqrt(2 * 49.0)) << "chi-square with 49 degrees of freedom";  // ~1e-4 tail
  const double mean = estimate_sum / steps, sd = std::sqrt(estimate_sq / steps - mean * mean);
  EXPECT_NEAR(mean, true_mean, 5 * sd / std::sqrt(static_cast<double>(steps)));
}

TEST_P(HistorySampling, ResumesIdentically) {
  SelectorOptions o;
  o.batch = 16;
  o.history_refresh = 4;
  o.seed = 21;
  const ScoringContext ctx = context(300, device());
  for (const char* name : {"upper-bound-history", "loss-history"}) {
    std::unique_ptr<Selector> straight = make_selector(name, o), first = make_selector(name, o);
    serve(*straight, ctx, 10);
    serve(*first, ctx, 10);
    testing::TempDir dir;
    CheckpointState state;
    first->save_state(state, "selector.");
    save_checkpoint(dir.file("h.safetensors"), state);
    serve(*first, ctx, 2);
    std::unique_ptr<Selector> resumed = make_selector(name, o);
    resumed->load_state(load_checkpoint(dir.file("h.safetensors")), "selector.");
    const std::vector<Selection> a = serve(*resumed, ctx, 12), b = serve(*straight, ctx, 12);
    for (size_t t = 0; t < a.size(); ++t) {
      EXPECT_EQ(a[t].indices.to_vector<int32_t>(), b[t].indices.to_vector<int32_t>()) << name << " step " << t;
      EXPECT_EQ(a[t].weights.to_vector<float>(), b[t].weights.to_vector<float>()) << name << " step " << t;
    }
    EXPECT_EQ(resumed->stats(), straight->stats()) << name;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(HistorySampling);

class HistorySamplingGpu : public testing::GpuTest {};

// The upper bound from the training logits (the fused score kernel) and the draws from the host-summed prefix: the
// same examples and weights on both devices.
TEST_F(HistorySamplingGpu, MatchesCpu) {
  SelectorOptions o;
  o.batch = 128;
  o.history_refresh = 10;
  o.seed = 2;
  const int64_t n = 20000, classes = 10;
  std::unique_ptr<Selector> cpu = make_selector("upper-bound-history", o), gpu = make_selector("upper-bound-history", o);
  const ScoringContext c = context(n, Device::cpu()), g = context(n, Device::cuda(0));
  for (int t = 0; t < 200; ++t) {
    const Selection sc = cpu->select(c), sg = gpu->select(g);
    ASSERT_EQ(sg.indices.to(Device::cpu()).to_vector<int32_t>(), sc.indices.to_vector<int32_t>()) << "step " << t;
    ASSERT_EQ(sg.weights.to(Device::cpu()).to_vector<float>(), sc.weights.to_vector<float>()) << "step " << t;
    const Tensor logits = testing::random_tensor({128, classes}, 100 + t, Device::cpu(), -3.f, 3.f);
    const Tensor labels = testing::random_labels(128, classes, 200 + t);
    cpu->observe(sc, logits, labels, Tensor());
    gpu->observe(sg, logits.to(Device::cuda(0)), labels.to(Device::cuda(0)), Tensor());
  }
}

}  // namespace
}  // namespace sieve

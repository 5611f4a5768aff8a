// The selectors of Algorithm 1: uniform, and importance sampling switched on by τ, against a fake model whose
// logits (and so scores) are known in closed form.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/ops/gather.h"
#include "core/ops/softmax.h"
#include "sampling/importance.h"
#include "sampling/make_selector.h"
#include "sampling/uniform.h"
#include "tests/sampling/two_class_model.h"
#include "tests/test_util.h"

// The fixtures are named after the suites the tests pin down (ImportanceSampler.*, UniformSelector.*), which are also
// the names of the classes under test: the tests live outside namespace sieve and name those classes sieve::...
namespace {

using sieve::Device;
using sieve::DType;
using sieve::Error;
using sieve::ImportanceOptions;
using sieve::ScoringContext;
using sieve::Selection;
using sieve::Selector;
using sieve::SelectorOptions;
using sieve::Shape;
using sieve::Tensor;

// tests/sampling/two_class_model.h, labels from seed 5.
struct FakeModel : sieve::testing::TwoClassModel {
  FakeModel(int64_t n, Device d, std::function<float(int64_t)> m)
      : sieve::testing::TwoClassModel(n, d, std::move(m), 5) {}
};

std::map<std::string, double> stats_of(const Selector& s) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : s.stats()) out[k] = v;
  return out;
}

// τ = sqrt(B sum s^2) / sum s over the examples `indices`, in double.
double tau_of(const FakeModel& model, const std::vector<int32_t>& indices) {
  double sum = 0.0, sum_sq = 0.0;
  for (int32_t i : indices) {
    sum += model.score(i);
    sum_sq += model.score(i) * model.score(i);
  }
  return std::sqrt(static_cast<double>(indices.size()) * sum_sq) / sum;
}

// The training loop's side of a step: forward the selection (training mode) and show it to the selector.
void train_step(Selector& selector, const FakeModel& model, const Selection& sel) {
  const Tensor logits = model.logits_of(sel.indices);
  const Tensor labels = sieve::index_select(model.labels, sel.indices);
  selector.observe(sel, logits, labels, sieve::cross_entropy(logits, labels));
}

class ImportanceSampler : public sieve::testing::DeviceTest {};

// One example in ten is misclassified (score ~1.35), the others are learned (score ~5e-4): τ of a uniform batch of
// 32 is about sqrt(32 / #hard) > τ_th, so Algorithm 1 must switch importance sampling on after a few steps. The test
// replays Algorithm 1 in double alongside: τ from the observed batch while off (line 15), from the B pre-sampled
// scores while on (line 16), and the weights (sum s / B) / s_i of line 9.
TEST_P(ImportanceSampler, SwitchesOnOnlyAfterTauExceedsThreshold) {
  FakeModel model(1000, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 8.f; });
  ImportanceOptions options;
  options.batch = 32;
  options.presample = 128;
  options.tau_ema = 0.5f;
  options.seed = 3;
  sieve::ImportanceSampler sampler(options);
  EXPECT_FLOAT_EQ(sampler.tau_th(), (128.f + 96.f) / 96.f);
  const ScoringContext ctx = model.context();

  double expected_tau = 0.0;
  int on_steps = 0, first_on = -1;
  const int steps = 40;
  for (int step = 0; step < steps; ++step) {
    const int calls_before = model.calls;
    const Selection sel = sampler.select(ctx);
    auto stats = stats_of(sampler);
    ASSERT_NEAR(stats["tau"], expected_tau, 1e-4 * expected_tau) << "step " << step;
    const bool on = stats["importance_on"] == 1.0;
    ASSERT_EQ(on, stats["tau"] > sampler.tau_th()) << "step " << step;
    if (step == 0) {
      EXPECT_EQ(stats["tau"], 0.0);  // line 3
      EXPECT_FALSE(on);
    }
    ASSERT_EQ(sel.indices.shape(), Shape({32}));
    ASSERT_EQ(sel.indices.dtype(), DType::I32);
    ASSERT_EQ(sel.indices.device(), device());
    ASSERT_EQ(sel.weights.device(), device());
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    const std::vector<float> w = sel.weights.to_vector<float>();
    for (int32_t i : idx) ASSERT_TRUE(i >= 0 && i < model.size) << i;
    double tau_new = 0.0;
    if (on) {
      ++on_steps;
      if (first_on < 0) first_on = step;
      ASSERT_EQ(model.calls, calls_before + 1) << "one scoring forward pass per importance step";
      const std::vector<int32_t> candidates = model.last_candidates;
      ASSERT_EQ(candidates.size(), 128u);
      double total = 0.0;
      for (int32_t c : candidates) total += model.score(c);
      const std::set<int32_t> pool(candidates.begin(), candidates.end());
      for (size_t j = 0; j < idx.size(); ++j) {
        ASSERT_TRUE(pool.count(idx[j])) << "selected example " << idx[j] << " was not pre-sampled";
        const double expected_w = total / 128.0 / model.score(idx[j]);
        ASSERT_NEAR(w[j], expected_w, 1e-4 * expected_w) << "step " << step << ", draw " << j;
      }
      tau_new = tau_of(model, candidates);
    } else {
      ASSERT_EQ(model.calls, calls_before) << "no scoring pass while importance sampling is off";
      for (float v : w) ASSERT_EQ(v, 1.f);
      tau_new = tau_of(model, idx);
    }
    train_step(sampler, model, sel);
    expected_tau = 0.5 * expected_tau + 0.5 * tau_new;
  }
  EXPECT_GE(first_on, 1) << "importance sampling never switched on";
  EXPECT_NEAR(stats_of(sampler)["importance_fraction"], static_cast<double>(on_steps) / steps, 1e-12);
}

// Equal scores give τ_new = 1 every step: τ climbs from 0 towards 1 and never reaches τ_th > 1.
TEST_P(ImportanceSampler, UniformScoresKeepItOff) {
  FakeModel model(500, device(), [](int64_t) { return 1.5f; });
  ImportanceOptions options;
  options.batch = 16;
  options.presample = 64;
  sieve::ImportanceSampler sampler(options);
  const ScoringContext ctx = model.context();
  for (int step = 0; step < 30; ++step) {
    const Selection sel = sampler.select(ctx);
    EXPECT_FALSE(sampler.importance_on()) << "step " << step;
    for (float v : sel.weights.to_vector<float>()) ASSERT_EQ(v, 1.f);
    train_step(sampler, model, sel);
  }
  EXPECT_EQ(model.calls, 0);
  EXPECT_GT(sampler.tau(), 0.9f);  // 1 - 0.9^29
  EXPECT_LE(sampler.tau(), 1.f + 1e-5f);
  EXPECT_EQ(stats_of(sampler)["importance_fraction"], 0.0);
}

// Without observe() the uniform phase has no scores: τ keeps its initial 0.
TEST_P(ImportanceSampler, UniformPhaseTakesTauFromObservedBatch) {
  FakeModel model(200, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 8.f; });
  ImportanceOptions options;
  options.batch = 32;
  options.presample = 64;
  sieve::ImportanceSampler sampler(options);
  const ScoringContext ctx = model.context();
  for (int step = 0; step < 5; ++step) sampler.select(ctx);
  EXPECT_EQ(sampler.tau(), 0.f);
  const Selection sel = sampler.select(ctx);
  train_step(sampler, model, sel);
  sampler.select(ctx);
  EXPECT_NEAR(sampler.tau(), 0.1 * tau_of(model, sel.indices.to_vector<int32_t>()), 1e-5);
}


void expect_error(const std::function<void()>& fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "expected sieve::Error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST_P(ImportanceSampler, RejectsInvalidOptions) {
  auto with = [](const std::function<void(ImportanceOptions&)>& change) {
    return [change] {
      ImportanceOptions o;
      change(o);
      sieve::ImportanceSampler sampler(o);
    };
  };
  expect_error(with([](ImportanceOptions& o) { 
    o.batch = 256;
    o.presample = 128;
   }),
               "--batch 256 exceeds --presample 128");
  expect_error(with([](ImportanceOptions& o) { o.batch = 0; }), "--batch must be positive, found 0");
  expect_error(with([](ImportanceOptions& o) { o.presample = -4; }), "--presample must be positive, found -4");
  expect_error(with([](ImportanceOptions& o) { o.tau_ema = 1.f; }), "--tau-ema must be in [0, 1), found 1");
  expect_error(with([](ImportanceOptions& o) { o.tau_ema = -0.1f; }), "--tau-ema must be in [0, 1)");
  expect_error(with([](ImportanceOptions& o) { o.tau_th = NAN; }), "--tau-th must be finite");

  sieve::ImportanceSampler sampler(ImportanceOptions{});
  FakeModel model(10, device(), [](int64_t) { return 1.f; });
  ScoringContext empty = model.context();
  empty.dataset_size = 0;
  expect_error([&] { sampler.select(empty); }, "the data set is empty (N = 0)");
}

TEST_P(ImportanceSampler, DefaultThresholdIsGuaranteedSpeedup) {
  EXPECT_FLOAT_EQ(sieve::default_tau_th(1024, 128), (1024.f + 384.f) / 384.f);
  EXPECT_FLOAT_EQ(sieve::default_tau_th(384, 128), 2.f);
  ImportanceOptions o;
  o.batch = 128;
  o.presample = 640;
  EXPECT_FLOAT_EQ(sieve::ImportanceSampler(o).tau_th(), sieve::default_tau_th(640, 128));
  o.tau_th = 1.25f;
  EXPECT_FLOAT_EQ(sieve::ImportanceSampler(o).tau_th(), 1.25f);
}

// Note [non-finite scores]: a NaN score is refused with the same error on every device, never drawn from: at once
// on the CPU, by the next select() on a GPU (where τ is read without a synchronisation), naming the step it came from.
TEST_P(ImportanceSampler, RefusesNonFiniteScoresOnEveryDevice) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    FakeModel model(500, device(), [bad](int64_t i) { return i % 7 == 0 ? bad : 1.f; });
    ImportanceOptions options;
    options.batch = 16;
    options.presample = 64;
    options.tau_th = -1.f;  // importance sampling from the first step
    options.seed = 9;
    sieve::ImportanceSampler sampler(options);
    const ScoringContext ctx = model.context();
    EXPECT_TRUE(sieve::testing::throws_error(
        [&] {
          for (int step = 0; step < 2; ++step) sampler.select(ctx);
        },
        {"upper-bound: the scores of step 1 are not finite", "diverged"}))
        << bad;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(ImportanceSampler);

class UniformSelector : public sieve::testing::DeviceTest {};

TEST_P(UniformSelector, DrawsIndicesWithReplacementAndUnitWeights) {
  FakeModel model(10, device(), [](int64_t) { return 1.f; });
  sieve::UniformSelector selector(64, 11);
  const ScoringContext ctx = model.context();
  std::vector<int64_t> counts(10, 0);
  for (int step = 0; step < 20; ++step) {
    const Selection sel = selector.select(ctx);
    ASSERT_EQ(sel.indices.shape(), Shape({64}));
    ASSERT_EQ(sel.indices.device(), device());
    for (int32_t i : sel.indices.to_vector<int32_t>()) {
      ASSERT_TRUE(i >= 0 && i < 10) << i;
      ++counts[i];
    }
    for (float v : sel.weights.to_vector<float>()) ASSERT_EQ(v, 1.f);
  }
  for (int64_t c : counts) EXPECT_GT(c, 64);  // expected 128 each; below 64 has probability < 1e-9
  EXPECT_EQ(model.calls, 0);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(UniformSelector);

TEST(MakeSelector, BuildsByNameAndListsAcceptedNames) {
  SelectorOptions o;
  o.batch = 32;
  o.presample = 256;
  const std::vector<std::string> names = {"uniform",   "loss",         "upper-bound", "loss-history",
                                          "upper-bound-history", "gradient-norm", "srs", "random-subset",
                                          "online-batch", "crest", "infobatch", "selective-backprop",
                                          "selective-backprop-stale"};
  for (const std::string& name : names) EXPECT_EQ(sieve::make_selector(name, o)->name(), name);
  EXPECT_EQ(sieve::selector_names(), names);
  expect_error([&] { sieve::make_selector("crest-ish", o); },
               "expected one of uniform, loss, upper-bound, loss-history, upper-bound-history, gradient-norm, srs, "
               "random-subset, online-batch, crest, infobatch, selective-backprop, selective-backprop-stale");
  o.batch = 512;
  expect_error([&] { sieve::make_selector("upper-bound", o); }, "--batch 512 exceeds --presample 256");
  // History scores have no pre-sample: B does not bound b.
  EXPECT_EQ(sieve::make_selector("upper-bound-history", o)->name(), "upper-bound-history");
  o.score_source = "history";
  EXPECT_EQ(sieve::make_selector("loss", o)->name(), "loss-history");
  o.score_source = "stale";
  expect_error([&] { sieve::make_selector("loss", o); }, "unknown --score-source 'stale'");
  o = SelectorOptions{};
  o.sb_stale = true;
  EXPECT_EQ(sieve::make_selector("selective-backprop", o)->name(), "selective-backprop-stale");
  o.sb_history = 64;
  expect_error([&] { sieve::make_selector("selective-backprop", o); }, "--sb-history must be at least --batch (128)");
  o = SelectorOptions{};
  o.prune_ratio = 1.5;
  expect_error([&] { sieve::make_selector("infobatch", o); }, "--prune-ratio must be in [0, 1], found 1.5");
}

// Note [presample smoothing]: with c > 0 the pre-sampled scores become s + c before normalising. One in ten examples
// is hard (s ≈ 1.35), the rest learned (s ≈ 5e-4); with c = 0.25 the weights are (Σ(s + c) / B) / (s_i + c) and τ
// is that of s + c. Built by make_selector, so SelectorOptions::presample_smoothing reaches the sampler.
class PresampleSmoothing : public sieve::testing::DeviceTest {};

TEST_P(PresampleSmoothing, AddsTheConstantBeforeNormalising) {
  FakeModel model(1000, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 8.f; });
  SelectorOptions o;
  o.batch = 32;
  o.presample = 128;
  o.tau_th = -1.f;  // on from the first step
  o.tau_ema = 0.5f;
  o.presample_smoothing = 0.25f;
  o.seed = 9;
  const std::unique_ptr<Selector> sampler = sieve::make_selector("upper-bound", o);
  const ScoringContext ctx = model.context();
  double expected_tau = 0;
  for (int step = 0; step < 3; ++step) {
    const Selection sel = sampler->select(ctx);
    ASSERT_NEAR(stats_of(*sampler)["tau"], expected_tau, 1e-5 * expected_tau) << "step " << step;
    const std::vector<int32_t> candidates = model.last_candidates;
    double total = 0, sum_sq = 0;
    for (int32_t c : candidates) {
      const double s = model.score(c) + 0.25;
      total += s;
      sum_sq += s * s;
    }
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    const std::vector<float> w = sel.weights.to_vector<float>();
    for (size_t j = 0; j < idx.size(); ++j) {
      const double want = total / 128.0 / (model.score(idx[j]) + 0.25);
      ASSERT_NEAR(w[j], want, 1e-4 * want) << "step " << step << ", draw " << j;
    }
    expected_tau = 0.5 * expected_tau + 0.5 * std::sqrt(128.0 * sum_sq) / total;
    train_step(*sampler, model, sel);  // importance steps take τ from the pre-sample, not from observe()
  }
}

// The share of hard examples among the draws: Σ over steps of b P(hard) with P(hard) = Σ_hard (s + c) / Σ (s + c)
// over that step's pre-sample, against its binomial standard deviation; 200 steps of 32 draws, within 4 deviations
// (a false alarm has probability < 1e-4). Without smoothing P(hard) ≈ 0.997; with c = 0.25 about 0.4: a sampler that
// ignored c would be ~90 deviations off.
TEST_P(PresampleSmoothing, DrawsInProportionToSmoothedScores) {
  FakeModel model(1000, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 8.f; });
  ImportanceOptions o;
  o.batch = 32;
  o.presample = 128;
  o.tau_th = -1.f;
  o.presample_smoothing = 0.25f;
  o.seed = 21;
  sieve::ImportanceSampler sampler(o);
  const ScoringContext ctx = model.context();
  double observed = 0, expected = 0, variance = 0;
  for (int step = 0; step < 200; ++step) {
    const Selection sel = sampler.select(ctx);
    double hard = 0, total = 0;
    for (int32_t c : model.last_candidates) {
      const double s = model.score(c) + 0.25;
      total += s;
      if (c % 10 == 0) hard += s;
    }
    const double p = hard / total;
    expected += 32 * p;
    variance += 32 * p * (1 - p);
    for (int32_t i : sel.indices.to_vector<int32_t>()) observed += i % 10 == 0 ? 1 : 0;
  }
  EXPECT_NEAR(observed, expected, 4 * std::sqrt(variance));
  EXPECT_LT(expected, 0.6 * 200 * 32);  // the smoothing matters here
}

// In the uniform phase τ_new comes from the training pass's scores, smoothed as a draw would be (the reference takes
// the raw ones there; Note [presample smoothing]).
TEST_P(PresampleSmoothing, UniformPhaseTauUsesSmoothedScores) {
  FakeModel model(200, device(), [](int64_t i) { return i % 10 == 0 ? -3.f : 8.f; });
  ImportanceOptions o;
  o.batch = 32;
  o.presample = 64;
  o.presample_smoothing = 0.1f;
  sieve::ImportanceSampler sampler(o);
  const ScoringContext ctx = model.context();
  const Selection sel = sampler.select(ctx);
  ASSERT_FALSE(sampler.importance_on());
  train_step(sampler, model, sel);
  sampler.select(ctx);
  double total = 0, sum_sq = 0;
  for (int32_t i : sel.indices.to_vector<int32_t>()) {
    const double s = model.score(i) + 0.1;
    total += s;
    sum_sq += s * s;
  }
  const double tau = std::sqrt(32.0 * sum_sq) / total;
  EXPECT_NEAR(sampler.tau(), 0.1 * tau, 1e-5 * tau);
  EXPECT_GT(std::fabs(tau - tau_of(model, sel.indices.to_vector<int32_t>())), 0.1) << "smoothing should change τ";
}

TEST_P(PresampleSmoothing, RejectsNegativeAndHistoryUse) {
  auto with = [](float c, sieve::ScoreSource source) {
    return [c, source] {
      ImportanceOptions o;
      o.presample_smoothing = c;
      o.source = source;
      sieve::ImportanceSampler sampler(o);
    };
  };
  expect_error(with(-0.5f, sieve::ScoreSource::Presample), "--presample-smoothing must be finite and >= 0, found -0.5");
  expect_error(with(NAN, sieve::ScoreSource::Presample), "--presample-smoothing must be finite and >= 0");
  expect_error(with(1.f, sieve::ScoreSource::History), "--presample-smoothing applies to pre-sampled scores");
  EXPECT_EQ(SelectorOptions{}.presample_smoothing, 0.f);  // the reference's default: no smoothing
}

SIEVE_INSTANTIATE_DEVICE_TESTS(PresampleSmoothing);

}  // namespace

// Exact per-example gradient norms (sampling/gradient_norm.h) against finite differences of the loss and against the
// closed form of a linear softmax classifier, and the gradient-norm importance sampler built on them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops.h"
#include "sampling/gradient_norm.h"
#include "sampling/importance.h"
#include "sampling/make_selector.h"
#include "tests/core/softmax_classifier.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::SoftmaxClassifier;

// The scoring side of the engine for a model given as a forward function over its parameters: logits without
// gradients, and the weighted mean cross-entropy with its gradients (as apps/trainer.cpp offers them).
struct TinyTask {
  Tensor x, y;                     // [n, d] float32, [n] int32 on the device
  std::vector<Tensor> params;      // requiring gradients
  std::function<Tensor(const Tensor& inputs)> forward;
  int64_t gradient_calls = 0;
  std::vector<int32_t> requested;  // the examples of every one-example loss_gradient call, in order

  ScoringContext context() {
    ScoringContext ctx;
    ctx.labels = y;
    ctx.dataset_size = y.size(0);
    ctx.device = y.device();
    ctx.parameters = params;
    ctx.logits = [this](const Tensor& idx) {
      NoGradGuard no_grad;
      return forward(index_select(x, idx));
    };
    ctx.loss_gradient = [this](const Tensor& idx, const Tensor& weights) {
      ++gradient_calls;
      if (idx.numel() == 1) requested.push_back(idx.to_vector<int32_t>()[0]);
      for (Tensor& p : params) p.zero_grad();
      Tensor loss = weighted_mean(cross_entropy(forward(index_select(x, idx)), index_select(y, idx)), weights);
      loss.backward();
      LossGradient r{loss.detach(), {}};
      for (Tensor& p : params) {
        r.gradients.push_back(p.grad());
        p.zero_grad();
      }
      return r;
    };
    return ctx;
  }
  // ℓ_i at the parameters' current values, in float32 as the engine computes it.
  double loss_of(int32_t i) const {
    NoGradGuard no_grad;
    const Tensor idx = Tensor::from_vector<int32_t>({i}, {1}, y.device());
    return cross_entropy(forward(index_select(x, idx)), index_select(y, idx)).item();
  }
};

// A linear softmax classifier as a TinyTask (the model of tests/core/softmax_classifier.h).
TinyTask linear_task(const SoftmaxClassifier& m) {
  TinyTask t;
  t.x = m.x;
  t.y = m.y;
  t.params = {m.w, m.b};
  const Tensor w = m.w, b = m.b;
  t.forward = [w, b](const Tensor& in) { return linear(in, w, b); };
  return t;
}

// Two layers with a ReLU between: d -> h -> c.
TinyTask mlp_task(int64_t n, int64_t d, int64_t h, int64_t c, uint64_t seed, Device device) {
  TinyTask t;
  t.x = testing::random_tensor({n, d}, seed, device, -1.f, 1.f);
  t.y = testing::random_labels(n, static_cast<int>(c), seed + 1, device);
  const Tensor w1 = testing::random_tensor({h, d}, seed + 2, device, -0.8f, 0.8f).set_requires_grad();
  const Tensor b1 = testing::random_tensor({h}, seed + 3, device, -0.3f, 0.3f).set_requires_grad();
  const Tensor w2 = testing::random_tensor({c, h}, seed + 4, device, -0.8f, 0.8f).set_requires_grad();
  const Tensor b2 = testing::random_tensor({c}, seed + 5, device, -0.3f, 0.3f).set_requires_grad();
  t.params = {w1, b1, w2, b2};
  t.forward = [w1, b1, w2, b2](const Tensor& in) { return linear(relu(linear(in, w1, b1)), w2, b2); };
  return t;
}

Tensor arange(int64_t n, Device device) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  return Tensor::from_vector(v, {n}, device);
}

// ‖∇ℓ_i‖² = ‖p_i − onehot(y_i)‖² (‖x_i‖² + 1) for z = W x + b: the gradient is (p − y) x̃ᵀ with x̃ = (x, 1).
std::vector<double> analytic_norms(const SoftmaxClassifier& m) {
  const std::vector<float> xs = m.x.to(Device::cpu()).to_vector<float>();
  const std::vector<int32_t> ys = m.y.to(Device::cpu()).to_vector<int32_t>();
  const std::vector<float> ws = m.w.detach().to(Device::cpu()).to_vector<float>();
  const std::vector<float> bs = m.b.detach().to(Device::cpu()).to_vector<float>();
  std::vector<double> out;
  for (int64_t i = 0; i < m.n; ++i) {
    std::vector<double> z(static_cast<size_t>(m.c));
    double x2 = 1.0, zmax = -1e300, total = 0.0, r2 = 0.0;
    for (int64_t k = 0; k < m.d; ++k) x2 += static_cast<double>(xs[i * m.d + k]) * xs[i * m.d + k];
    for (int64_t a = 0; a < m.c; ++a) {
      z[a] = bs[a];
      for (int64_t k = 0; k < m.d; ++k) z[a] += static_cast<double>(ws[a * m.d + k]) * xs[i * m.d + k];
      zmax = std::max(zmax, z[a]);
    }
    for (double& v : z) total += (v = std::exp(v - zmax));
    for (int64_t a = 0; a < m.c; ++a) {
      const double r = z[a] / total - (a == ys[i] ? 1.0 : 0.0);
      r2 += r * r;
    }
    out.push_back(std::sqrt(r2 * x2));
  }
  return out;
}

class GradientNorm : public testing::DeviceTest {};

// float32 gradients of a few dozen terms each: relative errors near 1e-6; 1e-4 leaves room and still catches a
// missing parameter (the bias alone changes ‖∇‖² by a factor 1 + 1/‖x‖², > 1.1 here).
TEST_P(GradientNorm, MatchesClosedFormOfLinearSoftmaxClassifier) {
  SoftmaxClassifier m(24, 5, 4, 31, device());
  TinyTask task = linear_task(m);
  const ScoringContext ctx = task.context();
  const Tensor norms = per_example_gradient_norms(ctx, arange(24, device()));
  ASSERT_EQ(norms.shape(), Shape({24}));
  ASSERT_EQ(norms.dtype(), DType::F32);
  ASSERT_EQ(norms.device(), device());
  const std::vector<double> expected = analytic_norms(m);
  std::vector<float> want(expected.begin(), expected.end());
  EXPECT_TRUE(testing::all_close(norms.to(Device::cpu()).to_vector<float>(), want, 1e-6f, 1e-4f));
  EXPECT_EQ(task.gradient_calls, 24);  // one pass per example
  const auto [lo, hi] = std::minmax_element(expected.begin(), expected.end());
  EXPECT_GT(*hi, 2.0 * *lo) << "the examples should differ for the test to mean something";
  // The summary's squared norms agree, duplicates and order follow the indices, and the mean of the per-example
  // gradients is the gradient of the mean loss over the same examples (one pass over all three, weights 1).
  const Tensor some = Tensor::from_vector<int32_t>({7, 2, 7}, {3}, device());
  const PerExampleGradients summary = per_example_gradient_summary(ctx, some);
  const std::vector<double>& squared = summary.squared_norms;
  ASSERT_EQ(squared.size(), 3u);
  const double mean_squared = squared_norm(ctx.loss_gradient(some, Tensor::ones({3}, DType::F32, device())).gradients);
  EXPECT_NEAR(summary.mean_gradient_squared_norm, mean_squared, 1e-5 * mean_squared);
  EXPECT_LT(summary.mean_gradient_squared_norm, 0.99 * (squared[0] + squared[1] + squared[2]) / 3);
  EXPECT_NEAR(squared[0], expected[7] * expected[7], 1e-4 * expected[7] * expected[7]);
  EXPECT_NEAR(squared[1], expected[2] * expected[2], 1e-4 * expected[2] * expected[2]);
  EXPECT_NEAR(squared[0], squared[2], 1e-6 * squared[0]);
}

// A two-layer ReLU network, every parameter perturbed by ±h in turn: the central difference of ℓ_i. Its error is
// the float32 rounding of the loss, about 2 u ℓ / (2h) ≈ 1e-5 per component with h = 1e-2, plus the truncation
// h² ℓ''' / 6 ≈ 2e-5; over 44 components the norm is off by ~1e-4 of norms ~0.3-1: rtol 3e-3. The test first checks
// that no ±h step moves a ReLU input across 0 (where ℓ has a kink and the difference would be meaningless).
TEST_P(GradientNorm, MatchesFiniteDifferencesOfTheLoss) {
  const int64_t n = 4, d = 3, hidden = 5, c = 4;
  const float h = 1e-2f;
  // The first seed from 100 on whose ReLU inputs all stay 2h away from 0 (a step of h moves them by at most h).
  TinyTask task;
  for (uint64_t seed = 100;; ++seed) {
    ASSERT_LT(seed, 200u) << "no seed keeps the ReLU inputs away from their kink";
    task = mlp_task(n, d, hidden, c, seed, device());
    NoGradGuard no_grad;
    const std::vector<float> pre = linear(task.x, task.params[0], task.params[1]).to(Device::cpu()).to_vector<float>();
    float smallest = 1e30f;
    for (float a : pre) smallest = std::min(smallest, std::fabs(a));
    if (smallest > 2.f * h) break;
  }
  const ScoringContext ctx = task.context();
  std::vector<double> fd(static_cast<size_t>(n), 0.0);
  for (Tensor& p : task.params) {
    const std::vector<float> saved = p.detach().to(Device::cpu()).to_vector<float>();
    for (size_t e = 0; e < saved.size(); ++e) {
      std::vector<double> plus(n), minus(n);
      for (int sign : {1, -1}) {
        std::vector<float> moved = saved;
        moved[e] += static_cast<float>(sign) * h;
        p.detach().copy_(Tensor::from_vector(moved, p.shape(), device()));
        for (int32_t i = 0; i < n; ++i) (sign > 0 ? plus : minus)[i] = task.loss_of(i);
      }
      p.detach().copy_(Tensor::from_vector(saved, p.shape(), device()));
      for (int64_t i = 0; i < n; ++i) {
        const double g = (plus[i] - minus[i]) / (2.0 * h);
        fd[i] += g * g;
      }
    }
  }
  const std::vector<float> norms =
      per_example_gradient_norms(ctx, arange(n, device())).to(Device::cpu()).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const double want = std::sqrt(fd[i]);
    EXPECT_GT(want, 1e-2) << "example " << i;
    EXPECT_NEAR(norms[i], want, 3e-3 * want) << "example " << i;
  }
}

TEST_P(GradientNorm, RejectsMissingGradientsAndBadIndices) {
  SoftmaxClassifier m(6, 3, 3, 5, device());
  TinyTask task = linear_task(m);
  ScoringContext ctx = task.context();
  const Tensor idx = arange(3, device());
  {
    NoGradGuard no_grad;
    EXPECT_TRUE(testing::throws_error([&] { per_example_gradient_norms(ctx, idx); }, "a NoGradGuard is alive"));
  }
  EXPECT_THROW(per_example_gradient_norms(ctx, Tensor::zeros({3}, DType::F32, device())), Error);
  ctx.loss_gradient = nullptr;
  EXPECT_TRUE(testing::throws_error([&] { per_example_gradient_norms(ctx, idx); }, "no loss_gradient function"));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(GradientNorm);

// τ = sqrt(B Σ s²) / Σ s in double.
double tau_of(const std::vector<double>& s) {
  double sum = 0, sum_sq = 0;
  for (double v : s) {
    sum += v;
    sum_sq += v * v;
  }
  return std::sqrt(static_cast<double>(s.size()) * sum_sq) / sum;
}

std::vector<double> host_norms(const ScoringContext& ctx, const std::vector<int32_t>& indices, Device device) {
  const Tensor idx = Tensor::from_vector(indices, {static_cast<int64_t>(indices.size())}, device);
  const std::vector<float> v = per_example_gradient_norms(ctx, idx).to(Device::cpu()).to_vector<float>();
  return {v.begin(), v.end()};
}

class GradientNormSampler : public testing::DeviceTest {
 protected:
  ImportanceOptions options(float tau_th, float smoothing = 0.f) const {
    ImportanceOptions o;
    o.score = ScoreKind::GradientNorm;
    o.batch = 8;
    o.presample = 16;
    o.tau_th = tau_th;
    o.presample_smoothing = smoothing;
    o.seed = 7;
    return o;
  }
};

// Importance sampling on (τ_th < 0 < τ): the B pre-sampled examples are scored by B one-example gradient passes and
// no logits pass, and each draw's weight is (Σ_j s_j / B) / s_i with s the exact norms (plus the smoothing constant,
// the second time round). The weights come from float32 prefix sums of 16 values: rtol 1e-4.
TEST_P(GradientNormSampler, WeighsByExactNormsOfThePresample) {
  SoftmaxClassifier m(64, 6, 5, 13, device());
  for (float smoothing : {0.f, 0.5f}) {
    TinyTask task = linear_task(m);
    ScoringContext ctx = task.context();
    int logits_calls = 0;
    const auto logits = ctx.logits;
    ctx.logits = [&](const Tensor& idx) {
      ++logits_calls;
      return logits(idx);
    };
    ImportanceSampler sampler(options(-1.f, smoothing));
    EXPECT_EQ(sampler.name(), "gradient-norm");
    const Selection sel = sampler.select(ctx);
    ASSERT_TRUE(sampler.importance_on());
    EXPECT_EQ(logits_calls, 0);
    ASSERT_EQ(task.requested.size(), 16u) << "one gradient pass per pre-sampled example";
    const std::vector<int32_t> candidates = task.requested;
    std::vector<double> s = host_norms(task.context(), candidates, device());
    const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    EXPECT_GT(*hi, 1.2 * *lo) << "norms too alike for the weights to tell them apart";
    for (double& v : s) v += smoothing;
    double total = 0;
    for (double v : s) total += v;
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    const std::vector<float> w = sel.weights.to_vector<float>();
    ASSERT_EQ(idx.size(), 8u);
    for (size_t j = 0; j < idx.size(); ++j) {
      const auto at = std::find(candidates.begin(), candidates.end(), idx[j]);
      ASSERT_NE(at, candidates.end()) << "draw " << j << " was not pre-sampled";
      const double want = total / 16.0 / s[static_cast<size_t>(at - candidates.begin())];
      EXPECT_NEAR(w[j], want, 1e-4 * want) << "smoothing " << smoothing << ", draw " << j;
    }
    // τ_new is the pre-sample's: folded in at the next select() with a_τ = 0.9.
    sampler.select(ctx);
    EXPECT_NEAR(sampler.tau(), 0.1 * tau_of(s), 1e-5 * tau_of(s)) << "smoothing " << smoothing;
  }
}

// While τ <= τ_th the step is uniform, and τ_new comes from the exact norms of the b uniform examples, computed in
// select() (Note [exact-norm sampler]); observe() adds nothing.
TEST_P(GradientNormSampler, UniformPhaseTakesTauFromExactNormsOfTheBatch) {
  SoftmaxClassifier m(64, 6, 5, 17, device());
  TinyTask task = linear_task(m);
  const ScoringContext ctx = task.context();
  ImportanceSampler sampler(options(1e9f));
  const Selection sel = sampler.select(ctx);
  EXPECT_FALSE(sampler.importance_on());
  for (float v : sel.weights.to_vector<float>()) ASSERT_EQ(v, 1.f);
  const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
  EXPECT_EQ(task.requested, idx);
  {
    NoGradGuard no_grad;
    const Tensor logits = linear(index_select(m.x, sel.indices), m.w, m.b);
    const Tensor labels = index_select(m.y, sel.indices);
    sampler.observe(sel, logits, labels, cross_entropy(logits, labels));
  }
  sampler.select(ctx);
  const double tau = tau_of(host_norms(ctx, idx, device()));
  EXPECT_GT(tau, 1.01);
  EXPECT_NEAR(sampler.tau(), 0.1 * tau, 1e-5 * tau);
}

// A checkpoint taken between steps (τ_new pending) continues bit for bit.
TEST_P(GradientNormSampler, ResumesFromCheckpointExactly) {
  SoftmaxClassifier m(64, 6, 5, 19, device());
  TinyTask task = linear_task(m);
  const ScoringContext ctx = task.context();
  for (float tau_th : {-1.f, 1e9f}) {
    ImportanceSampler first(options(tau_th)), straight(options(tau_th));
    first.select(ctx);
    straight.select(ctx);
    CheckpointState state;
    first.save_state(state, "selector.");
    ImportanceSampler resumed(options(tau_th));
    resumed.load_state(state, "selector.");
    for (int step = 0; step < 2; ++step) {
      const Selection a = resumed.select(ctx), b = straight.select(ctx);
      EXPECT_EQ(a.indices.to_vector<int32_t>(), b.indices.to_vector<int32_t>()) << "step " << step;
      EXPECT_EQ(a.weights.to_vector<float>(), b.weights.to_vector<float>()) << "step " << step;
      EXPECT_EQ(resumed.stats(), straight.stats()) << "step " << step;
    }
    EXPECT_GT(resumed.tau(), 0.f);
  }
}

TEST_P(GradientNormSampler, BuiltByNameWithoutHistoryVariant) {
  SelectorOptions o;
  o.batch = 8;
  o.presample = 16;
  EXPECT_EQ(make_selector("gradient-norm", o)->name(), "gradient-norm");
  o.score_source = "history";
  EXPECT_TRUE(testing::throws_error([&] { make_selector("gradient-norm", o); }, "gradient-norm has no history variant"));
  o = SelectorOptions{};
  o.batch = 8;
  o.presample = 16;
  SoftmaxClassifier m(32, 4, 3, 23, device());
  TinyTask task = linear_task(m);
  ScoringContext ctx = task.context();
  ctx.loss_gradient = nullptr;
  o.tau_th = -1.f;
  std::unique_ptr<Selector> sel = make_selector("gradient-norm", o);
  EXPECT_TRUE(testing::throws_error([&] { sel->select(ctx); }, "no loss_gradient function"));
  EXPECT_TRUE(testing::throws_error([&] { compute_scores(ScoreKind::GradientNorm, m.x, m.y); },
                                    "gradient-norm score needs the model's per-example gradients"));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(GradientNormSampler);

}  // namespace
}  // namespace sieve

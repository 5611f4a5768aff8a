// CREST (sampling/crest.h): the quadratic loss model against a quadratic function, and the selector on a linear
// softmax classifier over a small random data set: valid batches and weights, re-selection when the model is wrong,
// dropping learned examples, and checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops.h"
#include "sampling/crest.h"
#include "sampling/make_selector.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// f(w) = c + bᵀw + ½ wᵀ A w on one parameter vector, evaluated on the host in double.
struct QuadraticFunction {
  int64_t n;
  std::vector<double> a;  // [n, n], symmetric
  std::vector<double> b;
  double c = 1.5;
  Tensor w;

  double value(const std::vector<float>& x) const {
    double f = c;
    for (int64_t i = 0; i < n; ++i) {
      f += b[i] * x[i];
      for (int64_t j = 0; j < n; ++j) f += 0.5 * x[i] * a[i * n + j] * x[j];
    }
    return f;
  }
  LossGradient loss_gradient() const {
    const std::vector<float> x = w.detach().to(Device::cpu()).to_vector<float>();
    std::vector<float> g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      double gi = b[i];
      for (int64_t j = 0; j < n; ++j) gi += a[i * n + j] * x[j];
      g[i] = static_cast<float>(gi);
    }
    return {Tensor::scalar(static_cast<float>(value(x)), w.device()), {Tensor::from_vector(g, {n}, w.device())}};
  }
};

QuadraticFunction make_quadratic(int64_t n, double coupling, uint64_t seed, Device device) {
  QuadraticFunction q;
  q.n = n;
  const std::vector<float> diag = testing::random_tensor({n}, seed, Device::cpu(), 0.5f, 2.f).to_vector<float>();
  const std::vector<float> off = testing::random_tensor({n, n}, seed + 1, Device::cpu()).to_vector<float>();
  const std::vector<float> lin = testing::random_tensor({n}, seed + 2, Device::cpu()).to_vector<float>();
  q.a.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    q.a[i * n + i] = diag[i];
    for (int64_t j = 0; j < i; ++j) q.a[i * n + j] = q.a[j * n + i] = coupling * off[i * n + j];
  }
  q.b.assign(lin.begin(), lin.end());
  q.w = testing::random_tensor({n}, seed + 3, device);
  return q;
}

class QuadraticModel : public testing::DeviceTest {};

// With a diagonal Hessian every probe gives z ⊙ Hz = diag(A) exactly, so F is f itself (but for eps = 1e-4 in h).
TEST_P(QuadraticModel, EqualsASeparableQuadratic) {
  QuadraticFunction q = make_quadratic(40, 0.0, 70, device());
  HutchinsonEstimator est({q.w});
  Generator gen(71);
  const QuadraticLossModel model = fit_quadratic_model({q.w}, {[&] { return q.loss_gradient(); },
                                                              [&] { return q.loss_gradient(); }}, est, gen);
  const std::vector<float> w0 = q.w.to(Device::cpu()).to_vector<float>();
  EXPECT_NEAR(model.predict({q.w}), q.value(w0), 1e-5 * std::abs(q.value(w0)));
  for (float scale : {1e-2f, 1e-1f, 1.f}) {
    Tensor moved = add(q.w, testing::random_tensor({40}, 72, device(), -scale, scale));
    const double truth = q.value(moved.to(Device::cpu()).to_vector<float>());
    // float32 sums of 40 terms of size ~1 and the eps term ½ 1e-4 ‖δ‖²: below 1e-4 of f.
    EXPECT_NEAR(model.predict({moved}), truth, 1e-4 * std::abs(truth) + 1e-4) << "scale " << scale;
  }
}

// With coupling, F(δ) − f(w0 + δ) = ½ δᵀ(diag(h) − A)δ: second order in δ, and bounded by the off-diagonal mass
// (h_i lies within Σ_{j≠i} |A_ij| of A_ii, as every probe value does). A wrong gradient would leave a first-order
// error, far above the bound for small δ.
TEST_P(QuadraticModel, PredictsCoupledQuadraticToSecondOrder) {
  const int64_t n = 30;
  QuadraticFunction q = make_quadratic(n, 0.01, 80, device());
  HutchinsonEstimator est({q.w});
  Generator gen(81);
  std::vector<LossGradientFn> probes(5, [&] { return q.loss_gradient(); });
  const QuadraticLossModel model = fit_quadratic_model({q.w}, probes, est, gen);
  for (float scale : {1e-3f, 1e-2f, 1e-1f}) {
    const Tensor delta = testing::random_tensor({n}, 82, device(), -scale, scale);
    const std::vector<float> d = delta.to(Device::cpu()).to_vector<float>();
    double bound = 0;
    for (int64_t i = 0; i < n; ++i) {
      double row = 0;
      for (int64_t j = 0; j < n; ++j)
        if (j != i) {
          row += std::abs(q.a[i * n + j]);
          bound += 0.5 * std::abs(q.a[i * n + j] * d[i] * d[j]);
        }
      bound += 0.5 * (row + 1e-4) * d[i] * d[i];
    }
    const Tensor moved = add(q.w, delta);
    const double truth = q.value(moved.to(Device::cpu()).to_vector<float>());
    EXPECT_LE(std::abs(model.predict({moved}) - truth), bound + 2e-6 * std::abs(truth)) << "scale " << scale;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(QuadraticModel);

// A linear softmax classifier on N random examples of C classes whose features carry the label, trained by hand.
struct LinearTask {
  int64_t n, d, c;
  Device device;
  Tensor x, y, w, b;
  int64_t scored = 0, gradient_calls = 0;

  LinearTask(int64_t n_, int64_t d_, int64_t c_, uint64_t seed, Device dev, float signal = 1.f)
      : n(n_), d(d_), c(c_), device(dev) {
    y = testing::random_labels(n, static_cast<int>(c), seed, dev);
    std::vector<float> xs = testing::random_tensor({n, d}, seed + 1, Device::cpu()).to_vector<float>();
    const std::vector<int32_t> ys = y.to(Device::cpu()).to_vector<int32_t>();
    for (int64_t i = 0; i < n; ++i) xs[i * d + ys[i] % d] += signal;
    x = Tensor::from_vector(xs, {n, d}, dev);
    w = testing::random_tensor({c, d}, seed + 2, dev, -0.1f, 0.1f).set_requires_grad();
    b = Tensor::zeros({c}, DType::F32, dev).set_requires_grad();
  }
  ScoringContext context() {
    ScoringContext ctx;
    ctx.labels = y;
    ctx.dataset_size = n;
    ctx.device = device;
    ctx.parameters = {w, b};
    ctx.logits = [this](const Tensor& idx) {
      NoGradGuard no_grad;
      scored += idx.numel();
      return linear(index_select(x, idx), w, b);
    };
    ctx.loss_gradient = [this](const Tensor& idx, const Tensor& weights) {
      ++gradient_calls;
      w.zero_grad();
      b.zero_grad();
      Tensor loss = weighted_mean(cross_entropy(linear(index_select(x, idx), w, b), index_select(y, idx)), weights);
      loss.backward();
      LossGradient r{loss.detach(), {w.grad(), b.grad()}};
      w.zero_grad();
      b.zero_grad();
      return r;
    };
    return ctx;
  }
  // One SGD step on the selection, as the training loop would.
  void train(const Selection& s, float lr) {
    Tensor loss = weighted_mean(cross_entropy(linear(index_select(x, s.indices), w, b), index_select(y, s.indices)),
                                s.weights);
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    Tensor wd = w.detach(), bd = b.detach();
    axpy_(wd, -lr, w.grad());
    axpy_(bd, -lr, b.grad());
    w.zero_grad();
    b.zero_grad();
  }
};

std::map<std::string, double> stats_of(const Selector& s) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : s.stats()) out[k] = v;
  return out;
}

CrestOptions small_options(uint64_t seed) {
  CrestOptions o;
  o.batch = 16;
  o.subsets = 3;
  o.subset_size = 64;
  o.warmup_epochs = 0.f;  // select from the first step
  o.seed = seed;
  return o;
}

class Crest : public testing::DeviceTest {};

TEST_P(Crest, SelectsValidWeightedBatchesFromItsCoresets) {
  LinearTask task(400, 8, 4, 90, device());
  ScoringContext ctx = task.context();
  CrestSelector crest(small_options(91));
  EXPECT_EQ(crest.name(), "crest");
  std::set<int32_t> seen;
  for (int step = 0; step < 6; ++step) {
    const Selection s = crest.select(ctx);
    ASSERT_EQ(s.indices.numel(), 16);
    ASSERT_EQ(s.weights.numel(), 16);
    EXPECT_EQ(s.indices.dtype(), DType::I32);
    EXPECT_EQ(s.indices.device(), device());
    for (int32_t i : s.indices.to(Device::cpu()).to_vector<int32_t>()) {
      EXPECT_GE(i, 0);
      EXPECT_LT(i, 400);
      seen.insert(i);
    }
    for (float v : s.weights.to(Device::cpu()).to_vector<float>()) EXPECT_TRUE(std::isfinite(v) && v > 0.f) << v;
    task.train(s, 0.05f);
  }
  const auto st = stats_of(crest);
  EXPECT_GE(st.at("crest_selections"), 1);
  EXPECT_GE(st.at("crest_gradient_evals"), 2 * 3);  // two per probe, one probe per coreset, P = 3 at first
  EXPECT_GT(task.scored, 0);
  // The coreset union holds P b = 48 examples: six batches of 16 revisit some of them (two passes).
  EXPECT_LE(seen.size(), 48u * static_cast<size_t>(st.at("crest_selections")));
  // Weighted coreset losses are normalised to mean 1 over each coreset: so over the union, whose 48 examples the
  // first three batches cover exactly once.
  CrestOptions keep = small_options(91);
  keep.tau = 1e6f;  // no re-selection: the three batches are one pass over one union
  CrestSelector again(keep);
  LinearTask fresh(400, 8, 4, 90, device());
  ScoringContext ctx2 = fresh.context();
  double total = 0;
  for (int step = 0; step < 3; ++step)
    for (float v : again.select(ctx2).weights.to(Device::cpu()).to_vector<float>()) total += v;
  EXPECT_NEAR(total / 48.0, 1.0, 1e-4);
}

TEST_P(Crest, SelectsAgainWhenTheQuadraticModelIsWrong) {
  LinearTask task(400, 8, 4, 100, device());
  ScoringContext ctx = task.context();
  CrestOptions o = small_options(101);
  o.tau = 1e6f;  // the model is never wrong enough
  CrestSelector patient(o);
  for (int step = 0; step < 5; ++step) task.train(patient.select(ctx), 0.05f);
  EXPECT_EQ(patient.selections(), 1);
  EXPECT_EQ(stats_of(patient).at("crest_checks"), 4);  // T1 = 1: a check before every step but the first
  EXPECT_EQ(stats_of(patient).at("crest_gradient_evals"), 2 * 3);  // one selection, P = 3 probes of two each

  // A large move of the parameters leaves the quadratic model far from the loss: the next check selects again.
  LinearTask other(400, 8, 4, 100, device());
  ScoringContext ctx2 = other.context();
  CrestSelector crest(small_options(101));
  crest.select(ctx2);
  ASSERT_EQ(crest.selections(), 1);
  Tensor wd = other.w.detach();
  axpy_(wd, 1.f, testing::random_tensor({4, 8}, 102, device(), 3.f, 6.f));
  crest.select(ctx2);
  EXPECT_EQ(crest.selections(), 2);
  EXPECT_GT(crest.last_relative_error(), 0.1);
}

TEST_P(Crest, DropsLearnedExamples) {
  // Features that carry the label strongly, and a classifier that already separates them: every loss is tiny.
  LinearTask task(400, 4, 4, 110, device(), 50.f);
  std::vector<float> eye(16, 0.f);
  for (int i = 0; i < 4; ++i) eye[i * 4 + i] = 1.f;
  task.w.detach().copy_(Tensor::from_vector(eye, {4, 4}, device()));
  ScoringContext ctx = task.context();
  CrestOptions o = small_options(111);
  o.subset_size = 200;
  o.subsets = 2;
  o.drop_learned = true;
  o.drop_window = 1;
  o.drop_interval = 3;
  o.min_active = 100;
  o.tau = 1e-9f;  // select (and so record losses) at every check
  CrestSelector crest(o);
  for (int step = 0; step < 7; ++step) crest.select(ctx);
  EXPECT_LT(crest.active_size(), 400);
  EXPECT_GE(crest.active_size(), 100);
  EXPECT_GT(stats_of(crest).at("crest_dropped"), 0);

  CrestOptions off = o;
  off.drop_learned = false;
  CrestSelector keeps(off);
  for (int step = 0; step < 7; ++step) keeps.select(ctx);
  EXPECT_EQ(keeps.active_size(), 400);
}

TEST_P(Crest, ContinuesExactlyFromItsSavedState) {
  LinearTask task(300, 6, 3, 120, device());
  ScoringContext ctx = task.context();
  CrestOptions o = small_options(121);
  o.tau = 0.05f;
  CrestSelector a(o);
  for (int step = 0; step < 4; ++step) task.train(a.select(ctx), 0.1f);
  CheckpointState state;
  a.save_state(state, "selector.");
  CrestSelector b(o);
  b.load_state(state, "selector.");
  for (int step = 0; step < 4; ++step) {
    const Selection sa = a.select(ctx);
    const Selection sb = b.select(ctx);
    EXPECT_EQ(sa.indices.to(Device::cpu()).to_vector<int32_t>(), sb.indices.to(Device::cpu()).to_vector<int32_t>());
    EXPECT_EQ(sa.weights.to(Device::cpu()).to_vector<float>(), sb.weights.to(Device::cpu()).to_vector<float>());
    task.train(sa, 0.1f);
  }
  EXPECT_EQ(stats_of(a), stats_of(b));
}

// Note [crest warm-up]: ⌈epochs N / b⌉ uniform batches with unit weights, nothing scored, then the first selection.
TEST_P(Crest, WarmsUpOnUniformBatchesBeforeTheFirstSelection) {
  LinearTask task(400, 8, 4, 90, device());
  ScoringContext ctx = task.context();
  CrestOptions o = small_options(95);
  o.warmup_epochs = 0.5f;  // ⌈0.5 · 400 / 16⌉ = 13 steps
  CrestSelector crest(o);
  for (int step = 0; step < 13; ++step) {
    const Selection s = crest.select(ctx);
    ASSERT_EQ(s.indices.numel(), 16);
    for (float v : s.weights.to(Device::cpu()).to_vector<float>()) ASSERT_EQ(v, 1.f);
    ASSERT_EQ(crest.selections(), 0) << "step " << step;
  }
  EXPECT_EQ(task.scored, 0);
  crest.select(ctx);
  EXPECT_EQ(crest.selections(), 1);
  EXPECT_GT(task.scored, 0);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Crest);

TEST(CrestErrors, ReadableMessages) {
  CrestOptions o;
  o.tau = 0.f;
  EXPECT_TRUE(testing::throws_error([&] { CrestSelector s(o); }, {"--crest-tau", "positive", "0"}));
  LinearTask task(100, 4, 2, 130, Device::cpu());
  ScoringContext ctx = task.context();
  CrestOptions big = small_options(131);
  big.subset_size = 8;  // smaller than the batch
  CrestSelector s(big);
  EXPECT_TRUE(testing::throws_error([&] { s.select(ctx); }, {"r = 8", "b = 16"}));
  ctx.loss_gradient = nullptr;
  CrestSelector t(small_options(132));
  EXPECT_TRUE(testing::throws_error([&] { t.select(ctx); }, "no loss_gradient"));
  SelectorOptions so;
  EXPECT_EQ(make_selector("crest", so)->name(), "crest");
}

TEST(CrestFeatures, AreSoftmaxMinusOneHot) {
  const Tensor logits = testing::random_tensor({5, 3}, 140, Device::cpu(), -2.f, 2.f);
  const Tensor labels = testing::random_labels(5, 3, 141);
  const std::vector<float> p = softmax(logits).to_vector<float>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  std::vector<float> expected = p;
  for (int i = 0; i < 5; ++i) expected[i * 3 + y[i]] -= 1.f;
  EXPECT_TRUE(testing::all_close(logit_gradients(logits, labels).to_vector<float>(), expected, 1e-6f, 1e-5f));
}

}  // namespace
}  // namespace sieve

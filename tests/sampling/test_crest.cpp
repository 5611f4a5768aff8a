// CREST (sampling/crest.h): the quadratic loss model against a quadratic function, and the selector on a linear
// softmax classifier over a small random data set: valid batches and weights, re-selection when the model is wrong,
// dropping learned examples, and checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops.h"
#include "sampling/crest.h"
#include "sampling/loss_history.h"
#include "sampling/make_selector.h"
#include "tests/sampling/linear_task.h"
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

using testing::LinearTask;

using testing::stat;

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
  // The weights are normalised to mean 1 over the union of the coresets (as the reference does), whose 48 examples
  // the first three batches cover exactly once.
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

// Note [crest epoch]: T1 = ⌈h ‖h_0‖ / ‖h_ℓ‖⌉ and P = min(⌈b_P T1⌉, E) after every selection but the first, the next
// check T1 steps later, and that selection scoring P subsets.
TEST_P(Crest, AdaptsT1AndPFromTheCurvature) {
  for (const float train_frac : {1.f, 0.1f}) {
    LinearTask task(400, 8, 4, 150, device());
    ScoringContext ctx = task.context();
    CrestOptions o = small_options(151);
    o.tau = 1e-9f;          // every check selects again
    o.interval_mul = 3.7f;  // h: T1 well above 1
    o.subsets_mul = 2.5f;   // b_P: ⌈b_P T1⌉ is not a multiple of T1
    o.train_frac = train_frac;
    CrestSelector crest(o);
    task.train(crest.select(ctx), 0.05f);
    // E = ⌈⌊train_frac 400⌋ / 16⌉: 25, or 3 (which caps P).
    const int64_t epoch = train_frac == 1.f ? 25 : 3;
    EXPECT_EQ(crest.epoch_steps(), epoch);
    ASSERT_EQ(crest.selections(), 1);
    EXPECT_EQ(crest.check_interval(), 1) << "the first selection keeps T1 and P";
    EXPECT_EQ(crest.subsets(), 3);
    const double h0 = crest.model().hessian_norm();
    int64_t t1 = 1, p = 3;
    for (int selection = 2; selection <= 4; ++selection) {
      // T1 - 1 steps on the coresets without a check, then the check that selects again.
      for (int64_t j = 1; j < t1; ++j) {
        const size_t calls = task.logits_calls.size();
        task.train(crest.select(ctx), 0.05f);
        ASSERT_EQ(task.logits_calls.size(), calls) << "no check before T1 steps";
      }
      const size_t calls = task.logits_calls.size();
      task.train(crest.select(ctx), 0.05f);
      ASSERT_EQ(crest.selections(), selection);
      ASSERT_EQ(task.logits_calls.size(), calls + 2) << "the check, then the selection's scoring pass";
      EXPECT_EQ(static_cast<int64_t>(task.logits_calls.back().size()), p * 64) << "P subsets of r = 64";
      const double hl = crest.model().hessian_norm();
      ASSERT_GT(hl, 0.0);
      t1 = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(3.7f) * h0 / hl)));
      p = std::min<int64_t>(static_cast<int64_t>(std::ceil(static_cast<double>(2.5f) * static_cast<double>(t1))), epoch);
      EXPECT_EQ(crest.check_interval(), t1) << "selection " << selection << ", h0 " << h0 << ", h " << hl;
      EXPECT_EQ(crest.subsets(), p) << "selection " << selection;
    }
    EXPECT_GT(t1, 1) << "the test must exercise T1 > 1";
    if (epoch == 25) EXPECT_LT(p, epoch) << "P below the cap";
    if (epoch == 3) EXPECT_EQ(p, 3) << "P capped at E";
  }
}

// Features that carry the label strongly and a classifier that separates them: every loss is tiny (~e^-49), except
// for the examples i % 5 == 0, whose signal sits on a wrong class (losses ~50). Nothing is trained, so each example's
// loss never changes and which examples a drop removes follows from which were scored.
LinearTask separated_task(Device device) {
  LinearTask task(400, 4, 4, 110, device, 50.f);
  std::vector<float> x = task.x.to(Device::cpu()).to_vector<float>();
  const std::vector<int32_t> y = task.y.to(Device::cpu()).to_vector<int32_t>();
  for (int64_t i = 0; i < 400; i += 5) {
    x[i * 4 + y[i] % 4] -= 50.f;
    x[i * 4 + (y[i] + 1) % 4] += 50.f;
  }
  task.x = Tensor::from_vector(x, {400, 4}, device);
  std::vector<float> eye(16, 0.f);
  for (int i = 0; i < 4; ++i) eye[i * 4 + i] = 1.f;
  task.w.detach().copy_(Tensor::from_vector(eye, {4, 4}, device));
  return task;
}

CrestOptions dropping_options(uint64_t seed) {
  CrestOptions o = small_options(seed);
  o.subset_size = 40;  // ⌈r / C⌉ = 10 per class
  o.subsets = 2;
  o.drop_learned = true;
  o.drop_interval = 6;  // E = ⌈⌊0.1 · 400⌋ / 16⌉ = 3
  o.tau = 1e-9f;        // select (and so record losses) at every check, T1 = 1: every step
  return o;
}

std::vector<int32_t> active_of(const CrestSelector& crest) {
  return crest.loss_history()->active().to(Device::cpu()).to_vector<int32_t>();
}

// Note [drop rules], the reference's: slot ⌊s / E⌋ mod 5 of every example scored at step s, and at the selections of
// the steps s with s mod 6 >= 6 - E the active set recomputed with all-or-nothing guards; the exact set each time.
TEST_P(Crest, DropsExactlyTheLearnedExamplesByTheReferenceRule) {
  LinearTask task = separated_task(device());
  ScoringContext ctx = task.context();
  CrestOptions o = dropping_options(111);
  o.min_active = 170;
  CrestSelector crest(o);
  const std::vector<int32_t> y = task.y.to(Device::cpu()).to_vector<int32_t>();
  std::vector<uint8_t> active(400, 1), learned(400, 0);
  std::vector<std::set<int>> slots(400);
  int drops = 0, global_guard = 0;
  for (int step = 0; step < 18; ++step) {
    crest.select(ctx);
    ASSERT_EQ(crest.selections(), step + 1);
    ASSERT_EQ(crest.epoch_steps(), 3);
    for (int32_t i : task.logits_calls.back()) {  // the selection's scoring pass
      ASSERT_TRUE(active[i]) << "example " << i << " was drawn after it was dropped";
      learned[i] = i % 5 != 0;
      slots[i].insert((step / 3) % 5);
    }
    if (step % 6 >= 3) {
      std::vector<uint8_t> next(400, 0);
      int64_t total = 0;
      for (int c = 0; c < 4; ++c) {
        int64_t kept = 0;
        for (int i = 0; i < 400; ++i) kept += y[i] == c && !learned[i];
        for (int i = 0; i < 400; ++i)
          if (y[i] == c) next[i] = kept > 10 ? !learned[i] : active[i];
      }
      for (uint8_t v : next) total += v;
      if (total > 170) {
        drops += next != active;
        active = next;
      } else {
        ++global_guard;
      }
    }
    std::vector<int32_t> expected;
    for (int32_t i = 0; i < 400; ++i)
      if (active[i]) expected.push_back(i);
    ASSERT_EQ(active_of(crest), expected) << "step " << step;
  }
  EXPECT_GT(drops, 0);
  EXPECT_GT(global_guard, 0) << "the test must reach the global guard";
  EXPECT_EQ(stat(crest, "crest_dropped"), 400.0 - static_cast<double>(crest.active_size()));
  // The ring: a loss in exactly the slots of the epochs in which the example was scored.
  const std::vector<float> ring = crest.loss_history()->state()[0].second.to(Device::cpu()).to_vector<float>();
  for (int i = 0; i < 400; ++i)
    for (int s = 0; s < 5; ++s)
      ASSERT_EQ(!std::isnan(ring[i * 5 + s]), slots[i].count(s) == 1) << "example " << i << ", slot " << s;
}

// Note [drop rules], sieve's window rule: every `window` recorded losses below alpha, a drop at each multiple of the
// interval; the exact set while its guards do not bind.
TEST_P(Crest, DropsExactlyTheLearnedExamplesByTheWindowRule) {
  LinearTask task = separated_task(device());
  ScoringContext ctx = task.context();
  CrestOptions o = dropping_options(112);
  o.drop_rule = "window";
  o.drop_window = 2;
  o.drop_interval = 4;
  o.min_active = 50;  // never binds: the 80 hard examples stay
  CrestSelector crest(o);
  std::vector<uint8_t> active(400, 1);
  std::vector<int> records(400, 0);
  for (int step = 0; step < 13; ++step) {
    crest.select(ctx);
    for (int32_t i : task.logits_calls.back()) {
      ASSERT_TRUE(active[i]) << "example " << i << " was drawn after it was dropped";
      ++records[i];  // an example in two of the P subsets is recorded twice
    }
    if (step > 0 && step % 4 == 0)
      for (int i = 0; i < 400; ++i) active[i] = active[i] && !(i % 5 != 0 && records[i] >= 2);
    std::vector<int32_t> expected;
    for (int32_t i = 0; i < 400; ++i)
      if (active[i]) expected.push_back(i);
    ASSERT_EQ(active_of(crest), expected) << "step " << step;
  }
  EXPECT_LT(crest.active_size(), 300);

  CrestOptions off = o;
  off.drop_learned = false;
  CrestSelector keeps(off);
  for (int step = 0; step < 7; ++step) keeps.select(ctx);
  EXPECT_EQ(keeps.active_size(), 400);
  EXPECT_EQ(keeps.loss_history(), nullptr);
}

TEST_P(Crest, ContinuesExactlyFromItsSavedState) {
  for (const char* drop : {"none", "reference", "window"}) {
    LinearTask task(300, 6, 3, 120, device());
    ScoringContext ctx = task.context();
    CrestOptions o = small_options(121);
    o.tau = 0.05f;
    if (std::string(drop) != "none") {  // drops before and after the checkpoint
      o.drop_learned = true;
      o.drop_rule = drop;
      o.drop_window = 2;
      o.drop_alpha = 10.f;  // everything scored is learned
      o.drop_interval = 3;
      o.min_active = 100;
      o.subset_size = 32;  // ⌈r / C⌉ = 11: the class guard leaves room to drop
      o.tau = 1e-9f;       // a selection, and so a record, every step
    }
    CrestSelector a(o);
    for (int step = 0; step < 4; ++step) task.train(a.select(ctx), 0.1f);
    CheckpointState state;
    a.save_state(state, "selector.");
    CrestSelector b(o);
    b.load_state(state, "selector.");
    for (int step = 0; step < 6; ++step) {
      const Selection sa = a.select(ctx);
      const Selection sb = b.select(ctx);
      EXPECT_EQ(sa.indices.to(Device::cpu()).to_vector<int32_t>(), sb.indices.to(Device::cpu()).to_vector<int32_t>())
          << drop;
      EXPECT_EQ(sa.weights.to(Device::cpu()).to_vector<float>(), sb.weights.to(Device::cpu()).to_vector<float>());
      task.train(sa, 0.1f);
    }
    EXPECT_EQ(stats_of(a), stats_of(b)) << drop;
    if (std::string(drop) != "none") {
      EXPECT_EQ(active_of(a), active_of(b)) << drop;
      EXPECT_LT(a.active_size(), 300) << drop << ": the run must drop";
    }
  }
}

// Note [crest warm-up]: ⌈warmup_epochs E⌉ uniform batches with unit weights, nothing scored, then the first selection;
// by default one CREST epoch E = ⌈⌊0.1 N⌋ / b⌉, the reference's step of its first selection.
TEST_P(Crest, WarmsUpOnUniformBatchesBeforeTheFirstSelection) {
  for (auto [train_frac, warmup, steps] : {std::tuple<float, float, int>{0.1f, 1.f, 3},    // E = ⌈40 / 16⌉ = 3
                                           std::tuple<float, float, int>{0.5f, 0.5f, 7}}) {  // ⌈0.5 ⌈200 / 16⌉⌉
    LinearTask task(400, 8, 4, 90, device());
    ScoringContext ctx = task.context();
    CrestOptions o = small_options(95);
    o.train_frac = train_frac;
    o.warmup_epochs = warmup;
    CrestSelector crest(o);
    for (int step = 0; step < steps; ++step) {
      const Selection s = crest.select(ctx);
      ASSERT_EQ(s.indices.numel(), 16);
      for (float v : s.weights.to(Device::cpu()).to_vector<float>()) ASSERT_EQ(v, 1.f);
      ASSERT_EQ(crest.selections(), 0) << "step " << step;
    }
    EXPECT_EQ(task.scored, 0);
    crest.select(ctx);
    EXPECT_EQ(crest.selections(), 1) << "train_frac " << train_frac;
    EXPECT_GT(task.scored, 0);
  }
  CrestOptions defaults;
  EXPECT_EQ(defaults.train_frac, 0.1f);
  EXPECT_EQ(defaults.warmup_epochs, 1.f);
  EXPECT_EQ(defaults.drop_rule, "reference");
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

// Note [drop rules]: the loss slots mean one thing under each rule, so a checkpoint of one rule does not resume under
// the other; one written before the rule was recorded holds the window rule's slots.
TEST(CrestCheckpoint, RefusesTheOtherDropRule) {
  CrestOptions window;
  window.drop_learned = true;
  window.drop_rule = "window";
  CrestOptions reference = window;
  reference.drop_rule = "reference";
  CheckpointState saved;
  CrestSelector(window).save_state(saved, "selector.");
  CrestSelector same(window);
  same.load_state(saved, "selector.");
  CrestSelector other(reference);
  EXPECT_TRUE(testing::throws_error([&] { other.load_state(saved, "selector."); },
                                    "a checkpoint of --drop-rule window, not of --drop-rule reference"));
  saved.metadata.erase("selector.drop_rule_reference");  // as written before the rule was recorded
  EXPECT_TRUE(testing::throws_error([&] { other.load_state(saved, "selector."); }, "--drop-rule window"));
  same.load_state(saved, "selector.");
}

}  // namespace
}  // namespace sieve

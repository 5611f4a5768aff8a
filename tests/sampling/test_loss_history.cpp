// CREST's dropping of learned examples: the loss ring, the drop test against a plain reference, the guards of
// Note [drop order], the compaction, checkpoints, and CPU against GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>
#include <vector>

#include "sampling/loss_history.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// A plain model of the history: every loss ever recorded per example, and the active set.
struct Reference {
  int window;
  std::vector<std::vector<float>> losses;
  std::vector<int32_t> active;

  Reference(int64_t n, int w) : window(w), losses(n) {
    active.resize(n);
    std::iota(active.begin(), active.end(), 0);
  }
  void record(const std::vector<int32_t>& idx, const std::vector<float>& l) {
    for (size_t j = 0; j < idx.size(); ++j) losses[idx[j]].push_back(l[j]);
  }
  bool learned(int32_t i, float alpha) const {
    const auto& h = losses[i];
    if (static_cast<int>(h.size()) < window) return false;
    for (size_t k = h.size() - window; k < h.size(); ++k)
      if (!(h[k] < alpha)) return false;
    return true;
  }
  float key(int32_t i) const {
    const auto& h = losses[i];
    return *std::max_element(h.end() - window, h.end());
  }
  // Note [drop order], written out plainly.
  int64_t drop(float alpha, const std::vector<int32_t>& y, int classes, int64_t min_per_class, int64_t min_active) {
    std::vector<int64_t> active_in(classes, 0);
    for (int32_t i : active) ++active_in[y[i]];
    std::vector<int32_t> cand;
    for (int32_t i : active)
      if (learned(i, alpha)) cand.push_back(i);
    std::sort(cand.begin(), cand.end(), [&](int32_t a, int32_t b) {
      return key(a) < key(b) || (key(a) == key(b) && a < b);
    });
    std::vector<int64_t> room(classes);
    for (int c = 0; c < classes; ++c) room[c] = std::max<int64_t>(0, active_in[c] - min_per_class);
    std::vector<int32_t> go;
    for (int32_t i : cand)
      if (room[y[i]] > 0) {
        --room[y[i]];
        go.push_back(i);
      }
    const int64_t limit = std::max<int64_t>(0, static_cast<int64_t>(active.size()) - min_active);
    if (static_cast<int64_t>(go.size()) > limit) go.resize(limit);
    std::vector<int32_t> kept;
    for (int32_t i : active)
      if (std::find(go.begin(), go.end(), i) == go.end()) kept.push_back(i);
    active = kept;
    return static_cast<int64_t>(go.size());
  }
};

// `steps` calls of record with distinct random indices each, losses mostly low for a third of the examples.
void record_random(LossHistory& h, Reference& ref, int64_t n, int steps, int64_t per_step, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> low(0.f, 0.1f), wide(0.f, 0.4f);
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  for (int s = 0; s < steps; ++s) {
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int32_t> idx(all.begin(), all.begin() + per_step);
    std::vector<float> l(per_step);
    for (int64_t j = 0; j < per_step; ++j) l[j] = idx[j] % 3 == 0 ? low(rng) * 1.05f : wide(rng);
    h.record(Tensor::from_vector(idx, {per_step}, h.device()), Tensor::from_vector(l, {per_step}, h.device()));
    ref.record(idx, l);
  }
}

void expect_partition(const std::vector<int32_t>& active, const std::vector<int32_t>& dropped, int64_t n) {
  EXPECT_TRUE(std::is_sorted(active.begin(), active.end()));
  EXPECT_EQ(std::adjacent_find(active.begin(), active.end()), active.end()) << "duplicates in the active set";
  std::vector<int32_t> both = active;
  both.insert(both.end(), dropped.begin(), dropped.end());
  std::sort(both.begin(), both.end());
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(both, all) << "active and dropped must partition the examples";
}

// Ring slot for slot (NaN where unseen), counts and active sets equal.
void expect_same_state(const LossHistory& actual, const LossHistory& expected) {
  const auto sa = actual.state(), se = expected.state();
  ASSERT_EQ(sa.size(), 3u);
  ASSERT_EQ(se.size(), 3u);
  const std::vector<float> ra = sa[0].second.to_vector<float>(), re = se[0].second.to_vector<float>();
  ASSERT_EQ(ra.size(), re.size());
  for (size_t k = 0; k < re.size(); ++k)
    ASSERT_TRUE(ra[k] == re[k] || (std::isnan(ra[k]) && std::isnan(re[k]))) << "ring slot " << k;
  for (size_t t = 1; t < 3; ++t) {
    EXPECT_EQ(sa[t].first, se[t].first);
    EXPECT_EQ(sa[t].second.to_vector<int32_t>(), se[t].second.to_vector<int32_t>()) << se[t].first;
  }
}

class LossHistoryTest : public testing::DeviceTest {};

TEST_P(LossHistoryTest, DropsExactlyTheExamplesWhoseLastWindowIsBelowAlpha) {
  const int64_t n = 300;
  const int window = 3;
  const float alpha = 0.1f;
  LossHistory h(n, window, device());
  Reference ref(n, window);
  const Tensor labels = testing::random_labels(n, 4, 5, device());
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  record_random(h, ref, n, 8, 120, 77);  // about 3.2 losses an example: some unseen, some short, some wrapped
  int64_t eligible = 0, unseen_short = 0;
  for (int64_t i = 0; i < n; ++i) {
    eligible += ref.learned(static_cast<int32_t>(i), alpha);
    unseen_short += static_cast<int64_t>(ref.losses[i].size()) < window;
  }
  ASSERT_GT(eligible, 10) << "the test data must contain learned examples";
  ASSERT_GT(unseen_short, 10) << "the test data must contain examples with short histories";
  const int64_t expected = ref.drop(alpha, y, 4, 0, 0);
  EXPECT_EQ(expected, eligible);
  EXPECT_EQ(h.drop_learned(alpha, labels, 4, 0, 0), expected);
  const std::vector<int32_t> active = h.active().to_vector<int32_t>();
  EXPECT_EQ(active, ref.active);
  EXPECT_EQ(h.active_size(), static_cast<int64_t>(ref.active.size()));
  std::vector<int32_t> dropped;
  for (int32_t i = 0; i < n; ++i)
    if (!std::binary_search(active.begin(), active.end(), i)) dropped.push_back(i);
  expect_partition(active, dropped, n);

  // More losses, a second drop from the compacted set; dropped examples stay dropped.
  record_random(h, ref, n, 6, 150, 78);
  const int64_t again = ref.drop(alpha, y, 4, 0, 0);
  EXPECT_EQ(h.drop_learned(alpha, labels, 4, 0, 0), again);
  EXPECT_EQ(h.active().to_vector<int32_t>(), ref.active);
}

TEST_P(LossHistoryTest, UnseenAndShortHistoriesAreNeverDropped) {
  const int64_t n = 20;
  LossHistory h(n, 4, device());
  const Tensor labels = Tensor::zeros({n}, DType::I32, device());
  EXPECT_EQ(h.drop_learned(1e30f, labels, 1, 0, 0), 0);
  // Three tiny losses for example 5 (one short of the window), four for example 6.
  for (int r = 0; r < 3; ++r)
    h.record(Tensor::from_vector<int32_t>({5, 6}, {2}, device()), Tensor::from_vector<float>({1e-3f, 2e-3f}, {2}, device()));
  EXPECT_EQ(h.drop_learned(1e30f, labels, 1, 0, 0), 0);
  h.record(Tensor::from_vector<int32_t>({6}, {1}, device()), Tensor::from_vector<float>({1e-3f}, {1}, device()));
  EXPECT_EQ(h.drop_learned(1e30f, labels, 1, 0, 0), 1);
  std::vector<int32_t> expected(n);
  std::iota(expected.begin(), expected.end(), 0);
  expected.erase(expected.begin() + 6);
  EXPECT_EQ(h.active().to_vector<int32_t>(), expected);
}

TEST_P(LossHistoryTest, RingWrapsAround) {
  const int window = 3;
  LossHistory h(4, window, device());
  const Tensor labels = Tensor::zeros({4}, DType::I32, device());
  // Example 1: high, high, high, low, low, low (the last window low: learned). Example 2: low x5, then high.
  const std::vector<float> l1 = {0.9f, 0.8f, 0.7f, 0.01f, 0.02f, 0.03f}, l2 = {0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.5f};
  for (size_t r = 0; r < l1.size(); ++r)
    h.record(Tensor::from_vector<int32_t>({1, 2}, {2}, device()), Tensor::from_vector<float>({l1[r], l2[r]}, {2}, device()));
  const auto state = h.state();
  const std::vector<float> ring = state[0].second.to_vector<float>();
  const std::vector<int32_t> count = state[1].second.to_vector<int32_t>();
  EXPECT_EQ(count, (std::vector<int32_t>{0, 6, 6, 0}));
  // Slot r mod window holds the r-th loss of the last round.
  for (int s = 0; s < window; ++s) {
    EXPECT_EQ(ring[1 * window + s], l1[3 + s]);
    EXPECT_EQ(ring[2 * window + s], l2[3 + s]);
    EXPECT_TRUE(std::isnan(ring[0 * window + s]));
  }
  EXPECT_EQ(h.drop_learned(0.1f, labels, 1, 0, 0), 1);
  EXPECT_EQ(h.active().to_vector<int32_t>(), (std::vector<int32_t>{0, 2, 3}));
}

TEST_P(LossHistoryTest, GuardsKeepTheHighestLossesAndFollowTheReference) {
  const int64_t n = 400;
  const int window = 2, classes = 3;
  const float alpha = 0.1f;
  for (auto [min_per_class, min_active] : {std::pair<int64_t, int64_t>{100, 0}, {0, 330}, {105, 345}, {0, 1000}}) {
    LossHistory h(n, window, device());
    Reference ref(n, window);
    const Tensor labels = testing::random_labels(n, classes, 12, device());
    const std::vector<int32_t> y = labels.to_vector<int32_t>();
    record_random(h, ref, n, 6, 300, 13);
    const int64_t before = h.active_size();
    std::vector<int64_t> class_size(classes, 0);
    for (int32_t v : y) ++class_size[v];
    const int64_t expected = ref.drop(alpha, y, classes, min_per_class, min_active);
    const int64_t got = h.drop_learned(alpha, labels, classes, min_per_class, min_active);
    EXPECT_EQ(got, expected) << "min_per_class " << min_per_class << ", min_active " << min_active;
    const std::vector<int32_t> active = h.active().to_vector<int32_t>();
    EXPECT_EQ(active, ref.active);
    EXPECT_GE(static_cast<int64_t>(active.size()), std::min(before, min_active));
    std::vector<int64_t> per_class(classes, 0);
    for (int32_t i : active) ++per_class[y[i]];
    for (int c = 0; c < classes; ++c) EXPECT_GE(per_class[c], std::min(min_per_class, class_size[c])) << "class " << c;
  }
}

TEST_P(LossHistoryTest, RepeatedIndexRecordsEveryLoss) {
  LossHistory h(3, 2, device());
  h.record(Tensor::from_vector<int32_t>({1, 1, 1}, {3}, device()),
           Tensor::from_vector<float>({0.01f, 0.02f, 0.03f}, {3}, device()));
  const std::vector<int32_t> count = h.state()[1].second.to_vector<int32_t>();
  EXPECT_EQ(count[1], 3);
  EXPECT_EQ(h.drop_learned(0.1f, Tensor::zeros({3}, DType::I32, device()), 1, 0, 0), 1);
}

TEST_P(LossHistoryTest, StateRoundTrip) {
  const int64_t n = 120;
  LossHistory a(n, 3, device());
  Reference ref(n, 3);
  const Tensor labels = testing::random_labels(n, 2, 3, device());
  record_random(a, ref, n, 5, 80, 4);
  a.drop_learned(0.1f, labels, 2, 0, 0);
  LossHistory b(n, 3, device());
  b.load_state(a.state());
  EXPECT_EQ(b.active().to_vector<int32_t>(), a.active().to_vector<int32_t>());
  // Both continue identically.
  Reference unused(n, 3);
  record_random(a, unused, n, 3, 80, 5);
  record_random(b, unused, n, 3, 80, 5);
  EXPECT_EQ(a.drop_learned(0.1f, labels, 2, 0, 0), b.drop_learned(0.1f, labels, 2, 0, 0));
  EXPECT_EQ(b.active().to_vector<int32_t>(), a.active().to_vector<int32_t>());
  expect_same_state(b, a);
  // Malformed states are refused with a readable message.
  LossHistory c(n, 4, device());
  EXPECT_TRUE(testing::throws_error([&] { c.load_state(a.state()); }, {"ring of shape [120, 4]", "[120, 3]"}));
  auto bad = a.state();
  bad[2].second = Tensor::from_vector<int32_t>({3, 2}, {2});
  EXPECT_TRUE(testing::throws_error([&] { b.load_state(bad); }, {"entry 1 is 2", "strictly ascending"}));
  bad.pop_back();
  EXPECT_TRUE(testing::throws_error([&] { b.load_state(bad); }, "named \"active\""));
}

TEST_P(LossHistoryTest, RejectsBadInput) {
  EXPECT_TRUE(testing::throws_error([&] { LossHistory(10, 0, device()); }, "window must be >= 1"));
  LossHistory h(10, 2, device());
  EXPECT_TRUE(testing::throws_error(
      [&] { h.record(Tensor::zeros({3}, DType::I32, device()), Tensor::zeros({4}, DType::F32, device())); },
      {"one loss per index (3)", "[4]"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { h.drop_learned(0.1f, Tensor::zeros({9}, DType::I32, device()), 2, 0, 0); }, {"expected 10 labels", "9"}));
}

// The reference's rule (trainers/crest_trainer.py, _drop_learned_data), written out as plainly as the reference writes
// it: slots[w][i] (NaN: never written; the reference writes -1), the active set as a sorted list.
struct ReferenceRule {
  int window;
  std::vector<std::vector<float>> slots;
  std::vector<int32_t> active;

  ReferenceRule(int64_t n, int w) : window(w), slots(w, std::vector<float>(n, std::nanf(""))) {
    active.resize(n);
    std::iota(active.begin(), active.end(), 0);
  }
  void record_at(const std::vector<int32_t>& idx, const std::vector<float>& l, int slot) {
    for (size_t j = 0; j < idx.size(); ++j) slots[slot][idx[j]] = l[j];
  }
  // order_ = examples with a loss > alpha in some slot, plus examples with no loss >= 0 in any slot.
  bool kept(int32_t i, float alpha) const {
    bool above = false, recorded = false;
    for (int w = 0; w < window; ++w) {
      above = above || slots[w][i] > alpha;
      recorded = recorded || slots[w][i] >= 0.f;
    }
    return above || !recorded;
  }
  void drop(float alpha, const std::vector<int32_t>& y, int classes, int64_t per_class_size, int64_t min_train_size) {
    std::vector<int32_t> order;
    for (int c = 0; c < classes; ++c) {
      std::vector<int32_t> class_new, class_current;
      for (size_t i = 0; i < y.size(); ++i)
        if (y[i] == c && kept(static_cast<int32_t>(i), alpha)) class_new.push_back(static_cast<int32_t>(i));
      for (int32_t i : active)
        if (y[i] == c) class_current.push_back(i);
      const auto& chosen = static_cast<int64_t>(class_new.size()) > per_class_size ? class_new : class_current;
      order.insert(order.end(), chosen.begin(), chosen.end());
    }
    std::sort(order.begin(), order.end());
    if (static_cast<int64_t>(order.size()) > min_train_size) active = order;
  }
};

// Random subsets of distinct examples written into slot (epoch mod window), losses mostly low for a third of them.
void record_epochs(LossHistory& h, ReferenceRule& ref, int64_t n, int first_epoch, int epochs, int64_t per_epoch,
                   uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> low(0.f, 0.1f), wide(0.f, 0.4f);
  std::vector<int32_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  for (int e = first_epoch; e < first_epoch + epochs; ++e) {
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int32_t> idx(all.begin(), all.begin() + per_epoch);
    std::vector<float> l(per_epoch);
    for (int64_t j = 0; j < per_epoch; ++j) l[j] = idx[j] % 3 == 0 ? low(rng) : wide(rng);
    const int slot = e % ref.window;
    h.record_at(Tensor::from_vector(idx, {per_epoch}, h.device()), Tensor::from_vector(l, {per_epoch}, h.device()),
                slot);
    ref.record_at(idx, l, slot);
  }
}

// Slot by slot, by hand: which examples go, and the class and global guards each all or nothing.
TEST_P(LossHistoryTest, ReferenceRuleDropsExactlyTheseExamples) {
  // Examples 0-5 of class 0, 6-9 of class 1; window 3, alpha 0.1.
  const std::vector<int32_t> y = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
  const Tensor labels = Tensor::from_vector(y, {10}, device());
  auto put = [&](LossHistory& h, std::vector<int32_t> idx, std::vector<float> l, int slot) {
    const auto m = static_cast<int64_t>(idx.size());
    h.record_at(Tensor::from_vector(idx, {m}, device()), Tensor::from_vector(l, {m}, device()), slot);
  };
  LossHistory h(10, 3, device());
  // 0: one low loss (learned). 1: low, then high in another slot (kept). 2: exactly alpha (learned: none above it).
  // 3: never recorded (kept). 4: low twice (learned). 5: high long ago, overwritten by a low loss in the same slot
  // (learned). 6, 7: low (learned); 8: high; 9: never recorded.
  put(h, {0, 1, 2, 4, 5, 6, 7, 8}, {0.05f, 0.01f, 0.1f, 0.02f, 0.9f, 0.01f, 0.02f, 0.5f}, 0);
  put(h, {1, 4}, {0.3f, 0.03f}, 2);
  put(h, {5}, {0.04f}, 0);
  const auto state = h.state();
  EXPECT_EQ(state[1].second.to_vector<int32_t>(), std::vector<int32_t>(10, 0)) << "record_at leaves the counts alone";
  // Class 0 keeps {1, 3}: 2 > 1 (min_per_class), so it shrinks to them; class 1 keeps {8, 9}, 2 > 1.
  EXPECT_EQ(h.drop_learned_reference(0.1f, labels, 2, 1, 3), 6);
  EXPECT_EQ(h.active().to_vector<int32_t>(), (std::vector<int32_t>{1, 3, 8, 9}));

  // The class guard: with min_per_class 2, neither class keeps more than 2, so both keep their current sets whole
  // (not the two highest, as the window rule would).
  LossHistory g(10, 3, device());
  g.load_state(state);
  EXPECT_EQ(g.drop_learned_reference(0.1f, labels, 2, 2, 0), 0);
  EXPECT_EQ(g.active_size(), 10);
  // Class 1 alone binds once class 0 keeps more: a third high loss in class 0.
  put(g, {0}, {0.7f}, 1);
  EXPECT_EQ(g.drop_learned_reference(0.1f, labels, 2, 2, 0), 3);
  EXPECT_EQ(g.active().to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 3, 6, 7, 8, 9}));
  // The global guard: the result must hold more than min_active examples, else nothing changes at all.
  LossHistory f(10, 3, device());
  f.load_state(state);
  EXPECT_EQ(f.drop_learned_reference(0.1f, labels, 2, 1, 4), 0);
  EXPECT_EQ(f.active_size(), 10);

  // The set is recomputed from the ring: a dropped example whose slot shows a high loss again is active again (CREST
  // never scores a dropped example, so there this does not happen; the rule itself allows it).
  put(h, {4}, {0.8f}, 1);
  EXPECT_EQ(h.drop_learned_reference(0.1f, labels, 2, 1, 3), -1);
  EXPECT_EQ(h.active().to_vector<int32_t>(), (std::vector<int32_t>{1, 3, 4, 8, 9}));
}

TEST_P(LossHistoryTest, ReferenceRuleFollowsThePlainReference) {
  const int64_t n = 600;
  const int window = 5, classes = 4;
  const float alpha = 0.1f;
  const Tensor labels = testing::random_labels(n, classes, 31, device());
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  // The data must exercise every branch: a class guard that binds for some classes and not others, a global guard
  // that binds and one that does not. About a quarter of the examples are never recorded and a third is learned.
  ReferenceRule probe(n, window);
  LossHistory scratch(n, window, device());
  record_epochs(scratch, probe, n, 0, 5, 150, 32);
  std::vector<int64_t> kept_per_class(classes, 0);
  int64_t kept = 0;
  for (int32_t i = 0; i < n; ++i)
    if (probe.kept(i, alpha)) {
      ++kept;
      ++kept_per_class[y[i]];
    }
  std::vector<int64_t> sorted = kept_per_class;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_LT(sorted[1], sorted[3]) << "the class counts must differ";
  const int64_t mixed = sorted[1];  // classes 0-1 of the sorted order keep their sets, the largest drops
  ASSERT_LT(kept, 480);
  ASSERT_GT(kept, 300);
  ASSERT_LT(kept, n - 50) << "the test data must contain learned examples";
  for (auto [per_class, min_active] :
       {std::pair<int64_t, int64_t>{10, 0}, {mixed, 0}, {sorted[3], 0}, {10, 480}, {10, 300}, {0, 0}}) {
    LossHistory h(n, window, device());
    ReferenceRule ref(n, window);
    // Eight epochs (the ring wraps), a drop after the fifth and after the eighth.
    record_epochs(h, ref, n, 0, 5, 150, 32);
    ref.drop(alpha, y, classes, per_class, min_active);
    const int64_t before = h.active_size();
    const int64_t change = h.drop_learned_reference(alpha, labels, classes, per_class, min_active);
    EXPECT_EQ(h.active().to_vector<int32_t>(), ref.active) << "guards " << per_class << ", " << min_active;
    EXPECT_EQ(change, before - h.active_size());
    record_epochs(h, ref, n, 5, 3, 150, 33);
    ref.drop(alpha, y, classes, per_class, min_active);
    h.drop_learned_reference(alpha, labels, classes, per_class, min_active);
    EXPECT_EQ(h.active().to_vector<int32_t>(), ref.active) << "guards " << per_class << ", " << min_active;
  }
}

TEST_P(LossHistoryTest, RecordAtWritesOneSlot) {
  LossHistory h(4, 3, device());
  h.record_at(Tensor::from_vector<int32_t>({2, 0}, {2}, device()), Tensor::from_vector<float>({0.5f, 0.25f}, {2}, device()),
              1);
  h.record_at(Tensor::from_vector<int32_t>({2}, {1}, device()), Tensor::from_vector<float>({0.75f}, {1}, device()), 1);
  const std::vector<float> ring = h.state()[0].second.to_vector<float>();
  for (int i = 0; i < 4; ++i)
    for (int s = 0; s < 3; ++s) {
      const float v = ring[i * 3 + s];
      if (i == 2 && s == 1) EXPECT_EQ(v, 0.75f);
      else if (i == 0 && s == 1) EXPECT_EQ(v, 0.25f);
      else EXPECT_TRUE(std::isnan(v)) << "example " << i << ", slot " << s;
    }
  EXPECT_TRUE(testing::throws_error(
      [&] { h.record_at(Tensor::zeros({1}, DType::I32, device()), Tensor::zeros({1}, DType::F32, device()), 3); },
      {"slot 3", "[0, 3)"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { h.drop_learned_reference(0.1f, Tensor::zeros({3}, DType::I32, device()), 1, 0, 0); },
      {"expected 4 labels", "3"}));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(LossHistoryTest);

TEST(LossHistoryCpu, RejectsIndexOutOfRange) {
  LossHistory h(10, 2, Device::cpu());
  EXPECT_TRUE(testing::throws_error(
      [&] { h.record(Tensor::from_vector<int32_t>({2, 10}, {2}), Tensor::from_vector<float>({0.1f, 0.2f}, {2})); },
      {"index 1 is 10", "[0, 10)"}));
}

class LossHistoryGpu : public testing::GpuTest {};

TEST_F(LossHistoryGpu, SameStateAndDropsAsCpu) {
  const int64_t n = 5000;
  const int window = 4, classes = 10;
  LossHistory c(n, window, Device::cpu()), g(n, window, Device::cuda(0));
  Reference rc(n, window), rg(n, window);
  const Tensor labels = testing::random_labels(n, classes, 50);
  for (int round = 0; round < 3; ++round) {
    record_random(c, rc, n, 6, 4000, 60 + round);
    record_random(g, rg, n, 6, 4000, 60 + round);
    for (auto [mpc, ma] : {std::pair<int64_t, int64_t>{0, 0}, {480, 0}, {0, 4000}}) {
      EXPECT_EQ(g.drop_learned(0.1f, labels.to(Device::cuda(0)), classes, mpc, ma),
                c.drop_learned(0.1f, labels, classes, mpc, ma));
      EXPECT_EQ(g.active().to_vector<int32_t>(), c.active().to_vector<int32_t>());
    }
  }
  expect_same_state(g, c);
}

TEST_F(LossHistoryGpu, ReferenceRuleSameAsCpu) {
  const int64_t n = 5000;
  const int window = 5, classes = 10;
  LossHistory c(n, window, Device::cpu()), g(n, window, Device::cuda(0));
  ReferenceRule ref(n, window), unused(n, window);
  const Tensor labels = testing::random_labels(n, classes, 70);
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  for (int round = 0; round < 3; ++round) {
    record_epochs(c, ref, n, 4 * round, 4, 1500, 80 + round);
    record_epochs(g, unused, n, 4 * round, 4, 1500, 80 + round);
    for (auto [mpc, ma] : {std::pair<int64_t, int64_t>{50, 0}, {330, 0}, {50, 4000}}) {
      ref.drop(0.1f, y, classes, mpc, ma);
      EXPECT_EQ(g.drop_learned_reference(0.1f, labels.to(Device::cuda(0)), classes, mpc, ma),
                c.drop_learned_reference(0.1f, labels, classes, mpc, ma));
      EXPECT_EQ(c.active().to_vector<int32_t>(), ref.active);
      EXPECT_EQ(g.active().to_vector<int32_t>(), ref.active);
    }
  }
  expect_same_state(g, c);
}

}  // namespace
}  // namespace sieve

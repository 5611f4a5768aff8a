// CREST's facility-location coreset: against brute force and a plain greedy written here, the class split of
// Note [class quotas], cluster weights, the gain kernel against its CPU twin, and CPU against GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <vector>

#include "sampling/facility_location.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::random_labels;
using testing::random_tensor;

// The reference's similarity, in double: exp(-||a - b|| / d).
double similarity(const std::vector<float>& x, int64_t dim, int64_t a, int64_t b) {
  double sq = 0.0;
  for (int64_t k = 0; k < dim; ++k) {
    const double d = static_cast<double>(x[a * dim + k]) - x[b * dim + k];
    sq += d * d;
  }
  return std::exp(-std::sqrt(sq) / static_cast<double>(dim));
}

// F(S) = sum over `rows` of the largest similarity to a member of S.
double objective(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& rows,
                 const std::vector<int64_t>& picks) {
  double total = 0.0;
  for (int64_t i : rows) {
    double best = 0.0;
    for (int64_t j : picks) best = std::max(best, similarity(x, dim, i, j));
    total += best;
  }
  return total;
}

// The textbook greedy over `rows`: k rounds, each adding the row of largest F(S + j) - F(S), ties to the lowest row.
std::vector<int64_t> plain_greedy(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& rows,
                                  int64_t k) {
  std::vector<int64_t> picks;
  for (int64_t r = 0; r < k; ++r) {
    const double base = objective(x, dim, rows, picks);
    int64_t best_row = -1;
    double best_gain = -1.0;
    for (int64_t j : rows) {
      if (std::find(picks.begin(), picks.end(), j) != picks.end()) continue;
      std::vector<int64_t> with = picks;
      with.push_back(j);
      const double gain = objective(x, dim, rows, with) - base;
      if (gain > best_gain) {  // rows ascend, so a tie keeps the lower row
        best_gain = gain;
        best_row = j;
      }
    }
    picks.push_back(best_row);
  }
  return picks;
}

std::vector<int64_t> rows_of_class(const std::vector<int32_t>& y, int32_t c) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] == c) rows.push_back(static_cast<int64_t>(i));
  return rows;
}

std::vector<int64_t> as_int64(const std::vector<int32_t>& v) { return std::vector<int64_t>(v.begin(), v.end()); }

class FacilityLocation : public testing::DeviceTest {};

TEST_P(FacilityLocation, GreedyMatchesPlainGreedyAndBoundsTheOptimum) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const int64_t n = 6 + static_cast<int64_t>(seed % 5), dim = 3;  // n in 6..10
    const Tensor features = random_tensor({n, dim}, seed, device(), -1.f, 1.f);
    const std::vector<float> x = features.to_vector<float>();
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    for (int64_t k = 1; k <= 4; ++k) {
      const Coreset c = facility_location_coreset(features, Tensor::zeros({n}, DType::I32, device()), k, 1);
      ASSERT_EQ(c.positions.device(), device());
      const std::vector<int64_t> got = as_int64(c.positions.to_vector<int32_t>());
      EXPECT_EQ(got, plain_greedy(x, dim, all, k)) << "seed " << seed << ", k " << k;
      // Brute force over every subset of size k (a bit mask per subset).
      double optimum = 0.0;
      for (uint32_t mask = 0; mask < (1u << n); ++mask) {
        if (std::popcount(mask) != k) continue;
        std::vector<int64_t> s;
        for (int64_t i = 0; i < n; ++i)
          if (mask >> i & 1u) s.push_back(i);
        optimum = std::max(optimum, objective(x, dim, all, s));
      }
      const double value = objective(x, dim, all, got);
      EXPECT_GE(value, (1.0 - std::exp(-1.0)) * optimum - 1e-9) << "seed " << seed << ", k " << k;
      EXPECT_LE(value, optimum + 1e-9);
      EXPECT_NEAR(facility_location_value(features, c.positions), value, 1e-5 * value);
    }
  }
}

TEST_P(FacilityLocation, PerClassGreedyAndProportionalSplit) {
  // Classes of 30, 20 and 10 rows (shuffled), budget 10: k n_c / n = 5, 3.33, 1.67 -> floors 5, 3, 1, and the one
  // left goes to the largest remainder (class 2): 5, 3, 2.
  const int64_t n = 60, dim = 4;
  std::vector<int32_t> y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = i % 6 < 3 ? 0 : (i % 6 < 5 ? 1 : 2);
  const Tensor features = random_tensor({n, dim}, 11, device());
  const std::vector<float> x = features.to_vector<float>();
  const Coreset c = facility_location_coreset(features, Tensor::from_vector(y, {n}, device()), 10, 3);
  const std::vector<int64_t> got = as_int64(c.positions.to_vector<int32_t>());
  ASSERT_EQ(got.size(), 10u);
  const std::vector<int64_t> quota = {5, 3, 2};
  size_t at = 0;
  for (int32_t cls = 0; cls < 3; ++cls) {
    const std::vector<int64_t> expected = plain_greedy(x, dim, rows_of_class(y, cls), quota[cls]);
    const std::vector<int64_t> part(got.begin() + at, got.begin() + at + quota[cls]);
    EXPECT_EQ(part, expected) << "class " << cls;
    at += quota[cls];
  }
}

TEST_P(FacilityLocation, AtLeastOnePerClassPresent) {
  // Classes of 50, 1 and 1 rows and an absent class 3, budget 5: floors 4, 0, 0 -> at least one each: 4, 1, 1 is one
  // too many, and the class with the smallest remainder among those above one (class 0) gives it back: 3, 1, 1.
  const int64_t n = 52, dim = 2;
  std::vector<int32_t> y(n, 0);
  y[7] = 1;
  y[40] = 2;
  const Tensor features = random_tensor({n, dim}, 5, device());
  const Coreset c = facility_location_coreset(features, Tensor::from_vector(y, {n}, device()), 5, 4);
  const std::vector<int32_t> got = c.positions.to_vector<int32_t>();
  ASSERT_EQ(got.size(), 5u);
  for (int q = 0; q < 3; ++q) EXPECT_EQ(y[got[q]], 0);
  EXPECT_EQ(got[3], 7);
  EXPECT_EQ(got[4], 40);
  // The singleton classes' picks represent only themselves: weight 1 * k / n.
  const std::vector<float> w = c.weights.to_vector<float>();
  EXPECT_FLOAT_EQ(w[3], 5.f / 52.f);
  EXPECT_FLOAT_EQ(w[4], 5.f / 52.f);
}

TEST_P(FacilityLocation, WeightsAreClusterSizesWithMeanOne) {
  const int64_t n = 90, dim = 5, classes = 3, budget = 12;
  const Tensor features = random_tensor({n, dim}, 21, device());
  const Tensor labels = random_labels(n, classes, 22, device());
  const std::vector<float> x = features.to_vector<float>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  const Coreset c = facility_location_coreset(features, labels, budget, classes);
  const std::vector<int32_t> picks = c.positions.to_vector<int32_t>();
  const std::vector<float> w = c.weights.to_vector<float>();
  ASSERT_EQ(static_cast<int64_t>(picks.size()), budget);
  // Each row joins the most similar pick of its own class (ties to the lower row).
  std::vector<int64_t> size(picks.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = -1;
    for (size_t q = 0; q < picks.size(); ++q) {
      if (y[picks[q]] != y[i]) continue;
      if (best < 0) {
        best = static_cast<int64_t>(q);
        continue;
      }
      const double s = similarity(x, dim, i, picks[q]), t = similarity(x, dim, i, picks[best]);
      if (s > t || (s == t && picks[q] < picks[best])) best = static_cast<int64_t>(q);
    }
    ASSERT_GE(best, 0) << "row " << i << " has no pick of its class";
    ++size[best];
  }
  double sum = 0.0;
  const std::vector<int32_t> sizes = c.sizes.to_vector<int32_t>();
  for (size_t q = 0; q < picks.size(); ++q) {
    EXPECT_GE(size[q], 1) << "random rows: every pick represents at least itself";
    EXPECT_EQ(sizes[q], size[q]) << "pick " << q;
    EXPECT_NEAR(w[q], static_cast<double>(size[q]) * budget / n, 1e-6) << "pick " << q;
    sum += w[q];
  }
  EXPECT_NEAR(sum, static_cast<double>(budget), 1e-4);
}

TEST_P(FacilityLocation, BudgetAboveRowsTakesEveryRow) {
  const int64_t n = 9, dim = 3;
  const Tensor features = random_tensor({n, dim}, 8, device());
  const Tensor labels = random_labels(n, 2, 9, device());
  const Coreset c = facility_location_coreset(features, labels, 100, 2);
  std::vector<int32_t> got = c.positions.to_vector<int32_t>();
  ASSERT_EQ(static_cast<int64_t>(got.size()), n);
  std::sort(got.begin(), got.end());
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(got[i], i);
  for (float w : c.weights.to_vector<float>()) EXPECT_FLOAT_EQ(w, 1.f);
}

TEST_P(FacilityLocation, DuplicateRowsAreNotPickedTwice) {
  // Four copies of one point and one other: after picking the copy, every remaining gain but one is zero.
  std::vector<float> v = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, -0.9f, 0.3f};
  const Tensor features = Tensor::from_vector(v, {5, 2}, device());
  const Coreset c = facility_location_coreset(features, Tensor::zeros({5}, DType::I32, device()), 3, 1);
  const std::vector<int32_t> got = c.positions.to_vector<int32_t>();
  EXPECT_EQ(got, (std::vector<int32_t>{0, 4, 1}));  // the third round: all gains 0, so the lowest unchosen row
  // Note [empty clusters]: rows 0-3 join pick 0 (a tie between the copies goes to the lower row), so pick 1 (row 1)
  // represents no row; its size is floored at 1, as the reference does, and the weights are sizes 4, 1, 1 over 6.
  EXPECT_EQ(c.sizes.to_vector<int32_t>(), (std::vector<int32_t>{4, 1, 1}));
  const std::vector<float> w = c.weights.to_vector<float>();
  EXPECT_FLOAT_EQ(w[0], 4.f * 3.f / 6.f);
  EXPECT_FLOAT_EQ(w[1], 1.f * 3.f / 6.f);
  EXPECT_FLOAT_EQ(w[2], 1.f * 3.f / 6.f);
}

// Many zero-gain picks: a class of 12 rows with 3 distinct values and a quota of 8 leaves 5 picks with empty clusters,
// each of weight 1 k / sum(sizes), never 0.
TEST_P(FacilityLocation, EmptyClustersWeighAsOneRow) {
  const int64_t n = 12, dim = 2;
  const std::vector<float> points = {0.1f, 0.2f, -0.5f, 0.7f, 0.9f, -0.3f};
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.insert(v.end(), points.begin() + 2 * (i % 3), points.begin() + 2 * (i % 3) + 2);
  const Coreset c = facility_location_coreset(Tensor::from_vector(v, {n, dim}, device()),
                                              Tensor::zeros({n}, DType::I32, device()), 8, 1);
  const std::vector<int32_t> picks = c.positions.to_vector<int32_t>(), sizes = c.sizes.to_vector<int32_t>();
  const std::vector<float> w = c.weights.to_vector<float>();
  ASSERT_EQ(picks.size(), 8u);
  // The first three picks are one copy of each value (rows 0-2: the lowest row of equal gains); each holds its 4 copies.
  std::vector<int32_t> first(picks.begin(), picks.begin() + 3);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int32_t>{0, 1, 2}));
  for (size_t q = 0; q < 8; ++q) {
    EXPECT_EQ(sizes[q], q < 3 ? 4 : 1) << "pick " << q;
    EXPECT_FLOAT_EQ(w[q], static_cast<float>(sizes[q]) * 8.f / 17.f) << "pick " << q;
  }
}

TEST_P(FacilityLocation, RejectsBadInput) {
  const Tensor features = random_tensor({10, 3}, 1, device());
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 2, 3, 0, 1, 2, 3, 0, 1}, {10}, device());
  EXPECT_TRUE(testing::throws_error([&] { facility_location_coreset(features, labels, 2, 4); },
                                    {"budget of 2", "classes present"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { facility_location_coreset(features, Tensor::full({10}, 7, DType::I32, device()), 4, 4); },
      {"label 0 is 7", "[0, 4)"}));
  EXPECT_TRUE(testing::throws_error([&] { facility_location_coreset(features, labels.rows(0, 9), 4, 4); },
                                    {"one label per feature row (10)", "found 9"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { facility_location_value(features, Tensor::from_vector<int32_t>({3, 10}, {2}, device())); },
      {"position 1 is 10", "[0, 10)"}));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(FacilityLocation);

// One block [0, m) picking `quota`, laid out as facility_location_coreset lays it out, in host vectors.
struct OneBlock {
  std::vector<int32_t> rows;     // members | block_of
  std::vector<int64_t> offsets;  // member_offset | sim_offset | pick_offset
  FacilityLocationBlocks layout(const int32_t* r, const int64_t* o, int64_t m, int64_t dim, int64_t quota) const {
    FacilityLocationBlocks b;
    b.num_blocks = 1;
    b.rows = m;
    b.dim = dim;
    b.max_quota = quota;
    b.max_block = m;
    b.picks = quota;
    b.members = r;
    b.block_of = r + m;
    b.member_offset = o;
    b.sim_offset = o + 2;
    b.pick_offset = o + 3;
    return b;
  }
};

OneBlock one_block(int64_t m, int64_t quota) {
  OneBlock b;
  b.rows.resize(2 * m, 0);
  std::iota(b.rows.begin(), b.rows.begin() + m, 0);
  b.offsets = {0, m, 0, 0, quota};
  return b;
}

TEST(FacilityLocationGains, CpuTwinMatchesDefinition) {
  const int64_t m = 40, dim = 6;
  const Tensor features = random_tensor({m, dim}, 3);
  const std::vector<float> x = features.to_vector<float>();
  const OneBlock b = one_block(m, 5);
  const FacilityLocationBlocks layout = b.layout(b.rows.data(), b.offsets.data(), m, dim, 5);
  std::vector<float> sim(m * m), best(m);
  cpu::pairwise_similarity(features.data<float>(), layout, sim.data());
  for (int64_t j = 0; j < m; ++j)
    for (int64_t i = 0; i < m; ++i) {
      ASSERT_NEAR(sim[j * m + i], similarity(x, dim, j, i), 1e-6) << j << ", " << i;
      ASSERT_EQ(sim[j * m + i], sim[i * m + j]);
    }
  Generator gen(4);
  const std::vector<float> u = uniform({m}, gen, Device::cpu(), 0.f, 0.9f).to_vector<float>();
  for (int64_t i = 0; i < m; ++i) best[i] = u[i];
  std::vector<uint8_t> chosen(m, 0);
  chosen[3] = chosen[17] = 1;
  std::vector<int64_t> gains(m, 0);
  cpu::facility_location_gains(sim.data(), layout, best.data(), chosen.data(), 2, gains.data());
  for (int64_t j = 0; j < m; ++j) {
    if (chosen[j]) {
      EXPECT_EQ(gains[j], -1);
      continue;
    }
    double expected = 0.0;
    for (int64_t i = 0; i < m; ++i) expected += std::max(0.0, static_cast<double>(sim[j * m + i]) - best[i]);
    // Each term: s - best rounded in float (<= 2^-24, the terms are < 1), then truncated to 2^-30.
    EXPECT_NEAR(static_cast<double>(gains[j]) / 1073741824.0, expected, m * (0x1p-24 + 0x1p-30)) << "candidate " << j;
  }
}

// The GPU's algorithm (every gain each round, the best by (gain, lower index)) run through the CPU twin of its gain
// kernel, against the lazy greedy of the CPU path: the same picks.
TEST(FacilityLocationGains, EveryGainGreedyMatchesLazyGreedy) {
  const int64_t m = 400, dim = 10, quota = 40;
  const Tensor features = random_tensor({m, dim}, 33);
  const OneBlock b = one_block(m, quota);
  const FacilityLocationBlocks layout = b.layout(b.rows.data(), b.offsets.data(), m, dim, quota);
  std::vector<float> sim(m * m), best(m, 0.f);
  std::vector<uint8_t> chosen(m, 0);
  std::vector<int64_t> gains(m);
  cpu::pairwise_similarity(features.data<float>(), layout, sim.data());
  std::vector<int32_t> picks;
  for (int64_t r = 0; r < quota; ++r) {
    cpu::facility_location_gains(sim.data(), layout, best.data(), chosen.data(), r, gains.data());
    const int64_t j = std::max_element(gains.begin(), gains.end()) - gains.begin();  // the first of equal maxima
    ASSERT_GE(gains[j], 0);
    picks.push_back(static_cast<int32_t>(j));
    chosen[j] = 1;
    for (int64_t i = 0; i < m; ++i) best[i] = std::max(best[i], sim[j * m + i]);
  }
  const Coreset lazy = facility_location_coreset(features, Tensor::zeros({m}, DType::I32), quota, 1);
  EXPECT_EQ(lazy.positions.to_vector<int32_t>(), picks);
}

class FacilityLocationGpu : public testing::GpuTest {};

TEST_F(FacilityLocationGpu, GainKernelMatchesCpuTwinExactly) {
  const int64_t m = 300, dim = 10, quota = 4;
  const Tensor features = random_tensor({m, dim}, 30);
  const OneBlock b = one_block(m, quota);
  const FacilityLocationBlocks host = b.layout(b.rows.data(), b.offsets.data(), m, dim, quota);
  std::vector<float> sim(m * m);
  cpu::pairwise_similarity(features.data<float>(), host, sim.data());
  Generator gen(31);
  const Tensor best = uniform({m}, gen, Device::cpu(), 0.f, 0.9f);
  std::vector<uint8_t> chosen(m, 0);
  chosen[0] = chosen[150] = chosen[299] = 1;
  std::vector<int64_t> expected(m, 0);
  cpu::facility_location_gains(sim.data(), host, best.data<float>(), chosen.data(), 1, expected.data());

  const Device gpu = Device::cuda(0);
  const Tensor rows = Tensor::from_vector(b.rows, {2 * m}, gpu);
  const Tensor offsets = Tensor::from_vector(b.offsets, {5}, gpu);
  const FacilityLocationBlocks dev = b.layout(rows.data<int32_t>(), offsets.data<int64_t>(), m, dim, quota);
  const Tensor sim_d = Tensor::from_vector(sim, {m * m}, gpu);  // the same similarities: the gains must agree exactly
  const Tensor best_d = best.to(gpu);
  const Tensor chosen_d = Tensor::from_vector(chosen, {m}, gpu);
  Tensor gains_d = Tensor::zeros({m}, DType::I64, gpu);
  cuda::facility_location_gains(sim_d.data<float>(), dev, best_d.data<float>(), chosen_d.data<uint8_t>(), 1,
                                gains_d.data<int64_t>());
  EXPECT_EQ(gains_d.to_vector<int64_t>(), expected);
  // And the similarity kernel against the CPU, up to expf and contraction.
  Tensor sim_k = Tensor::empty({m * m}, DType::F32, gpu);
  cuda::pairwise_similarity(features.to(gpu).data<float>(), dev, sim_k.data<float>());
  EXPECT_TRUE(testing::all_close(sim_k, sim_d, 1e-6f, 1e-5f));
}

TEST_F(FacilityLocationGpu, SameSelectionAsCpu) {
  // CREST-like: 1000 rows of 10 classes, features of width 10, budget 128.
  for (uint64_t seed : {40u, 41u}) {
    const int64_t n = 1000, dim = 10, classes = 10;
    const Tensor features = random_tensor({n, dim}, seed, Device::cpu(), -1.f, 1.f);
    const Tensor labels = random_labels(n, classes, seed + 100);
    const Coreset cpu_set = facility_location_coreset(features, labels, 128, classes);
    const Coreset gpu_set =
        facility_location_coreset(features.to(Device::cuda(0)), labels.to(Device::cuda(0)), 128, classes);
    EXPECT_EQ(gpu_set.positions.to_vector<int32_t>(), cpu_set.positions.to_vector<int32_t>()) << "seed " << seed;
    EXPECT_EQ(gpu_set.sizes.to_vector<int32_t>(), cpu_set.sizes.to_vector<int32_t>()) << "seed " << seed;
    EXPECT_TRUE(testing::all_close(gpu_set.weights.to(Device::cpu()), cpu_set.weights, 0.f, 0.f));
  }
}

// Note [empty clusters] on both devices: rows repeating 5 distinct values per class, 128 picks over 10 classes of
// about 100 rows, so most picks have zero gain and an empty cluster floored at 1.
TEST_F(FacilityLocationGpu, EmptyClustersSameAsCpu) {
  const int64_t n = 1000, dim = 10, classes = 10;
  const std::vector<float> distinct = random_tensor({50, dim}, 42).to_vector<float>();
  const Tensor labels = random_labels(n, classes, 43);
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = y[i] * 5 + i % 5;
    v.insert(v.end(), distinct.begin() + row * dim, distinct.begin() + (row + 1) * dim);
  }
  const Tensor features = Tensor::from_vector(v, {n, dim});
  const Coreset cpu_set = facility_location_coreset(features, labels, 128, classes);
  const Coreset gpu_set = facility_location_coreset(features.to(Device::cuda(0)), labels.to(Device::cuda(0)), 128, classes);
  const std::vector<int32_t> sizes = cpu_set.sizes.to_vector<int32_t>();
  EXPECT_GT(std::count(sizes.begin(), sizes.end(), 1), 50) << "most picks must have empty clusters";
  EXPECT_EQ(gpu_set.positions.to_vector<int32_t>(), cpu_set.positions.to_vector<int32_t>());
  EXPECT_EQ(gpu_set.sizes.to_vector<int32_t>(), sizes);
  EXPECT_TRUE(testing::all_close(gpu_set.weights.to(Device::cpu()), cpu_set.weights, 0.f, 0.f));
}

}  // namespace
}  // namespace sieve

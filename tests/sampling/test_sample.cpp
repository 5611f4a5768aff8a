// Sampling with replacement by prefix sum, its re-weighting, and τ (eq. 26), on both devices.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "sampling/sample.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::random_tensor;

// Upper critical value of chi-square with k degrees of freedom at the upper-tail probability of the standard normal
// quantile z, by the Wilson-Hilferty cube-root approximation (relative error well under 1% for k >= 10).
double chi_square_critical(int64_t k, double z) {
  const double a = 2.0 / (9.0 * static_cast<double>(k));
  const double c = 1.0 - a + z * std::sqrt(a);
  return static_cast<double>(k) * c * c * c;
}
constexpr double kZ1e4 = 3.719;  // P(N(0,1) > 3.719) = 1e-4: a false alarm once in ten thousand seeds

// Integer scores 0..10 in a fixed non-uniform pattern, zero at every multiple of 11.
std::vector<float> patterned_scores(int64_t count) {
  std::vector<float> s(count);
  for (int64_t i = 0; i < count; ++i) s[i] = static_cast<float>((i * 7) % 11);
  return s;
}

class SampleWithReplacement : public testing::DeviceTest {};

TEST_P(SampleWithReplacement, FrequenciesMatchDistribution) {
  const int64_t count = 40, n = 200000;
  const std::vector<float> s = patterned_scores(count);
  double total = 0.0;
  for (float v : s) total += v;
  Generator gen(2024);
  const WeightedSample drawn = sample_with_replacement(Tensor::from_vector(s, {count}, device()), n, gen);
  EXPECT_EQ(gen.offset(), static_cast<uint64_t>(n));
  EXPECT_EQ(drawn.positions.device(), device());
  EXPECT_EQ(drawn.weights.device(), device());
  const std::vector<int32_t> pos = drawn.positions.to_vector<int32_t>();
  const std::vector<float> w = drawn.weights.to_vector<float>();
  std::vector<int64_t> counts(count, 0);
  for (int64_t j = 0; j < n; ++j) {
    ASSERT_GE(pos[j], 0);
    ASSERT_LT(pos[j], count);
    ++counts[pos[j]];
    // Algorithm 1, line 9: w = 1 / (B g_i) = (sum s / B) / s_i.
    ASSERT_NEAR(w[j], total / count / s[pos[j]], 1e-6 * w[j]) << "draw " << j;
  }
  double chi2 = 0.0;
  int64_t positive = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (s[i] == 0.f) {
      EXPECT_EQ(counts[i], 0) << "zero-score entry " << i << " was drawn";
      continue;
    }
    const double expected = n * s[i] / total;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++positive;
  }
  EXPECT_LT(chi2, chi_square_critical(positive - 1, kZ1e4)) << "chi-square over " << positive << " categories";
}

TEST_P(SampleWithReplacement, AllZeroScoresFallBackToUniform) {
  const int64_t count = 16, n = 64000;
  Generator gen(7);
  const WeightedSample drawn = sample_with_replacement(Tensor::zeros({count}, DType::F32, device()), n, gen);
  const std::vector<int32_t> pos = drawn.positions.to_vector<int32_t>();
  std::vector<int64_t> counts(count, 0);
  for (int32_t p : pos) {
    ASSERT_GE(p, 0);
    ASSERT_LT(p, count);
    ++counts[p];
  }
  const double expected = static_cast<double>(n) / count;
  double chi2 = 0.0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, chi_square_critical(count - 1, kZ1e4));
  for (float v : drawn.weights.to_vector<float>()) ASSERT_EQ(v, 1.f);
}

// E_q[w_I G_I] = sum_i (s_i / S) (S / (B s_i)) G_i = (1/B) sum_i G_i. Over n draws the mean of w G has standard error
// sqrt(Var_q[w G] / n) per component, computed exactly below; the check allows 5 standard errors. Grouping the draws
// into minibatches of b does not change the mean of the minibatch estimates (1/b) sum w_i G_i.
TEST_P(SampleWithReplacement, ReweightedEstimateIsUnbiased) {
  const int64_t count = 32, dims = 3, b = 8, trials = 25000, n = b * trials;
  const std::vector<float> g = random_tensor({count, dims}, 61).to_vector<float>();
  const std::vector<float> s = random_tensor({count}, 62, Device::cpu(), 0.05f, 1.f).to_vector<float>();
  double total = 0.0;
  for (float v : s) total += v;
  Generator gen(63);
  const WeightedSample drawn = sample_with_replacement(Tensor::from_vector(s, {count}, device()), n, gen);
  const std::vector<int32_t> pos = drawn.positions.to_vector<int32_t>();
  const std::vector<float> w = drawn.weights.to_vector<float>();
  for (int64_t d = 0; d < dims; ++d) {
    double plain = 0.0, second_moment = 0.0;
    for (int64_t i = 0; i < count; ++i) {
      plain += g[i * dims + d] / count;
      const double wi = total / (count * s[i]);
      second_moment += (s[i] / total) * wi * wi * g[i * dims + d] * g[i * dims + d];
    }
    const double standard_error = std::sqrt((second_moment - plain * plain) / n);
    double estimate = 0.0;
    for (int64_t t = 0; t < trials; ++t) {
      double minibatch = 0.0;
      for (int64_t j = t * b; j < (t + 1) * b; ++j) minibatch += w[j] * g[pos[j] * dims + d];
      estimate += minibatch / b;
    }
    estimate /= trials;
    EXPECT_NEAR(estimate, plain, 5.0 * standard_error) << "component " << d;
  }
}

TEST_P(SampleWithReplacement, RejectsBadInput) {
  Generator gen(1);
  const Tensor scores = random_tensor({10}, 71, device(), 0.1f, 1.f);
  EXPECT_THROW(sample_with_replacement(scores, -1, gen), Error);
  EXPECT_THROW(sample_with_replacement(scores.reshape({2, 5}), 4, gen), Error);
  EXPECT_THROW(sample_with_replacement(Tensor::zeros({0}, DType::F32, device()), 4, gen), Error);
  EXPECT_EQ(sample_with_replacement(scores, 0, gen).positions.numel(), 0);
  if (device().is_cpu()) {
    EXPECT_THROW(sample_with_replacement(Tensor::from_vector<float>({1.f, -0.5f, 2.f}, {3}), 4, gen), Error);
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SampleWithReplacement);

class Tau : public testing::DeviceTest {};

// Eq. 26 verbatim in double: 1 / τ = sqrt(1 - ||g - u||^2 / sum g^2) with g = s / sum s, u = 1 / B.
double tau_closed_form(const std::vector<float>& s) {
  const double count = static_cast<double>(s.size());
  double total = 0.0;
  for (float v : s) total += v;
  double dist2 = 0.0, norm2 = 0.0;
  for (float v : s) {
    const double g = v / total;
    dist2 += (g - 1.0 / count) * (g - 1.0 / count);
    norm2 += g * g;
  }
  return 1.0 / std::sqrt(1.0 - dist2 / norm2);
}

TEST_P(Tau, MatchesClosedForm) {
  const std::vector<float> s = random_tensor({100}, 81, Device::cpu(), 0.01f, 2.f).to_vector<float>();
  const Tensor tau = tau_estimate(Tensor::from_vector(s, {100}, device()));
  EXPECT_EQ(tau.dim(), 0);
  EXPECT_EQ(tau.device(), device());
  // Sums in double, one rounding to float: a few float ulps from the double formula.
  EXPECT_NEAR(tau.item(), tau_closed_form(s), 1e-6 * tau_closed_form(s));

  EXPECT_NEAR(tau_estimate(Tensor::full({64}, 0.37, DType::F32, device())).item(), 1.0, 1e-6);
  std::vector<float> one_hot(64, 0.f);
  one_hot[17] = 0.5f;
  EXPECT_NEAR(tau_estimate(Tensor::from_vector(one_hot, {64}, device())).item(), 8.0, 8e-6);  // sqrt(B)
  EXPECT_EQ(tau_estimate(Tensor::zeros({64}, DType::F32, device())).item(), 1.f);
  // A NaN or infinite score makes τ NaN (Note [non-finite scores] in sampling/importance.h), never 1.
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> with_bad = s;
    with_bad[41] = bad;
    EXPECT_TRUE(std::isnan(tau_estimate(Tensor::from_vector(with_bad, {100}, device())).item())) << bad;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Tau);

class SampleWithReplacementGpu : public testing::GpuTest {};

// Integer scores make every prefix sum exact whatever the order of the additions (sums < 2^24), so CUB's scan and
// the sequential one agree bit for bit and, with the same uniforms, so do the positions. 5000 scores span two
// CUB tiles. Weights are one IEEE division of identical operands: equal too.
TEST_F(SampleWithReplacementGpu, MatchesCpu) {
  const int64_t count = 5000, n = 10000;
  std::vector<float> s = random_tensor({count}, 91, Device::cpu(), 0.f, 21.f).to_vector<float>();
  for (float& v : s) v = std::floor(v);  // integers 0..20, about one in 21 zero
  const Tensor scores = Tensor::from_vector(s, {count});
  Generator cpu_gen(92), gpu_gen(92);
  const WeightedSample on_cpu = sample_with_replacement(scores, n, cpu_gen);
  const WeightedSample on_gpu = sample_with_replacement(scores.to(Device::cuda()), n, gpu_gen);
  EXPECT_EQ(cpu_gen.offset(), gpu_gen.offset());
  EXPECT_EQ(on_gpu.positions.to_vector<int32_t>(), on_cpu.positions.to_vector<int32_t>());
  EXPECT_TRUE(all_close(on_gpu.weights, on_cpu.weights, 0.f, 1e-7f));

  const Tensor zeros = Tensor::zeros({count}, DType::F32);
  EXPECT_EQ(sample_with_replacement(zeros.to(Device::cuda()), n, gpu_gen).positions.to_vector<int32_t>(),
            sample_with_replacement(zeros, n, cpu_gen).positions.to_vector<int32_t>());
}

TEST_F(SampleWithReplacementGpu, TauMatchesCpu) {
  for (int64_t count : {1, 100, 3000, 70000}) {
    const Tensor s = random_tensor({count}, 100 + count, Device::cpu(), 0.f, 3.f);
    EXPECT_NEAR(tau_estimate(s.to(Device::cuda())).item(), tau_estimate(s).item(), 1e-6 * tau_estimate(s).item())
        << "B = " << count;
  }
}

}  // namespace
}  // namespace sieve

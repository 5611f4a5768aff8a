// Hutchinson's estimator of the Hessian diagonal (sampling/hutchinson.h): its mean against the exact diagonal of a
// softmax classifier, the moving averages against their formulas, and each kernel against its CPU twin.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/ops/dispatch.h"
#include "sampling/hutchinson.h"
#include "tests/core/softmax_classifier.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::SoftmaxClassifier;

class Hutchinson : public testing::DeviceTest {};

TEST_P(Hutchinson, RademacherIsPlusOrMinusOneWithMeanZero) {
  Generator gen(7);
  const int64_t n = 100000;
  const std::vector<float> z = rademacher({n}, gen, device()).to(Device::cpu()).to_vector<float>();
  double total = 0;
  for (float v : z) {
    ASSERT_TRUE(v == 1.f || v == -1.f) << v;
    total += v;
  }
  // The mean of n fair ±1 has standard deviation 1/√n; 5σ.
  EXPECT_LT(std::abs(total / n), 5.0 / std::sqrt(static_cast<double>(n)));
  EXPECT_EQ(gen.offset(), static_cast<uint64_t>(n));
}

// E[z ⊙ Hz] = diag(H). Each coordinate's probe value z_i (Hz)_i = H_ii + Σ_{j≠i} H_ij z_i z_j has variance
// σ_i² = Σ_{j≠i} H_ij², so the mean of K probes is within 5 σ_i / √K of H_ii but for a 6e-7 chance per coordinate;
// the finite-difference Hessian-vector product adds at most 5e-3 of max |H| (tests/core/test_hvp.cpp).
TEST_P(Hutchinson, MeanOfProbesMatchesExactHessianDiagonal) {
  SoftmaxClassifier model(48, 5, 3, 31, device());
  HutchinsonEstimator est(model.params());
  Generator gen(32);
  const int kProbes = 1500;
  for (int k = 0; k < kProbes; ++k) hutchinson_probe(model.params(), [&] { return model.loss_gradient(); }, est, gen);
  ASSERT_EQ(est.summed_probes(), kProbes);
  const std::vector<double> h = model.hessian();
  const std::vector<double> sum = SoftmaxClassifier::flatten(est.diagonal_sum());
  const size_t m = sum.size();
  double h_max = 0;
  for (size_t i = 0; i < m; ++i) h_max = std::max(h_max, std::abs(h[i * m + i]));
  for (size_t i = 0; i < m; ++i) {
    double var = 0;
    for (size_t j = 0; j < m; ++j)
      if (j != i) var += h[i * m + j] * h[i * m + j];
    const double tolerance = 5.0 * std::sqrt(var / kProbes) + 5e-3 * h_max;
    EXPECT_NEAR(sum[i] / kProbes, h[i * m + i], tolerance) << "coordinate " << i;
  }
  // The smoothed diagonal is a root mean square of the probe values: finite and positive.
  for (double v : SoftmaxClassifier::flatten(est.hessian_diagonal())) EXPECT_TRUE(std::isfinite(v) && v > 0) << v;
}

// Note [hutchinson moving averages], in double, for three probes of known values.
TEST_P(Hutchinson, MovingAveragesFollowTheirFormulas) {
  const int64_t n = 257;
  const Tensor like = Tensor::zeros({n}, DType::F32, device());
  HutchinsonOptions o;
  o.beta1 = 0.8f;
  o.beta2 = 0.95f;
  o.eps = 1e-3f;
  HutchinsonEstimator est({like}, o);
  std::vector<double> m(n, 0.0), s(n, 0.0), sum(n, 0.0);
  Generator gen(40);
  for (int t = 0; t < 3; ++t) {
    const Tensor g = testing::random_tensor({n}, 41 + t, device());
    const Tensor hz = testing::random_tensor({n}, 51 + t, device(), -2.f, 2.f);
    const Tensor z = rademacher({n}, gen, device());
    est.accumulate({g}, {z}, {hz});
    const auto gv = g.to(Device::cpu()).to_vector<float>(), hv = hz.to(Device::cpu()).to_vector<float>(),
               zv = z.to(Device::cpu()).to_vector<float>();
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(zv[i]) * hv[i];
      m[i] = o.beta1 * m[i] + (1.0 - o.beta1) * gv[i];
      s[i] = o.beta2 * s[i] + (1.0 - o.beta2) * d * d;
      sum[i] += d;
    }
  }
  std::vector<float> g_expected(n), h_expected(n), sum_expected(n);
  for (int64_t i = 0; i < n; ++i) {
    g_expected[i] = static_cast<float>(m[i] / (1.0 - std::pow(0.8, 3)));
    h_expected[i] = static_cast<float>(std::sqrt(s[i] / (1.0 - std::pow(0.95, 3))) + 1e-3);
    sum_expected[i] = static_cast<float>(sum[i]);
  }
  // float32 arithmetic over three steps: a few ulps, well under 1e-5 relative.
  EXPECT_TRUE(testing::all_close(est.gradient()[0].to(Device::cpu()).to_vector<float>(), g_expected, 1e-6f, 1e-5f));
  EXPECT_TRUE(
      testing::all_close(est.hessian_diagonal()[0].to(Device::cpu()).to_vector<float>(), h_expected, 1e-6f, 1e-5f));
  EXPECT_TRUE(testing::all_close(est.diagonal_sum()[0].to(Device::cpu()).to_vector<float>(), sum_expected, 1e-6f, 1e-5f));
  est.reset_sum();
  EXPECT_EQ(est.summed_probes(), 0);
  EXPECT_EQ(est.probes(), 3);
  for (float v : est.diagonal_sum()[0].to(Device::cpu()).to_vector<float>()) EXPECT_EQ(v, 0.f);
}

TEST_P(Hutchinson, StateRoundTrips) {
  const Tensor like = Tensor::zeros({5, 3}, DType::F32, device());
  HutchinsonEstimator a({like}), b({like});
  Generator gen(60);
  a.accumulate({testing::random_tensor({5, 3}, 61, device())}, {rademacher({5, 3}, gen, device())},
               {testing::random_tensor({5, 3}, 62, device())});
  b.load_state(a.state());
  EXPECT_EQ(b.probes(), 1);
  EXPECT_TRUE(testing::all_close(b.gradient()[0], a.gradient()[0], 0.f, 0.f));
  EXPECT_TRUE(testing::all_close(b.hessian_diagonal()[0], a.hessian_diagonal()[0], 0.f, 0.f));
}

TEST(HutchinsonErrors, RejectsBadOptionsAndShapes) {
  const Tensor like = Tensor::zeros({4});
  HutchinsonOptions o;
  o.beta2 = 1.f;
  EXPECT_TRUE(testing::throws_error([&] { HutchinsonEstimator({like}, o); }, {"beta2", "[0, 1)", "1"}));
  HutchinsonEstimator est({like});
  EXPECT_TRUE(testing::throws_error([&] { est.gradient(); }, "no probe yet"));
  EXPECT_TRUE(testing::throws_error(
      [&] { est.accumulate({Tensor::ones({4})}, {Tensor::ones({3})}, {Tensor::ones({4})}); },
      {"probe 0", "float32[3]", "expected float32[4]"}));
}

// Each kernel on the GPU against its CPU twin on the same random inputs.
class HutchinsonGpu : public testing::GpuTest {};

TEST_F(HutchinsonGpu, RademacherMatchesCpuBitForBit) {
  Generator a(90, 123), b(90, 123);
  const Tensor cpu = rademacher({10007}, a, Device::cpu());
  const Tensor gpu = rademacher({10007}, b, Device::cuda(0));
  EXPECT_EQ(gpu.to(Device::cpu()).to_vector<float>(), cpu.to_vector<float>());
}

TEST_F(HutchinsonGpu, AccumulateAndMomentsMatchCpu) {
  const int64_t n = 100003;
  Generator gen(91);
  const Tensor z = rademacher({n}, gen, Device::cpu());
  const Tensor hz = testing::random_tensor({n}, 92, Device::cpu(), -3.f, 3.f);
  const Tensor g = testing::random_tensor({n}, 93, Device::cpu());
  std::vector<Tensor> cpu_state = {testing::random_tensor({n}, 94, Device::cpu()),
                                   testing::random_tensor({n}, 95, Device::cpu(), 0.f, 2.f),
                                   testing::random_tensor({n}, 96, Device::cpu())};
  std::vector<Tensor> gpu_state;
  for (const Tensor& t : cpu_state) gpu_state.push_back(t.to(Device::cuda(0)));
  const HutchinsonStep step{0.9f, 0.999f};
  cpu::hutchinson_accumulate(z.data<float>(), hz.data<float>(), g.data<float>(), n, step,
                             cpu_state[0].data<float>(), cpu_state[1].data<float>(), cpu_state[2].data<float>());
  const Tensor zg = z.to(Device::cuda(0)), hzg = hz.to(Device::cuda(0)), gg = g.to(Device::cuda(0));
  SIEVE_DISPATCH(Device::cuda(0), hutchinson_accumulate, zg.data<float>(), hzg.data<float>(), gg.data<float>(), n,
                 step, gpu_state[0].data<float>(), gpu_state[1].data<float>(), gpu_state[2].data<float>());
  // Products and sums are rounded one by one on both backends (sampling/hutchinson_math.h): identical results.
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(testing::all_close(gpu_state[k].to(Device::cpu()), cpu_state[k], 0.f, 0.f)) << k;

  const HutchinsonMoments moments{0.271f, 0.00299f, 1e-4f};
  Tensor g_cpu = Tensor::empty({n}), h_cpu = Tensor::empty({n});
  cpu::hutchinson_moments(cpu_state[0].data<float>(), cpu_state[1].data<float>(), n, moments, g_cpu.data<float>(),
                          h_cpu.data<float>());
  Tensor g_gpu = Tensor::empty({n}, DType::F32, Device::cuda(0)), h_gpu = Tensor::empty({n}, DType::F32, Device::cuda(0));
  SIEVE_DISPATCH(Device::cuda(0), hutchinson_moments, gpu_state[0].data<float>(), gpu_state[1].data<float>(), n,
                 moments, g_gpu.data<float>(), h_gpu.data<float>());
  // IEEE division and square root on both: equal up to one ulp (allowed for the device maths library).
  EXPECT_TRUE(testing::all_close(g_gpu.to(Device::cpu()), g_cpu, 0.f, 2e-7f));
  EXPECT_TRUE(testing::all_close(h_gpu.to(Device::cpu()), h_cpu, 0.f, 2e-7f));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Hutchinson);

}  // namespace
}  // namespace sieve

// batch_norm2d: gradients against finite differences (training and evaluation), forward and running statistics
// against double-precision references, every device against the CPU, and argument errors.
#include <algorithm>
#include <cmath>
#include <string>

#include "core/ops.h"
#include "core/ops/batch_norm.h"
#include "core/ops/cpu_parallel.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::gradient_check;
using testing::matches_cpu;
using testing::random_tensor;
using testing::weighted_total;
using testing::throws_error;
using testing::Tolerance;

// Per-channel mean and biased variance of a host [n, c, h, w] tensor, in double.
void channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  const auto v = x.to_vector<float>();
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t s = 0; s < hw; ++s) mean[ch] += v[(i * c + ch) * hw + s];
    mean[ch] /= static_cast<double>(n * hw);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t s = 0; s < hw; ++s) var[ch] += std::pow(v[(i * c + ch) * hw + s] - mean[ch], 2);
    var[ch] /= static_cast<double>(n * hw);
  }
}

// y = gamma (x - mean) / sqrt(var + eps) + beta in double, for host tensors.
std::vector<float> reference_output(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                    const Tensor& gamma, const Tensor& beta, double eps) {
  const int64_t c = x.size(1), hw = x.size(2) * x.size(3);
  const auto v = x.to_vector<float>(), g = gamma.to_vector<float>(), b = beta.to_vector<float>();
  std::vector<float> y(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t ch = (static_cast<int64_t>(i) / hw) % c;
    y[i] = static_cast<float>(g[ch] * (v[i] - mean[ch]) / std::sqrt(var[ch] + eps) + b[ch]);
  }
  return y;
}

TEST(BatchNormGradients, TrainingMatchesFiniteDifferences) {
  Tensor x = random_tensor({3, 2, 3, 3}, 1), gamma = random_tensor({2}, 2, Device::cpu(), 0.5f, 1.5f);
  Tensor beta = random_tensor({2}, 3);
  EXPECT_TRUE(gradient_check(
      [](const auto& in) {
        Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
        return weighted_total(batch_norm2d(in[0], in[1], in[2], rm, rv, true), 4);
      },
      {x, gamma, beta}));
}

TEST(BatchNormGradients, EvaluationMatchesFiniteDifferences) {
  Tensor x = random_tensor({3, 2, 3, 3}, 5), gamma = random_tensor({2}, 6, Device::cpu(), 0.5f, 1.5f);
  Tensor beta = random_tensor({2}, 7);
  Tensor rm = random_tensor({2}, 8), rv = random_tensor({2}, 9, Device::cpu(), 0.5f, 2.f);
  EXPECT_TRUE(gradient_check(
      [&](const auto& in) { return weighted_total(batch_norm2d(in[0], in[1], in[2], rm, rv, false), 10); },
      {x, gamma, beta}));
}

TEST(BatchNormForward, TrainingNormalisesEachChannel) {
  // Values far from zero mean: a one-pass E[x^2] - E[x]^2 would lose digits here (Note [batch-norm statistics]).
  Tensor x = random_tensor({4, 3, 5, 5}, 11, Device::cpu(), 20.f, 23.f);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor y = batch_norm2d(x, Tensor::ones({3}), Tensor::zeros({3}), rm, rv, true);
  std::vector<double> mean, var;
  channel_stats(y, mean, var);
  for (int ch = 0; ch < 3; ++ch) {
    EXPECT_NEAR(mean[ch], 0.0, 1e-5) << "channel " << ch;
    EXPECT_NEAR(var[ch], 1.0, 1e-4) << "channel " << ch;  // var / (var + eps) with var ~ 0.75: 1 - 1.3e-5
  }
}

TEST(BatchNormForward, TrainingMatchesDoubleReference) {
  Tensor x = random_tensor({4, 3, 5, 6}, 12, Device::cpu(), -1.f, 3.f);
  Tensor gamma = random_tensor({3}, 13, Device::cpu(), 0.5f, 1.5f), beta = random_tensor({3}, 14);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  std::vector<double> mean, var;
  channel_stats(x, mean, var);
  // Float arithmetic on O(1) values: a few ulps of 1.
  EXPECT_TRUE(all_close(batch_norm2d(x, gamma, beta, rm, rv, true).to_vector<float>(),
                        reference_output(x, mean, var, gamma, beta, 1e-5), 1e-5f, 1e-5f));
}

// Note [cpu threads]: tensors of at least cpu::kParallelMin elements are split across threads. A WRN-28-2-sized
// activation (16 x 32 x 32 x 32 = 2 * kParallelMin) against the double reference checks that every plane and
// channel is computed once, and its gradients against double-precision formulas check the backward loops.
TEST(BatchNormForward, LargeTensorsSplitAcrossThreadsMatchDoubleReference) {
  Tensor x = random_tensor({16, 32, 32, 32}, 15, Device::cpu(), -1.f, 3.f);
  ASSERT_GE(x.numel(), cpu::kParallelMin);
  Tensor gamma = random_tensor({32}, 16, Device::cpu(), 0.5f, 1.5f), beta = random_tensor({32}, 17);
  Tensor rm = Tensor::zeros({32}), rv = Tensor::ones({32});
  std::vector<double> mean, var;
  channel_stats(x, mean, var);
  EXPECT_TRUE(all_close(batch_norm2d(x, gamma, beta, rm, rv, true).to_vector<float>(),
                        reference_output(x, mean, var, gamma, beta, 1e-5), 1e-5f, 1e-5f));
  for (int64_t ch = 0; ch < 32; ++ch) EXPECT_NEAR(rm.to_vector<float>()[ch], 0.1 * mean[ch], 1e-6) << ch;
  // The backward pass of sum(y * w), in double: per channel d/d beta = sum w, d/d gamma = sum xhat w, and
  // dx = gamma invstd / N (N w - sum w - xhat sum xhat w), N = n h w.
  Tensor g = gamma.clone().set_requires_grad(true), b = beta.clone().set_requires_grad(true);
  Tensor xs = x.clone().set_requires_grad(true), w = random_tensor(x.shape(), 18);
  Tensor rm2 = Tensor::zeros({32}), rv2 = Tensor::ones({32});
  sum(mul(batch_norm2d(xs, g, b, rm2, rv2, true), w)).backward();
  const auto v = x.to_vector<float>(), wv = w.to_vector<float>(), dg = g.grad().to_vector<float>();
  const auto db = b.grad().to_vector<float>(), dx = xs.grad().to_vector<float>(), gv = gamma.to_vector<float>();
  const int64_t hw = 32 * 32, count = 16 * hw;
  for (int64_t ch = 0; ch < 32; ++ch) {
    const double invstd = 1.0 / std::sqrt(var[ch] + 1e-5);
    auto at = [&](int64_t i, int64_t s) { return (i * 32 + ch) * hw + s; };
    double sum_w = 0, sum_xhat_w = 0;
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t s = 0; s < hw; ++s) {
        sum_w += wv[at(i, s)];
        sum_xhat_w += (v[at(i, s)] - mean[ch]) * invstd * wv[at(i, s)];
      }
    EXPECT_NEAR(dg[ch], sum_xhat_w, 1e-3 * (1 + std::abs(sum_xhat_w))) << "gamma gradient, channel " << ch;
    EXPECT_NEAR(db[ch], sum_w, 1e-3 * (1 + std::abs(sum_w))) << "beta gradient, channel " << ch;
    double worst = 0;
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t s = 0; s < hw; ++s) {
        const double xhat = (v[at(i, s)] - mean[ch]) * invstd;
        const double want = gv[ch] * invstd / count * (count * wv[at(i, s)] - sum_w - xhat * sum_xhat_w);
        worst = std::max(worst, std::abs(dx[at(i, s)] - want));
      }
    EXPECT_LT(worst, 1e-4) << "input gradient, channel " << ch;
  }
}

TEST(BatchNormForward, RunningStatisticsFollowPyTorchAfterOneAndTwoSteps) {
  const float momentum = 0.1f;
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor gamma = Tensor::ones({3}), beta = Tensor::zeros({3});
  std::vector<double> exp_mean(3, 0.0), exp_var(3, 1.0);
  for (int step = 0; step < 2; ++step) {
    Tensor x = random_tensor({5, 3, 4, 4}, 15 + step, Device::cpu(), -2.f + step, 1.f + 2 * step);
    batch_norm2d(x, gamma, beta, rm, rv, true, momentum);
    std::vector<double> mean, var;
    channel_stats(x, mean, var);
    const double count = 5 * 16;
    std::vector<float> want_mean(3), want_var(3);
    for (int ch = 0; ch < 3; ++ch) {
      exp_mean[ch] = (1 - momentum) * exp_mean[ch] + momentum * mean[ch];
      exp_var[ch] = (1 - momentum) * exp_var[ch] + momentum * var[ch] * count / (count - 1);  // unbiased
      want_mean[ch] = static_cast<float>(exp_mean[ch]);
      want_var[ch] = static_cast<float>(exp_var[ch]);
    }
    EXPECT_TRUE(all_close(rm.to_vector<float>(), want_mean, 1e-6f, 1e-5f)) << "running_mean after step " << step + 1;
    EXPECT_TRUE(all_close(rv.to_vector<float>(), want_var, 1e-6f, 1e-5f)) << "running_var after step " << step + 1;
  }
}

TEST(BatchNormForward, EvaluationUsesAndKeepsRunningStatistics) {
  Tensor x = random_tensor({2, 3, 4, 4}, 17);
  Tensor gamma = random_tensor({3}, 18, Device::cpu(), 0.5f, 1.5f), beta = random_tensor({3}, 19);
  Tensor rm = random_tensor({3}, 20), rv = random_tensor({3}, 21, Device::cpu(), 0.5f, 2.f);
  const auto rm_before = rm.to_vector<float>(), rv_before = rv.to_vector<float>();
  std::vector<double> mean(rm_before.begin(), rm_before.end()), var(rv_before.begin(), rv_before.end());
  EXPECT_TRUE(all_close(batch_norm2d(x, gamma, beta, rm, rv, false).to_vector<float>(),
                        reference_output(x, mean, var, gamma, beta, 1e-5), 1e-5f, 1e-5f));
  EXPECT_EQ(rm.to_vector<float>(), rm_before);
  EXPECT_EQ(rv.to_vector<float>(), rv_before);
}

class BatchNormOnDevice : public DeviceTest {};

// Forward, the three gradients and the updated running statistics on the test's device against the CPU.
::testing::AssertionResult batch_norm_matches_cpu(const Shape& shape, bool training, Device device) {
  const int64_t c = shape[1];
  // Float sums of M = N H W terms (per thread, then a tree) against double ones: relative error ~ 1e-6 of the
  // summed magnitudes; the gradient of gamma sums M terms of size ~1, hence its larger absolute tolerance.
  const float tol = 1e-4f;
  const Tolerance running{1e-6f, 1e-5f};
  return matches_cpu(
      {.name = std::string(training ? "training" : "evaluation") + ", x " + shape_string(shape),
       // Post-ReLU-like inputs (positive mean) at the scale of a network's activations; then gamma, beta and the
       // running mean and variance, which need no gradient and come back updated as outputs 1 and 2.
       .inputs = {random_tensor(shape, 30, Device::cpu(), -0.5f, 2.f),
                  random_tensor({c}, 31, Device::cpu(), 0.5f, 1.5f), random_tensor({c}, 32), random_tensor({c}, 33),
                  random_tensor({c}, 34, Device::cpu(), 0.5f, 2.f)},
       .no_grad = {3, 4},
       .forward =
           [training](const std::vector<Tensor>& in) {
             Tensor rm = in[3], rv = in[4];
             return std::vector<Tensor>{batch_norm2d(in[0], in[1], in[2], rm, rv, training), rm, rv};
           },
       .upstream = {.seed = 35},
       .tolerance = {tol, tol},
       .output_tolerance = {{1, running}, {2, running}},
       .gradient_tolerance = {{1, {1e-3f, tol}}, {2, {1e-3f, tol}}}},
      device);
}

TEST_P(BatchNormOnDevice, TrainingMatchesCpuAtWideResNetShape) {
  EXPECT_TRUE(batch_norm_matches_cpu({8, 16, 16, 16}, true, device()));
}

TEST_P(BatchNormOnDevice, EvaluationMatchesCpuAtWideResNetShape) {
  EXPECT_TRUE(batch_norm_matches_cpu({8, 16, 16, 16}, false, device()));
}

TEST_P(BatchNormOnDevice, TrainingMatchesCpuForPlanesSmallerAndLargerThanABlock) {
  // H W against the 512 threads of a statistics block: a ragged 7x7, one pixel, and 32x32 (more than a block).
  EXPECT_TRUE(batch_norm_matches_cpu({16, 5, 7, 7}, true, device()));
  EXPECT_TRUE(batch_norm_matches_cpu({700, 3, 1, 1}, true, device()));
  EXPECT_TRUE(batch_norm_matches_cpu({2, 3, 32, 32}, true, device()));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(BatchNormOnDevice);

TEST(BatchNormErrors, InvalidArgumentsAreReported) {
  Tensor x = random_tensor({2, 3, 4, 4}, 40), g = Tensor::ones({3}), b = Tensor::zeros({3});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  EXPECT_TRUE(throws_error([&] { batch_norm2d(x.reshape({2, 3, 16}), g, b, rm, rv, true); }, "4-d"));
  Tensor g4 = Tensor::ones({4});
  EXPECT_TRUE(throws_error([&] { batch_norm2d(x, g4, b, rm, rv, true); }, std::vector<std::string>{"weight", "float32[3]"}));
  Tensor rv_int = Tensor::ones({3}, DType::I32);
  EXPECT_TRUE(throws_error([&] { batch_norm2d(x, g, b, rm, rv_int, true); }, "running_var"));
  EXPECT_TRUE(throws_error([&] { batch_norm2d(x, g, b, rm, rv, true, 1.5f); }, "momentum"));
  EXPECT_TRUE(throws_error([&] { batch_norm2d(x, g, b, rm, rv, true, 0.1f, 0.f); }, "eps"));
  Tensor single = random_tensor({1, 3, 1, 1}, 41);
  EXPECT_TRUE(throws_error([&] { batch_norm2d(single, g, b, rm, rv, true); }, "more than one value per channel"));
  EXPECT_NO_THROW(batch_norm2d(single, g, b, rm, rv, false));
}

}  // namespace
}  // namespace sieve

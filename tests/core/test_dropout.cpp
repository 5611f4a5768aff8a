// dropout: the mask is Philox's, the same on every device; the kept fraction is 1 - p; gradients flow through the
// same mask; evaluation and p = 0 are the identity; p outside [0, 1) is an error.
#include <cmath>

#include "core/ops.h"
#include "core/ops/dropout.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::gradient_check;
using testing::random_tensor;
using testing::throws_error;

TEST(DropoutGradients, FixedMaskMatchesFiniteDifferences) {
  // A fresh generator per evaluation: every call of f draws the same mask.
  Tensor x = random_tensor({4, 7}, 1);
  Tensor w = random_tensor({28}, 2, Device::cpu(), 0.5f, 2.f);
  EXPECT_TRUE(gradient_check(
      [w](const auto& in) {
        Generator gen(3);
        return weighted_mean(dropout(in[0], 0.4f, gen, true).reshape({-1}), w);
      },
      {x}));
}

TEST(DropoutForward, KeepsAndScalesExactlyThePhiloxMask) {
  Tensor x = random_tensor({50, 40}, 4);
  Generator gen(5, 1000);
  const float p = 0.25f;
  const auto y = dropout(x, p, gen, true).to_vector<float>();
  const auto v = x.to_vector<float>();
  EXPECT_EQ(gen.offset(), 1000u + 2000u);  // the call reserved one counter per element
  for (size_t i = 0; i < v.size(); ++i) {
    const bool keep = philox_uniform(5, 1000, i) >= p;
    ASSERT_EQ(y[i], keep ? v[i] * (1.f / (1.f - p)) : 0.f) << "element " << i;
  }
}

TEST(DropoutForward, KeptFractionIsOneMinusP) {
  const int64_t n = 200000;
  Tensor ones = Tensor::ones({n});
  for (float p : {0.1f, 0.3f, 0.5f}) {
    Generator gen(6);
    const auto y = dropout(ones, p, gen, true).to_vector<float>();
    int64_t kept = 0;
    for (float v : y) kept += v != 0.f;
    // Binomial(n, 1 - p): standard error sqrt(p (1 - p) / n) ~ 1.1e-3 at most; 5 of them.
    const double se = std::sqrt(p * (1.0 - p) / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 5 * se) << "p = " << p;
  }
}

TEST(DropoutForward, EvaluationAndZeroProbabilityAreTheIdentity) {
  Tensor x = random_tensor({3, 5}, 7);
  Generator gen(8, 42);
  EXPECT_TRUE(dropout(x, 0.5f, gen, false).same_storage(x));
  EXPECT_TRUE(dropout(x, 0.f, gen, true).same_storage(x));
  EXPECT_EQ(gen.offset(), 42u);  // no counters drawn
}

TEST(DropoutForward, SuccessiveCallsDrawFreshMasks) {
  Tensor ones = Tensor::ones({1000});
  Generator gen(9);
  const auto a = dropout(ones, 0.5f, gen, true).to_vector<float>();
  const auto b = dropout(ones, 0.5f, gen, true).to_vector<float>();
  EXPECT_NE(a, b);
}

class DropoutOnDevice : public DeviceTest {};

TEST_P(DropoutOnDevice, MaskAndGradientIdenticalToCpu) {
  // N=8, C=16, H=W=16 activations; the mask depends only on (seed, offset, i), so the results agree exactly.
  const Tensor x = random_tensor({8, 16, 16, 16}, 10);
  const Tensor g = random_tensor({8, 16, 16, 16}, 11, Device::cpu(), 0.5f, 1.5f);
  auto run = [&](Device d) {
    Generator gen(12, 77);
    Tensor xd = x.to(d).clone();
    xd.set_requires_grad(true);
    Tensor y = dropout(xd, 0.3f, gen, true);
    y.backward(g.to(d));
    return std::pair<Tensor, Tensor>{y.detach().to(Device::cpu()), xd.grad().to(Device::cpu())};
  };
  const auto [y_ref, gx_ref] = run(Device::cpu());
  const auto [y_got, gx_got] = run(device());
  EXPECT_TRUE(all_close(y_got, y_ref, 0, 0)) << "forward";
  EXPECT_TRUE(all_close(gx_got, gx_ref, 0, 0)) << "gradient";
  // The gradient is the forward rule applied to g: zero exactly where the output is.
  const auto y = y_got.to_vector<float>(), gx = gx_got.to_vector<float>();
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i] == 0.f, gx[i] == 0.f) << "element " << i;
}

SIEVE_INSTANTIATE_DEVICE_TESTS(DropoutOnDevice);

TEST(DropoutErrors, ProbabilityOutsideZeroOneIsReported) {
  Tensor x = random_tensor({4}, 13);
  Generator gen(14);
  EXPECT_TRUE(throws_error([&] { dropout(x, 1.f, gen, true); }, std::vector<std::string>{"dropout", "[0, 1)"}));
  EXPECT_TRUE(throws_error([&] { dropout(x, -0.1f, gen, true); }, "[0, 1)"));
  EXPECT_TRUE(throws_error([&] { dropout(x, NAN, gen, false); }, "[0, 1)"));
  Tensor ints = Tensor::zeros({4}, DType::I32);
  EXPECT_TRUE(throws_error([&] { dropout(ints, 0.5f, gen, true); }, "float32"));
}

}  // namespace
}  // namespace sieve

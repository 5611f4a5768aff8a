// Hessian-vector products by central differences (core/hvp.h) against the exact Hessian of a linear softmax
// classifier.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/hvp.h"
#include "tests/core/softmax_classifier.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::SoftmaxClassifier;

class Hvp : public testing::DeviceTest {};

std::vector<double> exact_hv(const std::vector<double>& h, const std::vector<double>& v) {
  const size_t m = v.size();
  std::vector<double> out(m, 0.0);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < m; ++j) out[i] += h[i * m + j] * v[j];
  return out;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST_P(Hvp, MatchesExactHessianOfSoftmaxClassifier) {
  SoftmaxClassifier model(64, 6, 4, 11, device());
  const std::vector<Tensor> v = {testing::random_tensor({4, 6}, 21, device()), testing::random_tensor({4}, 22, device())};
  const HessianVectorProduct r = hessian_vector_product(model.params(), v, [&] { return model.loss_gradient(); });
  const std::vector<double> expected = exact_hv(model.hessian(), SoftmaxClassifier::flatten(v));
  const std::vector<double> actual = SoftmaxClassifier::flatten(r.hv);
  // Note [finite-difference hvp]: float32 gradients (rounding ~1e-7 ‖g‖, divided by ε ~ 1e-3) and the O(ε²)
  // truncation each stay below 1e-3 of the largest entry of Hv here; 5e-3 leaves room and still fails for a wrong
  // scale (a factor 2 in ε), a missing term, or a sign.
  EXPECT_LT(max_diff(actual, expected), 5e-3 * max_abs(expected));
  EXPECT_GT(r.epsilon, 0.0);
  // The mean of the two gradients and losses is the gradient and loss at w, to O(ε²).
  const LossGradient at_w = model.loss_gradient();
  EXPECT_TRUE(testing::all_close(r.gradient[0], at_w.gradients[0], 1e-5f, 1e-3f));
  EXPECT_TRUE(testing::all_close(r.gradient[1], at_w.gradients[1], 1e-5f, 1e-3f));
  EXPECT_NEAR(r.loss, model.loss(), 1e-5 * model.loss());
}

TEST_P(Hvp, RestoresParametersExactly) {
  SoftmaxClassifier model(32, 5, 3, 12, device());
  const std::vector<float> w0 = model.w.detach().to(Device::cpu()).to_vector<float>();
  const std::vector<float> b0 = model.b.detach().to(Device::cpu()).to_vector<float>();
  const std::vector<Tensor> v = {testing::random_tensor({3, 5}, 23, device()), testing::random_tensor({3}, 24, device())};
  hessian_vector_product(model.params(), v, [&] { return model.loss_gradient(); });
  EXPECT_EQ(model.w.detach().to(Device::cpu()).to_vector<float>(), w0);
  EXPECT_EQ(model.b.detach().to(Device::cpu()).to_vector<float>(), b0);
  // Also when the loss function throws on its second call.
  int calls = 0;
  EXPECT_THROW(hessian_vector_product(model.params(), v,
                                      [&] {
                                        if (++calls == 2) SIEVE_FAIL("loss failed");
                                        return model.loss_gradient();
                                      }),
               Error);
  EXPECT_EQ(model.w.detach().to(Device::cpu()).to_vector<float>(), w0);
  EXPECT_EQ(model.b.detach().to(Device::cpu()).to_vector<float>(), b0);
}

// The truncation error is O(ε²): with steps large enough that truncation dominates float32 rounding, halving the
// step divides the error by about four.
TEST_P(Hvp, ErrorShrinksQuadraticallyWithTheStep) {
  SoftmaxClassifier model(64, 6, 4, 13, device());
  const std::vector<Tensor> v = {testing::random_tensor({4, 6}, 25, device()), testing::random_tensor({4}, 26, device())};
  const std::vector<double> expected = exact_hv(model.hessian(), SoftmaxClassifier::flatten(v));
  auto error = [&](float kappa) {
    const HessianVectorProduct r =
        hessian_vector_product(model.params(), v, [&] { return model.loss_gradient(); }, kappa);
    return max_diff(SoftmaxClassifier::flatten(r.hv), expected);
  };
  const double coarse = error(0.4f), fine = error(0.2f);
  EXPECT_GT(coarse, 1e-4 * max_abs(expected));  // truncation is measurable at these steps
  EXPECT_GT(coarse / fine, 3.0);
  EXPECT_LT(coarse / fine, 5.0);
}

TEST(HvpErrors, RejectsMismatchedOrZeroDirections) {
  SoftmaxClassifier model(8, 3, 2, 14, Device::cpu());
  auto f = [&] { return model.loss_gradient(); };
  EXPECT_TRUE(testing::throws_error([&] { hessian_vector_product(model.params(), {Tensor::ones({2, 3})}, f); },
                                    {"1 direction tensors for 2 parameters"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { hessian_vector_product(model.params(), {Tensor::ones({3, 2}), Tensor::ones({2})}, f); },
      {"direction 0", "expected float32[2, 3]"}));
  EXPECT_TRUE(testing::throws_error(
      [&] { hessian_vector_product(model.params(), {Tensor::zeros({2, 3}), Tensor::zeros({2})}, f); },
      {"norm 0", "non-zero"}));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Hvp);

}  // namespace
}  // namespace sieve

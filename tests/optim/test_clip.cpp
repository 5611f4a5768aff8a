// clip_grad_norm: torch.nn.utils.clip_grad_norm_'s norm and scaling against a double-precision computation on
// both devices, gradients left alone below the threshold, the GPU against the CPU, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "optim/clip.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using ::sieve::testing::all_close;
using ::sieve::testing::random_tensor;
using ::sieve::testing::throws_error;

struct Params {
  std::vector<Tensor> params;
  std::vector<std::vector<float>> grads;  // the gradients before clipping, empty for a parameter without one
};

// Four parameters, the third without a gradient; gradients uniform in [-scale, scale).
Params make_params(Device device, float scale, uint64_t seed) {
  const std::vector<Shape> shapes = {{37, 11}, {5}, {8, 3}, {1000}};
  Params out;
  for (size_t t = 0; t < shapes.size(); ++t) {
    Tensor p = random_tensor(shapes[t], seed + t, device);
    p.set_requires_grad();
    if (t != 2) p.set_grad(random_tensor(shapes[t], seed + 100 + t, device, -scale, scale));
    out.grads.push_back(t != 2 ? p.grad().to_vector<float>() : std::vector<float>{});
    out.params.push_back(p);
  }
  return out;
}

double reference_norm(const Params& p) {
  double sum = 0;
  for (const auto& g : p.grads)
    for (float x : g) sum += static_cast<double>(x) * x;
  return std::sqrt(sum);
}

class ClipGradNorm : public ::sieve::testing::DeviceTest {};

TEST_P(ClipGradNorm, ScalesEveryGradientByMaxNormOverTheTotalNorm) {
  Params p = make_params(device(), 1.f, 10);
  const double norm = reference_norm(p);  // about sqrt(1416 / 3) = 21.7
  const float max_norm = 2.5f;
  const Tensor got = clip_grad_norm(p.params, max_norm);
  EXPECT_EQ(got.dim(), 0);
  EXPECT_EQ(got.device(), device());
  // Float32 partial sums of a few hundred squares each: relative error ~1e-6.
  EXPECT_NEAR(got.item(), norm, 1e-5 * norm);
  const double coef = max_norm / (norm + 1e-6);
  for (size_t t = 0; t < p.params.size(); ++t) {
    SCOPED_TRACE("parameter " + std::to_string(t));
    if (p.grads[t].empty()) {
      EXPECT_FALSE(p.params[t].grad().defined());
      continue;
    }
    std::vector<float> expected(p.grads[t].size());
    for (size_t j = 0; j < expected.size(); ++j) expected[j] = static_cast<float>(p.grads[t][j] * coef);
    EXPECT_TRUE(all_close(p.params[t].grad().to_vector<float>(), expected, 1e-7f, 2e-6f));
  }
  // The clipped gradients have the total norm max_norm.
  Params after = p;
  for (size_t t = 0; t < p.params.size(); ++t)
    if (!p.grads[t].empty()) after.grads[t] = p.params[t].grad().to_vector<float>();
  EXPECT_NEAR(reference_norm(after), max_norm, 1e-5 * max_norm);
}

TEST_P(ClipGradNorm, LeavesGradientsBelowTheThresholdUntouched) {
  Params p = make_params(device(), 0.01f, 20);
  const double norm = reference_norm(p);  // about 0.22
  const Tensor got = clip_grad_norm(p.params, 1.f);
  EXPECT_NEAR(got.item(), norm, 1e-5 * norm);
  for (size_t t = 0; t < p.params.size(); ++t)
    if (!p.grads[t].empty()) EXPECT_EQ(p.params[t].grad().to_vector<float>(), p.grads[t]) << "parameter " << t;
}

TEST_P(ClipGradNorm, NoGradientsGiveANormOfZero) {
  Tensor a = random_tensor({3}, 1, device());
  a.set_requires_grad();
  const Tensor got = clip_grad_norm({a}, 1.f);
  EXPECT_EQ(got.device(), device());
  EXPECT_EQ(got.item(), 0.f);
  EXPECT_FALSE(a.grad().defined());
}

TEST_P(ClipGradNorm, ANonFiniteNormMakesTheGradientsNonFinite) {
  // PyTorch (error_if_nonfinite False) multiplies by clamp(NaN, max=1) = NaN: a diverged step shows.
  Params p = make_params(device(), 1.f, 30);
  std::vector<float> g = p.grads[1];
  g[2] = NAN;
  p.params[1].set_grad(Tensor::from_vector(g, {5}, device()));
  EXPECT_TRUE(std::isnan(clip_grad_norm(p.params, 1.f).item()));
  for (float x : p.params[0].grad().to_vector<float>()) ASSERT_TRUE(std::isnan(x));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(ClipGradNorm);

class ClipGradNormGpu : public ::sieve::testing::GpuTest {};

TEST_F(ClipGradNormGpu, MatchesCpu) {
  const std::vector<Shape> shapes = {{1000, 300}, {4097}, {1}, {70000}};
  testing::TwinParameters params = testing::twin_parameters(shapes, 40);
  testing::set_twin_gradients(params, 50, -0.5f, 1.f);
  std::vector<Tensor>& cpu = params.cpu;
  std::vector<Tensor>& gpu = params.gpu;
  const float cpu_norm = clip_grad_norm(cpu, 3.f).item();
  const float gpu_norm = clip_grad_norm(gpu, 3.f).item();
  // Float32 block sums of ~1000 squares on the GPU against double sums on the CPU.
  EXPECT_NEAR(gpu_norm, cpu_norm, 1e-5 * cpu_norm);
  for (size_t t = 0; t < shapes.size(); ++t)
    EXPECT_TRUE(all_close(gpu[t].grad(), cpu[t].grad(), 1e-8f, 2e-5f)) << "parameter " << t;
  // Deterministic: the same gradients give the same norm, bit for bit.
  for (size_t t = 0; t < shapes.size(); ++t) gpu[t].set_grad(cpu[t].grad().to(Device::cuda(0)));
  const float again = clip_grad_norm(gpu, 3.f).item();
  for (size_t t = 0; t < shapes.size(); ++t) gpu[t].set_grad(cpu[t].grad().to(Device::cuda(0)));
  EXPECT_EQ(clip_grad_norm(gpu, 3.f).item(), again);
}

TEST(ClipGradNormArguments, RejectsBadMaxNormAndGradients) {
  Tensor a = random_tensor({3}, 1);
  a.set_requires_grad();
  a.set_grad(random_tensor({3}, 2));
  EXPECT_TRUE(throws_error([&] { clip_grad_norm({a}, 0.f); }, "max_norm must be finite and > 0, found 0"));
  EXPECT_TRUE(throws_error([&] { clip_grad_norm({a}, -1.f); }, "max_norm"));
  EXPECT_TRUE(throws_error([&] { clip_grad_norm({a}, INFINITY); }, "max_norm"));
  EXPECT_TRUE(throws_error([&] { clip_grad_norm({a, Tensor()}, 1.f); }, "parameter 1 is an undefined tensor"));
  if (cuda_available()) {
    Tensor b = random_tensor({3}, 3, Device::cuda(0));
    b.set_requires_grad();
    b.set_grad(random_tensor({3}, 4, Device::cuda(0)));
    EXPECT_TRUE(throws_error([&] { clip_grad_norm({a, b}, 1.f); }, "different devices"));
  }
}

}  // namespace
}  // namespace sieve

#include "core/ops.h"
#include "layers/models.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::gradient_check;
using testing::random_tensor;

TEST(Mlp, NamesShapesAndCountFollowTheHierarchy) {
  Generator gen(1);
  auto mlp = make_mlp(784, {512, 256}, 10, gen);
  const auto params = mlp->named_parameters();
  ASSERT_EQ(params.size(), 6u);
  EXPECT_EQ(params[0].first, "1.weight");
  EXPECT_EQ(params[0].second.shape(), (Shape{512, 784}));
  EXPECT_EQ(params[5].first, "5.bias");
  EXPECT_EQ(mlp->parameter_count(), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
  for (const Tensor& p : mlp->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(Mlp, InitialisationHasTheIntendedScale) {
  Generator gen(2);
  Linear hidden(400, 300, gen, {.init = Init::KaimingNormal});
  const auto w = hidden.weight.to_vector<float>();
  double var = 0;
  for (float x : w) var += x * x;
  var /= w.size();
  EXPECT_NEAR(var, 2.0 / 400, 0.05 * 2.0 / 400);  // 120k samples: relative standard error of the variance 0.4%
  Linear out(400, 10, gen, {.init = Init::GlorotUniform});
  const float a = std::sqrt(6.f / 410.f);
  for (float x : out.weight.to_vector<float>()) ASSERT_LE(std::abs(x), a);
  for (float b : out.bias.to_vector<float>()) EXPECT_EQ(b, 0.f);
}

TEST(Mlp, GradientsMatchFiniteDifferences) {
  Generator gen(3);
  auto mlp = make_mlp(6, {5}, 3, gen);
  Tensor x = random_tensor({4, 6}, 4);
  Tensor y = Tensor::from_vector<int32_t>({0, 2, 1, 2}, {4});
  std::vector<Tensor> params = mlp->parameters();
  // The parameters are the inputs of the check: perturbing them perturbs the module.
  EXPECT_TRUE(gradient_check([&](const std::vector<Tensor>&) { return mean(cross_entropy(mlp->forward(x), y)); },
                             params, 1e-2f, 1e-3f, 2e-2f));
}

class ModelOnDevice : public DeviceTest {};

TEST_P(ModelOnDevice, SameSeedSameModelOnEveryDevice) {
  Generator g1(5), g2(5);
  auto on_cpu = make_mlp(20, {16}, 4, g1);
  auto here = make_mlp(20, {16}, 4, g2, device());
  Tensor x = random_tensor({8, 20}, 6);
  EXPECT_TRUE(all_close(here->forward(x.to(device())), on_cpu->forward(x), 1e-5f, 1e-5f));
  auto moved = make_mlp(20, {16}, 4, *std::make_unique<Generator>(5));
  moved->to(device());
  EXPECT_EQ(moved->device(), device());
  EXPECT_TRUE(all_close(moved->forward(x.to(device())), on_cpu->forward(x), 1e-5f, 1e-5f));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(ModelOnDevice);

TEST(Models, SpecErrors) {
  Generator gen(7);
  EXPECT_NO_THROW(make_model("mlp", {1, 28, 28}, 10, gen));
  EXPECT_EQ(make_model("mlp:32", {1, 28, 28}, 10, gen)->parameter_count(), 784 * 32 + 32 + 32 * 10 + 10);
  EXPECT_THROW(make_model("mlp:0", {1, 28, 28}, 10, gen), Error);
  EXPECT_THROW(make_model("mlp:12,x", {1, 28, 28}, 10, gen), Error);
  EXPECT_THROW(make_model("transformer", {1, 28, 28}, 10, gen), Error);
}

}  // namespace
}  // namespace sieve

// BatchNorm2d, MaxPool2d, AvgPool2d, GlobalAvgPool and Dropout as modules: names, defaults, train/eval mode,
// moving between devices.
#include "core/ops.h"
#include "core/ops/batch_norm.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pool.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::random_tensor;
using testing::throws_error;

TEST(NormPoolLayers, BatchNormHasParametersBuffersAndDefaults) {
  BatchNorm2d bn(4);
  const auto params = bn.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(params[0].second.to_vector<float>(), std::vector<float>(4, 1.f));
  EXPECT_EQ(params[1].second.to_vector<float>(), std::vector<float>(4, 0.f));
  for (const Tensor& p : bn.parameters()) EXPECT_TRUE(p.requires_grad());
  const auto buffers = bn.named_buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].first, "running_mean");
  EXPECT_EQ(buffers[1].first, "running_var");
  EXPECT_EQ(buffers[0].second.to_vector<float>(), std::vector<float>(4, 0.f));
  EXPECT_EQ(buffers[1].second.to_vector<float>(), std::vector<float>(4, 1.f));
  EXPECT_EQ(bn.parameter_count(), 8);
  EXPECT_EQ(bn.describe(), "BatchNorm2d(4, momentum 0.1, eps 1e-05)");
}

TEST(NormPoolLayers, BatchNormUpdatesStatisticsOnlyInTraining) {
  BatchNorm2d bn(3);
  Tensor x = random_tensor({4, 3, 5, 5}, 1, Device::cpu(), 1.f, 3.f);
  bn.forward(x);
  const auto trained_mean = bn.running_mean.to_vector<float>();
  for (float m : trained_mean) EXPECT_NEAR(m, 0.2f, 0.02f);  // 0.1 × a batch mean of about 2
  bn.eval();
  Tensor y = bn.forward(x);
  EXPECT_EQ(bn.running_mean.to_vector<float>(), trained_mean);
  // Evaluation normalises with the running statistics: mostly still far from zero mean after one step.
  Tensor rm = bn.running_mean, rv = bn.running_var;
  EXPECT_TRUE(all_close(y, batch_norm2d(x, bn.weight, bn.bias, rm, rv, false), 0, 0));
}

TEST(NormPoolLayers, PoolLayersShapeAndDescribe) {
  Tensor x = random_tensor({2, 3, 8, 8}, 2);
  EXPECT_EQ(MaxPool2d(3, 2, 1).forward(x).shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(AvgPool2d(2, 2).forward(x).shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(GlobalAvgPool().forward(x).shape(), (Shape{2, 3}));
  EXPECT_EQ(MaxPool2d(3, 2, 1).describe(), "MaxPool2d(kernel 3, stride 2, padding 1)");
  EXPECT_EQ(AvgPool2d(2, 2).describe(), "AvgPool2d(kernel 2, stride 2)");
  EXPECT_EQ(MaxPool2d(2, 2).parameter_count(), 0);
}

TEST(NormPoolLayers, DropoutIsSeededAndTheIdentityInEvaluation) {
  Tensor x = random_tensor({16, 32}, 3);
  Dropout a(0.5f, 7), b(0.5f, 7);
  EXPECT_TRUE(all_close(a.forward(x), b.forward(x), 0, 0));  // same seed, same mask
  EXPECT_EQ(a.generator().offset(), 16u * 32u);
  a.eval();
  EXPECT_TRUE(a.forward(x).same_storage(x));
  EXPECT_EQ(a.describe(), "Dropout(p 0.5)");
}

TEST(NormPoolLayers, ConstructorsRejectImpossibleSettings) {
  EXPECT_TRUE(throws_error([] { BatchNorm2d(0); }, "channels"));
  EXPECT_TRUE(throws_error([] { BatchNorm2d(4, {.momentum = 2.f}); }, "momentum"));
  EXPECT_TRUE(throws_error([] { BatchNorm2d(4, {.eps = -1.f}); }, "eps"));
  EXPECT_TRUE(throws_error([] { MaxPool2d(0, 1); }, std::vector<std::string>{"MaxPool2d", "kernel"}));
  EXPECT_TRUE(throws_error([] { AvgPool2d(2, 2, 2); }, std::vector<std::string>{"AvgPool2d", "padding"}));
  EXPECT_TRUE(throws_error([] { Dropout(1.f); }, std::vector<std::string>{"Dropout", "[0, 1)"}));
}

// BatchNorm -> ReLU -> MaxPool -> Dropout -> GlobalAvgPool -> Linear, built on the CPU.
std::shared_ptr<Sequential> small_cnn_head() {
  Generator gen(4);
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<BatchNorm2d>(16));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<MaxPool2d>(3, 2, 1));
  net->add(std::make_shared<Dropout>(0.2f, 5));
  net->add(std::make_shared<AvgPool2d>(2, 2));
  net->add(std::make_shared<GlobalAvgPool>());
  net->add(std::make_shared<Linear>(16, 10, gen));
  return net;
}

TEST(NormPoolLayers, NamesFollowTheHierarchy) {
  auto net = small_cnn_head();
  const auto buffers = net->named_buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].first, "0.running_mean");
  EXPECT_EQ(net->named_parameters()[0].first, "0.weight");
}

class NormPoolLayersOnDevice : public DeviceTest {};

TEST_P(NormPoolLayersOnDevice, MovedNetworkMatchesCpuInTrainingAndEvaluation) {
  auto on_cpu = small_cnn_head(), here = small_cnn_head();
  here->to(device());
  EXPECT_EQ(here->named_buffers()[1].second.device(), device());
  const Tensor x = random_tensor({8, 16, 16, 16}, 6, Device::cpu(), -0.5f, 2.f);
  // Training: batch statistics and the same dropout masks (same seeds) on both devices.
  const float tol = 1e-4f;  // batch-norm statistics summed in float on a GPU, in double on the CPU
  EXPECT_TRUE(all_close(here->forward(x.to(device())), on_cpu->forward(x), tol, tol)) << "training";
  EXPECT_TRUE(all_close(here->named_buffers()[1].second, on_cpu->named_buffers()[1].second, 1e-6f, 1e-5f))
      << "running_var";
  here->eval();
  on_cpu->eval();
  EXPECT_TRUE(all_close(here->forward(x.to(device())), on_cpu->forward(x), tol, tol)) << "evaluation";
}

SIEVE_INSTANTIATE_DEVICE_TESTS(NormPoolLayersOnDevice);

}  // namespace
}  // namespace sieve

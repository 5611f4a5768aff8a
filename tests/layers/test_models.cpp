// The convolutional models: published parameter counts, shapes, and a whole block CPU-versus-GPU.
#include "core/ops.h"
#include "layers/models.h"
#include "layers/resnet.h"
#include "layers/wide_resnet.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::random_tensor;

int64_t count(const std::string& spec, const Shape& sample, int64_t classes) {
  Generator gen(1);
  return make_model(spec, sample, classes, gen)->parameter_count();
}

TEST(Models, ParameterCountsMatchPublishedFigures) {
  // Zagoruyko & Komodakis 2016: WRN-28-10 on CIFAR-10 has 36.5 M parameters (36 479 194 in the authors' code).
  EXPECT_EQ(count("wrn-28-10", {3, 32, 32}, 10), 36479194);
  // WRN-28-2, the importance-sampling paper's network: 1.47 M.
  EXPECT_NEAR(count("wrn-28-2", {3, 32, 32}, 10), 1.467e6, 0.01e6);
  // torchvision: resnet50 25 557 032, resnet18 11 689 512, resnet34 21 797 672 (1000 classes).
  EXPECT_EQ(count("resnet50", {3, 224, 224}, 1000), 25557032);
  EXPECT_EQ(count("resnet18", {3, 224, 224}, 1000), 11689512);
  EXPECT_EQ(count("resnet34", {3, 224, 224}, 1000), 21797672);
  for (const char* spec : {"wrn-16-4", "wrn-40-4"}) EXPECT_GT(count(spec, {3, 32, 32}, 100), 0) << spec;
}

TEST(Models, ForwardShapesOnSmallInputs) {
  Generator gen(2);
  auto wrn = make_model("wrn-10-1", {3, 32, 32}, 10, gen);
  EXPECT_EQ(wrn->forward(random_tensor({2, 3, 32, 32}, 3)).shape(), (Shape{2, 10}));
  auto cnn = make_model("cnn", {1, 28, 28}, 10, gen);
  EXPECT_EQ(cnn->forward(random_tensor({3, 1, 28, 28}, 4)).shape(), (Shape{3, 10}));
  auto resnet = make_model("resnet18", {3, 32, 32}, 7, gen);
  EXPECT_EQ(resnet->forward(random_tensor({2, 3, 32, 32}, 5)).shape(), (Shape{2, 7}));
}

TEST(Models, ResNetHeadIsReplaceable) {
  Generator gen(6);
  ResNet net(18, 3, 1000, gen, Device::cpu());
  net.reset_head(67, gen);
  EXPECT_EQ(net.forward(random_tensor({2, 3, 32, 32}, 7)).shape(), (Shape{2, 67}));
  EXPECT_EQ(net.parameter_count(), 11689512 - 513 * 1000 + 513 * 67);
  bool found = false;
  for (const auto& [name, t] : net.named_parameters()) found |= name == "fc.weight" && t.size(0) == 67;
  EXPECT_TRUE(found);
}

TEST(Models, SpecErrorsNameTheSpec) {
  Generator gen(8);
  EXPECT_TRUE(testing::throws_error([&] { make_model("wrn-27-2", {3, 32, 32}, 10, gen); }, "wrn-27-2"));
  EXPECT_TRUE(testing::throws_error([&] { make_model("resnet101", {3, 32, 32}, 10, gen); }, "resnet101"));
  EXPECT_TRUE(testing::throws_error([&] { make_model("wrn-28", {3, 32, 32}, 10, gen); }, "wrn-28"));
}

// A whole pre-activation block, forward and backward, on the GPU against the CPU (TF32 off).
class WideBlockGpu : public testing::GpuTest {};

TEST_F(WideBlockGpu, ForwardAndBackwardMatchCpu) {
  AllowTf32Scope exact(false);
  Generator g1(9), g2(9);
  WideBlock cpu_block(16, 32, 2, g1, Device::cpu());
  WideBlock gpu_block(16, 32, 2, g2, Device::cuda(0));
  Tensor x = random_tensor({4, 16, 16, 16}, 10);
  Tensor xc = x.clone().set_requires_grad(true), xg = x.to(Device::cuda(0)).set_requires_grad(true);
  Tensor yc = cpu_block.forward(xc), yg = gpu_block.forward(xg);
  EXPECT_TRUE(all_close(yg, yc, 1e-3f, 1e-3f));
  Tensor seed = random_tensor(yc.shape(), 11);
  yc.backward(seed);
  yg.backward(seed.to(Device::cuda(0)));
  EXPECT_TRUE(all_close(xg.grad(), xc.grad(), 1e-3f, 1e-3f));
  const auto pc = cpu_block.named_parameters(), pg = gpu_block.named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(all_close(pg[i].second.grad(), pc[i].second.grad(), 1e-3f, 1e-3f)) << pc[i].first;
}

}  // namespace
}  // namespace sieve

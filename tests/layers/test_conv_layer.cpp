// The Conv2d layer: its parameters, initial scale, description, errors, and the same layer on every device.
#include <cmath>

#include "core/ops.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::random_tensor;
using testing::throws_error;
// The parts one expected error message must contain.
using Parts = std::vector<std::string>;

TEST(Conv2dLayer, ParametersAreNamedAndCounted) {
  Generator gen(1);
  Conv2d conv(3, 16, 3, gen, {.padding = 1});
  const auto params = conv.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[0].second.shape(), (Shape{16, 3, 3, 3}));
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(params[1].second.shape(), (Shape{16}));
  EXPECT_EQ(conv.parameter_count(), 16 * 3 * 3 * 3 + 16);
  for (const Tensor& p : conv.parameters()) EXPECT_TRUE(p.requires_grad());
  for (float b : conv.bias.to_vector<float>()) EXPECT_EQ(b, 0.f);

  Conv2d no_bias(16, 32, {1, 3}, gen, {.stride = {2, 1}, .padding = {0, 1}, .bias = false});
  ASSERT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_EQ(no_bias.weight.shape(), (Shape{32, 16, 1, 3}));
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.parameter_count(), 32 * 16 * 3);
}

TEST(Conv2dLayer, KaimingInitialisationUsesTheKernelFanIn) {
  Generator gen(2);
  Conv2d conv(64, 128, 3, gen, {.padding = 1, .bias = false});
  const auto w = conv.weight.to_vector<float>();
  double mean = 0, var = 0;
  for (float x : w) mean += x;
  mean /= w.size();
  for (float x : w) var += (x - mean) * (x - mean);
  var /= w.size();
  const double expected = 2.0 / (64 * 3 * 3);  // fan_in = C * R * S, not C
  // 73,728 samples: the standard error of the variance is sqrt(2 / 73728) = 0.5% of it, of the mean 0.4% of std.
  EXPECT_NEAR(var, expected, 0.03 * expected);
  EXPECT_NEAR(mean, 0.0, 0.02 * std::sqrt(expected));
}

TEST(Conv2dLayer, ForwardIsTheOpWithTheLayersSettings) {
  Generator gen(3);
  Conv2d conv(3, 8, 3, gen, {.stride = 2, .padding = 1});
  Tensor x = random_tensor({2, 3, 9, 9}, 4);
  Tensor y = conv(x);
  EXPECT_EQ(y.shape(), (Shape{2, 8, 5, 5}));
  EXPECT_TRUE(all_close(y, conv2d(x, conv.weight, conv.bias, {2, 2, 1, 1}), 0.f, 0.f));
  EXPECT_EQ(conv.params().stride_h, 2);
  EXPECT_EQ(conv.params().pad_w, 1);
}

TEST(Conv2dLayer, DescribesItself) {
  Generator gen(4);
  EXPECT_EQ(Conv2d(3, 16, 3, gen, {.padding = 1}).describe(), "Conv2d(3 -> 16, 3x3, padding 1)");
  EXPECT_EQ(Conv2d(16, 32, 1, gen, {.stride = 2, .bias = false}).describe(), "Conv2d(16 -> 32, 1x1, stride 2, no bias)");
  EXPECT_EQ(Conv2d(4, 4, {1, 3}, gen, {.padding = {0, 1}}).describe(), "Conv2d(4 -> 4, 1x3, padding 0x1)");
}

TEST(Conv2dLayer, InvalidSettingsAreOneLineErrors) {
  Generator gen(5);
  EXPECT_TRUE(throws_error([&] { Conv2d(0, 16, 3, gen); }, "channel counts must be positive"));
  EXPECT_TRUE(throws_error([&] { Conv2d(3, 16, {3, 0}, gen); }, "kernel must be positive"));
  EXPECT_TRUE(throws_error([&] { Conv2d(3, 16, 3, gen, {.stride = 0}); }, "stride must be positive"));
  EXPECT_TRUE(throws_error([&] { Conv2d(3, 16, 3, gen, {.padding = -1}); }, "padding must not be negative"));
  Conv2d conv(3, 16, 3, gen);
  EXPECT_TRUE(throws_error([&] { conv(random_tensor({2, 4, 8, 8}, 6)); }, Parts{"4 channels", "expects 3"}));
}

TEST(Conv2dLayer, TrainsInsideASequential) {
  Generator gen(6);
  Sequential net;
  net.add(std::make_shared<Conv2d>(3, 4, 3, gen, Conv2dOptions{.stride = 2, .padding = 1}));
  net.add(std::make_shared<ReLU>());
  net.add(std::make_shared<Flatten>());
  net.add(std::make_shared<Linear>(4 * 4 * 4, 5, gen));
  EXPECT_EQ(net.named_parameters()[0].first, "0.weight");
  Tensor loss = mean(cross_entropy(net(random_tensor({2, 3, 8, 8}, 7)), Tensor::from_vector<int32_t>({1, 4}, {2})));
  loss.backward();
  for (const auto& [name, p] : net.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
}

class Conv2dLayerOnDevice : public DeviceTest {};

TEST_P(Conv2dLayerOnDevice, SameSeedSameLayerOnEveryDevice) {
  AllowTf32Scope exact(false);  // compare float32 with float32 (Note [conv tf32])
  Generator g1(8), g2(8);
  Conv2d on_cpu(3, 8, 3, g1, {.padding = 1});
  Conv2d here(3, 8, 3, g2, {.padding = 1, .device = device()});
  EXPECT_EQ(here.device(), device());
  // Philox gives both devices the same uniforms; the normal's logf/cosf may differ in the last ulps between the
  // host and device maths libraries (core/philox.h), so the Kaiming-normal weights agree to a few ulps, not bits.
  EXPECT_TRUE(all_close(here.weight.to(Device::cpu()), on_cpu.weight, 1e-6f, 1e-5f));
  Tensor x = random_tensor({2, 3, 8, 8}, 9);
  // 27 products per output, each O(0.3): float32 results within a few ulps of each other.
  EXPECT_TRUE(all_close(here(x.to(device())), on_cpu(x), 1e-5f, 1e-5f));
  on_cpu.to(device());
  EXPECT_EQ(on_cpu.weight.device(), device());
  EXPECT_TRUE(on_cpu.weight.requires_grad());
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Conv2dLayerOnDevice);

}  // namespace
}  // namespace sieve

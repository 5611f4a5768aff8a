// max_pool2d, avg_pool2d, global_avg_pool: gradients against finite differences, forward against direct
// double-precision windows, every device against the CPU, and argument errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "core/ops.h"
#include "core/ops/pool.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceCase;
using testing::DeviceTest;
using testing::gradient_check;
using testing::matches_cpu;
using testing::random_tensor;
using testing::weighted_total;
using testing::throws_error;

// Distinct values 0.1 apart (a shuffled ramp, never zero): finite differences of step 1e-2 cannot change which
// element of a window is the largest.
Tensor separated_tensor(const Shape& shape, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  std::iota(v.begin(), v.end(), 0.f);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  for (float& x : v) x = 0.1f * x - 0.1f * static_cast<float>(v.size() / 2) + 0.05f;
  return Tensor::from_vector(v, shape);
}

struct Window {
  int kernel, stride, padding;
};
// Non-overlapping, overlapping with padding, and strided with padding.
const Window kWindows[] = {{2, 2, 0}, {3, 1, 1}, {3, 2, 1}};

TEST(PoolGradients, MaxPoolMatchesFiniteDifferences) {
  Tensor x = separated_tensor({2, 2, 5, 5}, 1);
  for (const Window w : kWindows)
    EXPECT_TRUE(gradient_check(
        [w](const auto& in) { return weighted_total(max_pool2d(in[0], w.kernel, w.stride, w.padding), 2); }, {x}))
        << "kernel " << w.kernel << " stride " << w.stride << " padding " << w.padding;
}

TEST(PoolGradients, AvgPoolMatchesFiniteDifferences) {
  Tensor x = random_tensor({2, 2, 5, 5}, 3);
  for (const Window w : kWindows)
    EXPECT_TRUE(gradient_check(
        [w](const auto& in) { return weighted_total(avg_pool2d(in[0], w.kernel, w.stride, w.padding), 4); }, {x}))
        << "kernel " << w.kernel << " stride " << w.stride << " padding " << w.padding;
}

TEST(PoolGradients, GlobalAvgPoolMatchesFiniteDifferences) {
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(global_avg_pool(in[0]), 5); },
                             {random_tensor({3, 2, 3, 4}, 6)}));
}

// Direct pooling of a host tensor in double: max (padding never wins) or average over kernel^2
// (count_include_pad).
std::vector<float> reference_pool(const Tensor& x, Window w, bool max) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t oh = (h + 2 * w.padding - w.kernel) / w.stride + 1, ow = (wd + 2 * w.padding - w.kernel) / w.stride + 1;
  const auto v = x.to_vector<float>();
  std::vector<float> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t ky = 0; ky < w.kernel; ++ky)
          for (int64_t kx = 0; kx < w.kernel; ++kx) {
            const int64_t iy = oy * w.stride - w.padding + ky, ix = ox * w.stride - w.padding + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            best = std::max(best, static_cast<double>(v[(p * h + iy) * wd + ix]));
            sum += v[(p * h + iy) * wd + ix];
          }
        out.push_back(static_cast<float>(max ? best : sum / (w.kernel * w.kernel)));
      }
  return out;
}

TEST(PoolForward, MaxAndAvgMatchDirectWindows) {
  Tensor x = random_tensor({2, 3, 7, 6}, 7);
  for (const Window w : kWindows) {
    EXPECT_TRUE(all_close(max_pool2d(x, w.kernel, w.stride, w.padding).to_vector<float>(), reference_pool(x, w, true),
                          0, 0))
        << "max, kernel " << w.kernel << " stride " << w.stride << " padding " << w.padding;
    EXPECT_TRUE(all_close(avg_pool2d(x, w.kernel, w.stride, w.padding).to_vector<float>(), reference_pool(x, w, false),
                          1e-6f, 1e-6f))
        << "avg, kernel " << w.kernel << " stride " << w.stride << " padding " << w.padding;
  }
  EXPECT_EQ(max_pool2d(x, 3, 2, 1).shape(), (Shape{2, 3, 4, 3}));
}

TEST(PoolForward, AvgPoolCountsPaddingInTheDivisor) {
  // The corner window of a 3x3 kernel with padding 1 covers 4 real values and 5 padded zeros: divided by 9.
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  const auto y = avg_pool2d(x, 3, 2, 1).to_vector<float>();
  ASSERT_EQ(y.size(), 4u);
  EXPECT_FLOAT_EQ(y[0], (1 + 2 + 4 + 5) / 9.f);
  EXPECT_FLOAT_EQ(y[3], (5 + 6 + 8 + 9) / 9.f);
}

TEST(PoolForward, MaxPoolPaddingNeverWinsAndNanPropagates) {
  Tensor x = random_tensor({1, 2, 4, 4}, 8, Device::cpu(), -3.f, -1.f);
  for (float y : max_pool2d(x, 3, 2, 1).to_vector<float>()) EXPECT_LT(y, -0.5f);
  std::vector<float> v = x.to_vector<float>();
  v[5] = NAN;  // (1, 1) of the first plane: inside the first window of 2x2 pooling only
  const auto y = max_pool2d(Tensor::from_vector(v, {1, 2, 4, 4}), 2, 2).to_vector<float>();
  EXPECT_TRUE(std::isnan(y[0]));
  for (size_t i = 1; i < y.size(); ++i) EXPECT_FALSE(std::isnan(y[i])) << i;
}

TEST(PoolForward, GlobalAvgPoolIsThePlaneMean) {
  Tensor x = random_tensor({3, 4, 5, 6}, 9);
  const auto v = x.to_vector<float>();
  std::vector<float> ref(12);
  for (int p = 0; p < 12; ++p) {
    double s = 0;
    for (int i = 0; i < 30; ++i) s += v[p * 30 + i];
    ref[p] = static_cast<float>(s / 30);
  }
  Tensor y = global_avg_pool(x);
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  EXPECT_TRUE(all_close(y.to_vector<float>(), ref, 1e-6f, 1e-6f));
}

class PoolOnDevice : public DeviceTest {};

// Forward and the gradient of x (upstream gradient from seed 20) on the test's device against the CPU.
DeviceCase pool_case(std::string name, const Tensor& x, std::function<Tensor(const Tensor&)> f, float tol) {
  return {.name = std::move(name),
          .inputs = {x},
          .forward = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0])}; },
          .upstream = {.seed = 20},
          .tolerance = {tol, tol}};
}

TEST_P(PoolOnDevice, MaxAndAvgMatchCpuAtWideResNetShape) {
  const Tensor x = random_tensor({8, 16, 16, 16}, 21);
  // Both backends run the same window functions in the same order; only contraction into fused multiply-adds
  // may differ, a few ulps of values below 1 after averaging at most 9 of them.
  for (const Window w : kWindows) {
    const std::string window = ", kernel " + std::to_string(w.kernel) + " stride " + std::to_string(w.stride) +
                               " padding " + std::to_string(w.padding);
    auto max = [w](const Tensor& t) { return max_pool2d(t, w.kernel, w.stride, w.padding); };
    auto avg = [w](const Tensor& t) { return avg_pool2d(t, w.kernel, w.stride, w.padding); };
    EXPECT_TRUE(matches_cpu(pool_case("max_pool2d" + window, x, max, 0), device()));
    EXPECT_TRUE(matches_cpu(pool_case("avg_pool2d" + window, x, avg, 1e-6f), device()));
  }
}

TEST_P(PoolOnDevice, GlobalAvgPoolMatchesCpu) {
  // Sums of 256 and 49 values in different orders (sequential against a warp's tree): ~1e-7 relative.
  EXPECT_TRUE(matches_cpu(pool_case("global_avg_pool [8, 16, 16, 16]", random_tensor({8, 16, 16, 16}, 22),
                                    [](const Tensor& t) { return global_avg_pool(t); }, 1e-6f),
                          device()));
  EXPECT_TRUE(matches_cpu(pool_case("global_avg_pool [8, 64, 7, 7]", random_tensor({8, 64, 7, 7}, 23),
                                    [](const Tensor& t) { return global_avg_pool(t); }, 1e-6f),
                          device()));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(PoolOnDevice);

TEST(PoolErrors, InvalidArgumentsAreReported) {
  Tensor x = random_tensor({2, 3, 4, 4}, 30);
  EXPECT_TRUE(throws_error([&] { max_pool2d(x.reshape({6, 4, 4}), 2, 2); }, std::vector<std::string>{"max_pool2d", "4-d"}));
  EXPECT_TRUE(throws_error([&] { max_pool2d(x, 0, 2); }, "kernel and stride"));
  EXPECT_TRUE(throws_error([&] { avg_pool2d(x, 2, 0); }, "kernel and stride"));
  EXPECT_TRUE(throws_error([&] { avg_pool2d(x, 3, 1, 2); }, "padding"));
  EXPECT_TRUE(throws_error([&] { max_pool2d(x, 5, 1); }, "larger than the padded input"));
  EXPECT_TRUE(throws_error([&] { global_avg_pool(x.reshape({2, 3, 16})); }, "global_avg_pool"));
  Tensor ints = Tensor::zeros({1, 1, 2, 2}, DType::I32);
  EXPECT_TRUE(throws_error([&] { avg_pool2d(ints, 2, 2); }, "float32"));
}

}  // namespace
}  // namespace sieve

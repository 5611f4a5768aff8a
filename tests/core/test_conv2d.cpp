// conv2d: the CPU path against direct loops in double and against finite differences, each device against the
// CPU at Wide-ResNet shapes, readable shape errors, and the GPU's TF32 setting and memory reuse.
#include <random>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/ops.h"
#include "core/ops/conv2d.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::cpu_backends_built;
using testing::DeviceCase;
using testing::DeviceTest;
using testing::evaluate;
using testing::GpuTest;
using testing::gradient_check;
using testing::matches_cpu;
using testing::random_tensor;
using testing::throws_error;
using testing::Tolerance;
// The parts one expected error message must contain.
using Parts = std::vector<std::string>;

Conv2dParams params_of(const Conv2dShape& s) { return {s.stride_h, s.stride_w, s.pad_h, s.pad_w}; }
Shape x_shape(const Conv2dShape& s) { return {s.n, s.c, s.h, s.w}; }
Shape w_shape(const Conv2dShape& s) { return {s.k, s.c, s.r, s.s}; }
Shape y_shape(const Conv2dShape& s) { return {s.n, s.k, s.p(), s.q()}; }

std::string describe(const Conv2dShape& s) {
  return "x [" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " +
         std::to_string(s.w) + "], w [" + std::to_string(s.k) + ", " + std::to_string(s.c) + ", " +
         std::to_string(s.r) + ", " + std::to_string(s.s) + "], stride " + std::to_string(s.stride_h) + "x" +
         std::to_string(s.stride_w) + ", padding " + std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w);
}

// Small shapes for the CPU checks, one per path through im2col:
//   n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w
const std::vector<Conv2dShape> kSmallCases = {
    {2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1},  // 3x3 "same" convolution
    {2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1},  // 3x3 stride 2, padded: Wide-ResNet's downsampling
    {2, 3, 8, 6, 4, 3, 3, 2, 2, 0, 0},  // stride 2 unpadded: the last row and column are never read
    {3, 4, 5, 5, 2, 1, 1, 1, 1, 0, 0},  // 1x1: the pointwise path without im2col
    {2, 4, 6, 6, 3, 1, 1, 2, 2, 0, 0},  // 1x1 stride 2: Wide-ResNet's shortcut
    {2, 2, 5, 6, 3, 2, 3, 2, 1, 0, 1},  // non-square kernel, unequal strides and paddings
    {1, 2, 3, 3, 2, 5, 5, 1, 1, 1, 1},  // the kernel covers the whole padded input: one output pixel
    {2, 2, 7, 7, 2, 1, 2, 3, 3, 1, 0},  // stride beyond the kernel: unread pixels get zero gradient
};

// y in double by the definition in conv2d.h: seven loops, no im2col.
std::vector<float> direct_conv2d(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>& bias) {
  const int64_t P = s.p(), Q = s.q();
  std::vector<float> y(s.n * s.k * P * Q);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t k = 0; k < s.k; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          double total = bias.empty() ? 0.0 : bias[k];
          for (int64_t c = 0; c < s.c; ++c)
            for (int64_t r = 0; r < s.r; ++r)
              for (int64_t t = 0; t < s.s; ++t) {
                const int64_t ih = p * s.stride_h - s.pad_h + r, iw = q * s.stride_w - s.pad_w + t;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                total += static_cast<double>(x[((n * s.c + c) * s.h + ih) * s.w + iw]) *
                         w[((k * s.c + c) * s.r + r) * s.s + t];
              }
          y[((n * s.k + k) * P + p) * Q + q] = static_cast<float>(total);
        }
  return y;
}

TEST(Conv2dCpu, ForwardMatchesDirectLoopsInDouble) {
  for (const CpuBackend backend : cpu_backends_built()) {
    SCOPED_TRACE(cpu_backend_name(backend));
    const CpuBackendScope scope(backend);
    uint64_t seed = 100;
    for (const Conv2dShape& s : kSmallCases) {
      Tensor x = random_tensor(x_shape(s), seed++), w = random_tensor(w_shape(s), seed++);
      Tensor b = random_tensor({s.k}, seed++);
      const auto expected = direct_conv2d(s, x.to_vector<float>(), w.to_vector<float>(), b.to_vector<float>());
      Tensor y = conv2d(x, w, b, params_of(s));
      ASSERT_EQ(y.shape(), y_shape(s)) << describe(s);
      // At most C*R*S = 50 products of magnitude <= 1 per output: float32 GEMM rounding stays within
      // ~sqrt(50) * 6e-8 * 50 = 2e-5 of the double result, 1e-5 relative for the larger sums.
      EXPECT_TRUE(all_close(y.to_vector<float>(), expected, 2e-5f, 1e-5f)) << describe(s);
      const auto no_bias = direct_conv2d(s, x.to_vector<float>(), w.to_vector<float>(), {});
      EXPECT_TRUE(all_close(conv2d(x, w, Tensor(), params_of(s)).to_vector<float>(), no_bias, 2e-5f, 1e-5f))
          << describe(s) << " without bias";
    }
  }
}

// sum(conv2d(...) * weights): random weights make every output matter to the gradient.
Tensor weighted_sum(const Tensor& y, uint64_t seed) {
  return sum(mul(y, random_tensor(y.shape(), seed, y.device(), 0.5f, 2.f)));
}

TEST(Conv2dCpu, GradientsMatchFiniteDifferences) {
  // conv2d is linear in each of x, w and bias separately, so central differences have no truncation error at
  // any step: a large step h = 0.5 keeps the float rounding of f (~1e-5 for sums of a few hundred O(1) terms,
  // divided by 2h = 1) far below the tolerance, which an indexing error (an O(1) difference) exceeds.
  for (const CpuBackend backend : cpu_backends_built()) {
    SCOPED_TRACE(cpu_backend_name(backend));
    const CpuBackendScope scope(backend);
    uint64_t seed = 200;
    for (const Conv2dShape& s : kSmallCases) {
      const Conv2dParams p = params_of(s);
      Tensor x = random_tensor(x_shape(s), seed++), w = random_tensor(w_shape(s), seed++);
      Tensor b = random_tensor({s.k}, seed++);
      const uint64_t out_seed = seed++;
      auto with_bias = [&](const auto& in) { return weighted_sum(conv2d(in[0], in[1], in[2], p), out_seed); };
      auto without_bias = [&](const auto& in) {
        return weighted_sum(conv2d(in[0], in[1], Tensor(), p), out_seed);
      };
      EXPECT_TRUE(gradient_check(with_bias, {x, w, b}, 0.5f, 1e-3f, 1e-3f)) << describe(s);
      EXPECT_TRUE(gradient_check(without_bias, {x.clone(), w.clone()}, 0.5f, 1e-3f, 1e-3f))
          << describe(s) << " without bias";
    }
  }
}

TEST(Conv2dCpu, InputNeedsNoGradientForTheFirstLayer) {
  Tensor x = random_tensor({2, 3, 6, 6}, 300), w = random_tensor({4, 3, 3, 3}, 301), b = random_tensor({4}, 302);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  sum(conv2d(x, w, b, {1, 1, 1, 1})).backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().shape(), (Shape{4, 3, 3, 3}));
  // d sum(y) / d bias[k] counts the outputs of channel k: n * P * Q = 2 * 6 * 6.
  EXPECT_TRUE(all_close(b.grad(), Tensor::full({4}, 72.0), 0.f, 0.f));
}

TEST(Conv2dCpu, ShapeErrorsAreOneLineMessages) {
  Tensor x = random_tensor({2, 3, 8, 8}, 310), w = random_tensor({4, 3, 3, 3}, 311);
  EXPECT_TRUE(throws_error([&] { conv2d(x, random_tensor({4, 5, 3, 3}, 312), Tensor()); },
                           Parts{"conv2d", "3 channels", "expects 5"}));
  Tensor small = random_tensor({1, 3, 3, 3}, 313), large_kernel = random_tensor({2, 3, 5, 5}, 314);
  EXPECT_TRUE(throws_error([&] { conv2d(small, large_kernel, Tensor()); },
                           Parts{"kernel 5x5", "larger than the padded input 3x3"}));
  // The same kernel fits once padded.
  EXPECT_EQ(conv2d(small, large_kernel, Tensor(), {1, 1, 1, 1}).shape(), (Shape{1, 2, 1, 1}));
  EXPECT_TRUE(throws_error([&] { conv2d(x, w, random_tensor({3}, 315)); }, Parts{"bias", "4 output channels"}));
  EXPECT_TRUE(throws_error([&] { conv2d(x.reshape({6, 8, 8}), w, Tensor()); }, Parts{"conv2d input", "4-d"}));
  EXPECT_TRUE(throws_error([&] { conv2d(x, w.reshape({4, 27}), Tensor()); }, Parts{"conv2d weight", "4-d"}));
  EXPECT_TRUE(throws_error([&] { conv2d(x, w, Tensor(), {0, 1, 0, 0}); }, "strides must be at least 1"));
  EXPECT_TRUE(throws_error([&] { conv2d(x, w, Tensor(), {1, 1, -1, 0}); }, "padding must not be negative"));
  EXPECT_TRUE(throws_error([&] { conv2d(Tensor::zeros({2, 3, 8, 8}, DType::I32), w, Tensor()); },
                           Parts{"conv2d input", "float32"}));
}

// conv2d with bias as a device case: x, w and b random from seeds seed, seed + 1 and seed + 2, the upstream gradient
// from seed + 3 (values in [0.5, 1.5)); x needs no gradient unless x_needs_grad (the stem's image needs none).
DeviceCase conv_case(const Conv2dShape& s, uint64_t seed, bool x_needs_grad, Tolerance tolerance) {
  return {.name = describe(s) + (x_needs_grad ? "" : ", x needs no gradient"),
          .inputs = {random_tensor(x_shape(s), seed), random_tensor(w_shape(s), seed + 1),
                     random_tensor({s.k}, seed + 2)},
          .no_grad = x_needs_grad ? std::vector<size_t>{} : std::vector<size_t>{0},
          .forward = [p = params_of(s)](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{conv2d(in[0], in[1], in[2], p)};
          },
          .upstream = {.seed = seed + 3},
          .tolerance = tolerance};
}

class Conv2dOnDevice : public DeviceTest {};

TEST_P(Conv2dOnDevice, ForwardAndGradientsMatchCpuAtWideResNetShapes) {
  const AllowTf32Scope exact(false);
  // n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w; the last flag: whether x needs a gradient.
  const std::vector<std::pair<Conv2dShape, bool>> cases = {
      {{4, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1}, true},   // a block's 3x3 convolution
      {{4, 16, 16, 16, 32, 3, 3, 2, 2, 1, 1}, true},   // the downsampling 3x3 convolution
      {{4, 16, 16, 16, 32, 1, 1, 2, 2, 0, 0}, true},   // the 1x1 shortcut
      {{4, 3, 16, 16, 16, 3, 3, 1, 1, 1, 1}, false},  // the stem: the image needs no gradient
      {{4, 8, 12, 10, 8, 1, 3, 1, 2, 0, 1}, true},    // non-square kernel and strides
  };
  // Sums have at most N*P*Q = 1024 (weight gradient) or K*R*S = 288 (input gradient) terms of magnitude
  // <= 1.5, so results are O(10). Summing in another order (cuDNN's tiling, Winograd or FFT transforms) moves
  // a float32 result by ~sqrt(n) * 6e-8 * |partial sums| ~ 1e-5, up to ~10x more through the transforms;
  // 1e-3 absolute keeps a margin and still catches any indexing error, which shows as an O(1) difference.
  // Where x needs no gradient, matches_cpu checks that neither device gives it one.
  const Tolerance tolerance{1e-3f, 1e-4f};
  uint64_t seed = 400;
  for (const auto& [s, x_needs_grad] : cases) {
    EXPECT_TRUE(matches_cpu(conv_case(s, seed, x_needs_grad, tolerance), device()));
    seed += 4;
  }
}

TEST_P(Conv2dOnDevice, EmptyBatchGivesEmptyOutputAndZeroGradients) {
  const Conv2dShape s{0, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1};
  // w and b from seeds 500 and 501; x and the upstream gradient have no elements, whatever their seeds.
  const testing::Evaluation r = evaluate(conv_case(s, 499, true, {}), device());
  ASSERT_EQ(r.outputs.size(), 1u);
  ASSERT_EQ(r.gradients.size(), 3u);
  EXPECT_EQ(r.outputs[0].shape(), (Shape{0, 4, 8, 8}));
  ASSERT_TRUE(r.gradients[0].defined());
  EXPECT_EQ(r.gradients[0].shape(), (Shape{0, 3, 8, 8}));
  EXPECT_TRUE(all_close(r.gradients[1], Tensor::zeros(w_shape(s)), 0.f, 0.f));
  EXPECT_TRUE(all_close(r.gradients[2], Tensor::zeros({4}), 0.f, 0.f));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Conv2dOnDevice);

TEST(Conv2dTf32, OnByDefaultAndSwitchable) {
  EXPECT_TRUE(allow_tf32());
  {
    const AllowTf32Scope exact(false);
    EXPECT_FALSE(allow_tf32());
  }
  EXPECT_TRUE(allow_tf32());
}

class Conv2dGpu : public GpuTest {};

TEST_F(Conv2dGpu, Tf32StaysCloseToFloat32) {
  const AllowTf32Scope fast(true);
  const Conv2dShape s{4, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1};
  // TF32 keeps 10 mantissa bits: each product is off by up to ~1e-3 relative, and 144 (forward) to 1024
  // (weight gradient) of them with random signs add to ~sqrt(n) * 1e-3 * |term| ~ 1e-2 for these O(1) terms.
  // Forward and input gradient within {5e-2, 1e-2}, the weight gradient within {2e-1, 1e-2}, the bias gradient
  // (no products: exact summation) within {1e-2, 1e-4}.
  DeviceCase c = conv_case(s, 600, true, {5e-2f, 1e-2f});
  c.gradient_tolerance = {{1, {2e-1f, 1e-2f}}, {2, {1e-2f, 1e-4f}}};
  EXPECT_TRUE(matches_cpu(c, Device::cuda(0)));
}

// --cudnn-benchmark: the algorithms cuDNN's timing picks compute the same convolutions (exact float32, the
// WRN-28-2 shapes' tolerance above), whichever they are; the heuristic plans of the same shapes are cached apart.
TEST_F(Conv2dGpu, BenchmarkedAlgorithmsMatchTheCpu) {
  const AllowTf32Scope exact(false);
  set_conv_benchmark(true);
  struct Restore {
    ~Restore() { set_conv_benchmark(false); }
  } restore;
  uint64_t seed = 700;
  for (const Conv2dShape& s : {Conv2dShape{4, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1},
                               Conv2dShape{4, 16, 16, 16, 32, 1, 1, 2, 2, 0, 0},
                               Conv2dShape{8, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1}}) {
    EXPECT_TRUE(matches_cpu(conv_case(s, seed, true, {1e-3f, 1e-4f}), Device::cuda(0)));
    seed += 4;
  }
}

TEST(Conv2dBenchmark, OffByDefaultAndSwitchable) {
  EXPECT_FALSE(conv_benchmark());
  set_conv_benchmark(true);
  EXPECT_TRUE(conv_benchmark());
  set_conv_benchmark(false);
  EXPECT_FALSE(conv_benchmark());
}

TEST_F(Conv2dGpu, RepeatedCallsReuseCachedMemory) {
  // Descriptors and algorithms are built once per shape and workspaces come from the caching allocator
  // (Note [conv plans]): after the first step, steps of the same shape never reach cudaMalloc.
  const DeviceCase c = conv_case({8, 16, 16, 16, 32, 3, 3, 2, 2, 1, 1}, 700, true, {});
  evaluate(c, Device::cuda(0));
  const uint64_t mallocs = allocator_stats(0).device_mallocs;
  for (int step = 0; step < 3; ++step) evaluate(c, Device::cuda(0));
  EXPECT_EQ(allocator_stats(0).device_mallocs, mallocs);
}

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

// The im2col backend unrolls groups of images into one matrix (8 MiB of workspace: 10 images of 16x32x32 with a 3x3
// kernel). A batch of 70 spans seven groups; every image and the summed weight gradient must equal the one-image
// computations, which always fit in one group.
TEST(Conv2dCpu, ManyGroupsEqualImageByImage) {
  const CpuBackendScope scope(CpuBackend::Reference);
  Tensor x = testing::random_tensor({70, 16, 32, 32}, 31);
  Tensor w = testing::random_tensor({32, 16, 3, 3}, 32).set_requires_grad(true);
  const Conv2dParams p{1, 1, 1, 1};
  Tensor y = conv2d(x, w, Tensor(), p);
  Tensor seed = testing::random_tensor(y.shape(), 33);
  y.backward(seed);
  const std::vector<float> dw_batch = w.grad().to_vector<float>();
  std::vector<float> dw_sum(dw_batch.size(), 0.f);
  for (int64_t i = 0; i < 70; i += 1) {
    w.zero_grad();
    Tensor yi = conv2d(x.rows(i, i + 1), w, Tensor(), p);
    if (i % 9 == 0) EXPECT_TRUE(testing::all_close(yi, y.rows(i, i + 1).clone(), 1e-5f, 1e-5f)) << "image " << i;
    yi.backward(seed.rows(i, i + 1).clone());
    const auto dwi = w.grad().to_vector<float>();
    for (size_t j = 0; j < dwi.size(); ++j) dw_sum[j] += dwi[j];
  }
  EXPECT_TRUE(testing::all_close(dw_batch, dw_sum, 1e-3f, 1e-4f));
}

// oneDNN's three directions against im2col's on random data of shape s (with a bias when `bias`), within
// `atol` + 1e-4 relative; *seed advances by 4.
void expect_onednn_matches_im2col(const Conv2dShape& s, uint64_t* seed, bool bias, float atol) {
  const std::vector<float> x = random_tensor(x_shape(s), (*seed)++).to_vector<float>();
  const std::vector<float> w = random_tensor(w_shape(s), (*seed)++).to_vector<float>();
  const std::vector<float> b = random_tensor({s.k}, (*seed)++).to_vector<float>();
  const std::vector<float> dy = random_tensor(y_shape(s), (*seed)++).to_vector<float>();
  const size_t ny = dy.size();
  std::vector<float> y(ny), y_ref(ny), dx(x.size()), dx_ref(x.size()), dw(w.size()), dw_ref(w.size());
  cpu::onednn::conv2d_fwd(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  cpu::reference::conv2d_fwd(s, x.data(), w.data(), bias ? b.data() : nullptr, y_ref.data());
  cpu::onednn::conv2d_bwd_data(s, dy.data(), w.data(), dx.data());
  cpu::reference::conv2d_bwd_data(s, dy.data(), w.data(), dx_ref.data());
  cpu::onednn::conv2d_bwd_filter(s, x.data(), dy.data(), dw.data());
  cpu::reference::conv2d_bwd_filter(s, x.data(), dy.data(), dw_ref.data());
  EXPECT_TRUE(all_close(y, y_ref, atol, 1e-4f)) << "forward";
  EXPECT_TRUE(all_close(dx, dx_ref, atol, 1e-4f)) << "input gradient";
  EXPECT_TRUE(all_close(dw, dw_ref, atol, 1e-4f)) << "weight gradient";
}

// oneDNN's three directions against im2col's (the reference) on random shapes: strides, paddings and kernels of
// every kind, batches of 1 to 9, Wide-ResNet's widths; each shape twice, with new data and new pointers, so that
// a plan that kept a pointer of its first call would fail the second.
TEST(Conv2dCpu, OneDnnMatchesIm2colOnRandomShapes) {
  if (!cpu::onednn::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(7);
  auto pick = [&rng](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::vector<Conv2dShape> shapes = {{4, 16, 32, 32, 32, 3, 3, 1, 1, 1, 1},  // Wide-ResNet's
                                     {3, 32, 32, 32, 64, 3, 3, 2, 2, 1, 1},
                                     {3, 32, 32, 32, 64, 1, 1, 2, 2, 0, 0},
                                     {2, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1}};
  for (int i = 0; i < 24; ++i) {
    Conv2dShape s{pick(1, 9), pick(1, 20), pick(3, 14), pick(3, 14), pick(1, 20), pick(1, 5), pick(1, 5),
                  pick(1, 3), pick(1, 3), 0, 0};
    s.pad_h = pick(0, s.r / 2 + 1);
    s.pad_w = pick(0, s.s / 2 + 1);
    if (s.r > s.h + 2 * s.pad_h || s.s > s.w + 2 * s.pad_w) continue;
    shapes.push_back(s);
  }
  uint64_t seed = 400;
  for (const Conv2dShape& s : shapes)
    for (int call = 0; call < 2; ++call) {
      SCOPED_TRACE(describe(s) + (call ? ", second call" : ""));
      // Sums of up to C*R*S = 500 (forward, input gradient) or N*P*Q = 1764 (weight gradient) products of values
      // in [-1, 1): both orders of summation stay within ~1e-5 relative of the exact sum.
      expect_onednn_matches_im2col(s, &seed, call == 0, 1e-4f);
    }
}

// conv2d_bwd (both gradients from one dy, oneDNN reordering dy once) gives the bits of the two directions called
// apart, on either backend, Winograd or not, and computes only the gradient asked for when the other is null.
TEST(Conv2dCpu, BothGradientsAtOnceEqualEachApart) {
  const std::vector<Conv2dShape> shapes = {{16, 32, 32, 32, 32, 3, 3, 1, 1, 1, 1},  // Winograd where available
                                           {3, 32, 32, 32, 64, 3, 3, 2, 2, 1, 1},
                                           {3, 32, 32, 32, 64, 1, 1, 2, 2, 0, 0},
                                           {2, 5, 9, 7, 6, 3, 2, 1, 2, 1, 0}};
  uint64_t seed = 800;
  for (const CpuBackend backend : cpu_backends_built())
    for (const Conv2dShape& s : shapes) {
      SCOPED_TRACE(describe(s) + ", " + cpu_backend_name(backend));
      const CpuBackendScope scope(backend);
      const std::vector<float> x = random_tensor(x_shape(s), seed++).to_vector<float>();
      const std::vector<float> w = random_tensor(w_shape(s), seed++).to_vector<float>();
      const std::vector<float> dy = random_tensor(y_shape(s), seed++).to_vector<float>();
      std::vector<float> dx(x.size()), dw(w.size()), dx_apart(x.size()), dw_apart(w.size());
      cpu::conv2d_bwd_data(s, dy.data(), w.data(), dx_apart.data());
      cpu::conv2d_bwd_filter(s, x.data(), dy.data(), dw_apart.data());
      cpu::conv2d_bwd(s, x.data(), dy.data(), w.data(), dx.data(), dw.data());
      EXPECT_EQ(dx, dx_apart);
      EXPECT_EQ(dw, dw_apart);
      std::vector<float> only_dx(x.size(), 7.f), only_dw(w.size(), 7.f);
      cpu::conv2d_bwd(s, nullptr, dy.data(), w.data(), only_dx.data(), nullptr);
      cpu::conv2d_bwd(s, x.data(), dy.data(), nullptr, nullptr, only_dw.data());
      EXPECT_EQ(only_dx, dx_apart);
      EXPECT_EQ(only_dw, dw_apart);
    }
}

// Where oneDNN has Winograd kernels (AVX-512; Note [conv winograd]), it runs the 3x3 stride-1 convolutions of 32
// channels and more with them at a training step's batch (Wide-ResNet's on CIFAR and on Fashion-MNIST's 28x28,
// whose 14x14 and 7x7 maps are not whole tiles), never narrower ones and never with Winograd off; all three
// directions agree with im2col's within the transforms' rounding.
TEST(Conv2dCpu, WinogradMatchesIm2colWhereChosen) {
  if (!cpu::onednn::available()) GTEST_SKIP() << "built without oneDNN";
  auto winograd = [](const Conv2dShape& s) {
    return cpu::onednn::conv2d_kernel(s).find("wino") != std::string::npos;
  };
  for (const Conv2dShape& narrow : {Conv2dShape{16, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1},
                                    Conv2dShape{16, 16, 32, 32, 32, 3, 3, 1, 1, 1, 1}})
    EXPECT_FALSE(winograd(narrow)) << describe(narrow);
  const std::vector<Conv2dShape> shapes = {{16, 32, 32, 32, 32, 3, 3, 1, 1, 1, 1},
                                           {16, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1},
                                           {16, 128, 8, 8, 128, 3, 3, 1, 1, 1, 1},
                                           {32, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1},
                                           {96, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1}};
  {
    const AllowWinogradScope off(false);
    for (const Conv2dShape& s : shapes) EXPECT_FALSE(winograd(s)) << describe(s);
  }
  if (!winograd(shapes[0]))
    GTEST_SKIP() << "oneDNN has no Winograd kernel here: " << cpu::onednn::conv2d_kernel(shapes[0]);
  uint64_t seed = 700;
  for (const Conv2dShape& s : shapes) {
    SCOPED_TRACE(describe(s));
    EXPECT_TRUE(winograd(s));
    // Results of magnitude 10-170 (sums of 288-75 264 products of values in [-1, 1)): Winograd's forward and
    // input gradient were within 1.3e-4 of im2col's here (direct oneDNN's within 3e-5), the weight gradients of
    // both within 4.5e-4; an indexing error would be off by O(1).
    expect_onednn_matches_im2col(s, &seed, false, 1e-3f);
  }
}

TEST(Conv2dCpu, OneDnnIsTheDefaultWhereBuiltAndBf16RunsOnIm2col) {
  EXPECT_EQ(cpu_backend(), cpu::onednn::available() ? CpuBackend::OneDnn : CpuBackend::Reference);
  if (!cpu::onednn::available()) {
    EXPECT_TRUE(throws_error([] { set_cpu_backend(CpuBackend::OneDnn); }, "built without oneDNN"));
    GTEST_SKIP() << "built without oneDNN";
  }
  {
    const CpuBackendScope scope(CpuBackend::Reference);
    EXPECT_EQ(cpu_backend(), CpuBackend::Reference);
  }
  EXPECT_EQ(cpu_backend(), CpuBackend::OneDnn);
  // bf16 products are im2col's whatever the setting: the same bits as the reference called directly.
  Conv2dShape s{2, 5, 9, 9, 6, 3, 3, 1, 1, 1, 1};
  s.precision = MatmulPrecision::BF16;
  const std::vector<float> x = random_tensor(x_shape(s), 500).to_vector<float>();
  const std::vector<float> w = random_tensor(w_shape(s), 501).to_vector<float>();
  std::vector<float> y(s.n * s.k * s.p() * s.q()), y_ref(y.size());
  cpu::conv2d_fwd(s, x.data(), w.data(), nullptr, y.data());
  cpu::reference::conv2d_fwd(s, x.data(), w.data(), nullptr, y_ref.data());
  EXPECT_EQ(y, y_ref);
  EXPECT_TRUE(throws_error([&] { cpu::onednn::conv2d_fwd(s, x.data(), w.data(), nullptr, y.data()); },
                           "only float32"));
}

}  // namespace
}  // namespace sieve

// Every core op: gradients against finite differences on the CPU, and forward and backward on each device
// against the CPU reference (the CUDA instances run where a GPU exists and skip elsewhere).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "core/ops.h"
#include "core/ops/cpu_backend.h"
#include "core/ops/cpu_parallel.h"
#include "core/ops/linear.h"
#include "core/ops/nonfinite.h"
#include "core/philox.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceCase;
using testing::DeviceTest;
using testing::gradient_check;
using testing::matches_cpu;
using testing::random_labels;
using testing::random_tensor;
using testing::weighted_total;

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// One op of the inputs as a device case: every float32 input differentiated, the upstream gradient from seed 99,
// the same tolerance for the value and every gradient.
DeviceCase op_case(std::string name, std::vector<Tensor> inputs, Fn f, float tol = 1e-5f) {
  return {.name = std::move(name),
          .inputs = std::move(inputs),
          .forward = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in)}; },
          .upstream = {.seed = 99},
          .tolerance = {tol, tol}};
}

TEST(Gradients, Elementwise) {
  Tensor a = random_tensor({3, 4}, 1), b = random_tensor({3, 4}, 2);
  EXPECT_TRUE(gradient_check([](const auto& x) { return weighted_total(add(x[0], x[1]), 7); }, {a, b}));
  EXPECT_TRUE(gradient_check([](const auto& x) { return weighted_total(sub(x[0], x[1]), 7); }, {a, b}));
  EXPECT_TRUE(gradient_check([](const auto& x) { return weighted_total(mul(x[0], x[1]), 7); }, {a, b}));
  EXPECT_TRUE(gradient_check([](const auto& x) { return weighted_total(scale(x[0], -2.5f), 7); }, {a}));
}

// Note [cpu threads]: tensors of at least cpu::kParallelMin elements are split across threads; every element of
// an odd-sized large tensor (2 kParallelMin + 7, so the threads' ranges are uneven) is computed once and right.
TEST(ElementwiseCpu, LargeTensorsSplitAcrossThreadsComputeEveryElement) {
  const int64_t n = 2 * cpu::kParallelMin + 7;
  Tensor a = random_tensor({n}, 40), b = random_tensor({n}, 41), g = random_tensor({n}, 42);
  Tensor x = a.clone().set_requires_grad(true);
  Tensor y = relu(x);
  y.backward(g);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), gv = g.to_vector<float>();
  const auto yv = y.to_vector<float>(), dx = x.grad().to_vector<float>();
  const auto sum_v = add(a, b).to_vector<float>(), prod_v = mul(a, b).to_vector<float>();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i)
    wrong += yv[i] != std::max(av[i], 0.f) || dx[i] != (av[i] > 0.f ? gv[i] : 0.f) || sum_v[i] != av[i] + bv[i] ||
             prod_v[i] != av[i] * bv[i];
  EXPECT_EQ(wrong, 0);
}

TEST(Gradients, Relu) {
  // Values kept away from the kink at 0, where finite differences are meaningless.
  Tensor a = random_tensor({5, 6}, 3, Device::cpu(), 0.1f, 1.f);
  Tensor sign = random_tensor({5, 6}, 4);
  std::vector<float> v = a.to_vector<float>(), s = sign.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] *= s[i] < 0 ? -1.f : 1.f;
  Tensor x = Tensor::from_vector(v, {5, 6});
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(relu(in[0]), 8); }, {x}));
}

TEST(Gradients, MatmulAllTranspositions) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = random_tensor(ta ? Shape{4, 3} : Shape{3, 4}, 5), b = random_tensor(tb ? Shape{2, 4} : Shape{4, 2}, 6);
      EXPECT_TRUE(gradient_check([=](const auto& x) { return weighted_total(matmul(x[0], x[1], ta, tb), 9); }, {a, b}))
          << "trans_a " << ta << " trans_b " << tb;
    }
}

// cpu::gemm on oneDNN's sgemm (Note [cpu backends]) against OpenBLAS's, every transposition, alpha and beta != 1
// (beta 0 must ignore what C held, beta 0.5 scales it), small and MLP-sized shapes, and the empty inner dimension.
TEST(GemmCpu, OneDnnMatchesOpenBlasOnRandomShapes) {
  if (!cpu::onednn::available()) GTEST_SKIP() << "built without oneDNN";
  const struct {
    int64_t m, n, k;
  } shapes[] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {128, 10, 256}, {128, 512, 784}, {4, 6, 0}};
  uint64_t seed = 1200;
  for (const auto& sh : shapes)
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const float beta : {0.f, 0.5f}) {
          SCOPED_TRACE(std::to_string(sh.m) + "x" + std::to_string(sh.n) + "x" + std::to_string(sh.k) +
                       (ta ? " A^T" : "") + (tb ? " B^T" : "") + " beta " + std::to_string(beta));
          const Tensor a = random_tensor(ta ? Shape{sh.k, sh.m} : Shape{sh.m, sh.k}, seed++);
          const Tensor b = random_tensor(tb ? Shape{sh.n, sh.k} : Shape{sh.k, sh.n}, seed++);
          const Tensor c0 = random_tensor({sh.m, sh.n}, seed++);
          auto product = [&](CpuBackend backend) {
            const CpuBackendScope scope(backend);
            Tensor c = c0.clone();
            if (beta == 0.f) fill_(c, std::numeric_limits<float>::quiet_NaN());  // never read with beta 0
            cpu::gemm(ta, tb, sh.m, sh.n, sh.k, 1.5f, a.data<float>(), b.data<float>(), beta, c.data<float>());
            return c;
          };
          const Tensor want = product(CpuBackend::Reference), got = product(CpuBackend::OneDnn);
          // Sums of k products of values in [-1, 1] in two orders: a few ulp of sqrt(k) sized partial sums.
          EXPECT_TRUE(all_close(got, want, 1e-5f * static_cast<float>(sh.k + 1), 1e-5f));
        }
}

TEST(Gradients, LinearAndBias) {
  Tensor x = random_tensor({4, 5}, 10), w = random_tensor({3, 5}, 11), b = random_tensor({3}, 12);
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(linear(in[0], in[1], in[2]), 13); }, {x, w, b}));
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(add_bias(in[0], in[1]), 13); },
                             {random_tensor({4, 3}, 14), b}));
}

TEST(Gradients, SoftmaxAndLogSoftmax) {
  Tensor x = random_tensor({4, 6}, 15, Device::cpu(), -3.f, 3.f);
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(softmax(in[0]), 16); }, {x}, 1e-2f, 1e-3f));
  EXPECT_TRUE(gradient_check([](const auto& in) { return weighted_total(log_softmax(in[0]), 16); }, {x}));
}

TEST(Gradients, CrossEntropy) {
  Tensor z = random_tensor({6, 5}, 17, Device::cpu(), -3.f, 3.f);
  Tensor y = random_labels(6, 5, 18);
  EXPECT_TRUE(gradient_check([y](const auto& in) { return weighted_total(cross_entropy(in[0], y), 19); }, {z}));
}

TEST(Gradients, Reductions) {
  Tensor x = random_tensor({7}, 20), w = random_tensor({7}, 21, Device::cpu(), 0.5f, 2.f);
  EXPECT_TRUE(gradient_check([](const auto& in) { return sum(in[0]); }, {x}));
  EXPECT_TRUE(gradient_check([](const auto& in) { return mean(in[0]); }, {x}));
  EXPECT_TRUE(gradient_check([w](const auto& in) { return weighted_mean(in[0], w); }, {x}));
}

TEST(Gradients, IndexSelectWithRepeats) {
  Tensor x = random_tensor({5, 3}, 22);
  Tensor idx = Tensor::from_vector<int32_t>({4, 0, 4, 2, 4}, {5});
  EXPECT_TRUE(gradient_check([idx](const auto& in) { return weighted_total(index_select(in[0], idx), 23); }, {x}));
}

TEST(Gradients, ReshapeAndAccumulationThroughSharedInputs) {
  // x is used twice: the gradients of both paths must add up.
  Tensor x = random_tensor({2, 6}, 24);
  EXPECT_TRUE(gradient_check(
      [](const auto& in) { return weighted_total(add(mul(in[0], in[0]), in[0].reshape({3, 4}).reshape({2, 6})), 25); },
      {x}));
}

class OpsOnDevice : public DeviceTest {};

TEST_P(OpsOnDevice, ElementwiseMatchCpu) {
  const std::vector<Tensor> ab{random_tensor({33, 17}, 30), random_tensor({33, 17}, 31)};
  EXPECT_TRUE(matches_cpu(op_case("add", ab, [](const auto& x) { return add(x[0], x[1]); }), device()));
  EXPECT_TRUE(matches_cpu(op_case("sub", ab, [](const auto& x) { return sub(x[0], x[1]); }), device()));
  EXPECT_TRUE(matches_cpu(op_case("mul", ab, [](const auto& x) { return mul(x[0], x[1]); }), device()));
  EXPECT_TRUE(matches_cpu(op_case("scale", ab, [](const auto& x) { return scale(x[0], 0.3f); }), device()));
  EXPECT_TRUE(matches_cpu(op_case("relu", ab, [](const auto& x) { return relu(x[0]); }), device()));
}

TEST_P(OpsOnDevice, ElementwiseMatchDirectComputation) {
  Tensor a = random_tensor({100}, 32), b = random_tensor({100}, 33);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<float> sum_ref(100), relu_ref(100);
  for (int i = 0; i < 100; ++i) {
    sum_ref[i] = av[i] + bv[i];
    relu_ref[i] = av[i] > 0 ? av[i] : 0.f;
  }
  EXPECT_TRUE(all_close(add(a.to(device()), b.to(device())).to_vector<float>(), sum_ref, 0, 0));
  EXPECT_TRUE(all_close(relu(a.to(device())).to_vector<float>(), relu_ref, 0, 0));
  Tensor y = a.to(device()).clone();
  axpy_(y, 2.f, b.to(device()));
  std::vector<float> axpy_ref(100);
  for (int i = 0; i < 100; ++i) axpy_ref[i] = av[i] + 2.f * bv[i];
  EXPECT_TRUE(all_close(y.to_vector<float>(), axpy_ref, 1e-6f, 1e-6f));
}

TEST_P(OpsOnDevice, FillEveryDtype) {
  for (DType t : {DType::F32, DType::I32, DType::I64, DType::U8}) {
    Tensor x = Tensor::full({37}, 7, t, device()).to(Device::cpu());
    switch (t) {
      case DType::F32: EXPECT_EQ(x.to_vector<float>(), std::vector<float>(37, 7.f)); break;
      case DType::I32: EXPECT_EQ(x.to_vector<int32_t>(), std::vector<int32_t>(37, 7)); break;
      case DType::I64: EXPECT_EQ(x.to_vector<int64_t>(), std::vector<int64_t>(37, 7)); break;
      case DType::U8: EXPECT_EQ(x.to_vector<uint8_t>(), std::vector<uint8_t>(37, 7)); break;
    }
  }
}

TEST_P(OpsOnDevice, MatmulMatchesDirectProduct) {
  const int64_t m = 19, k = 23, n = 7;
  Tensor a = random_tensor({m, k}, 34), b = random_tensor({k, n}, 35);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<float> ref(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += static_cast<double>(av[i * k + p]) * bv[p * n + j];
      ref[i * n + j] = static_cast<float>(s);
    }
  EXPECT_TRUE(all_close(matmul(a.to(device()), b.to(device())).to_vector<float>(), ref, 1e-5f, 1e-5f));
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor at = random_tensor(ta ? Shape{k, m} : Shape{m, k}, 36), bt = random_tensor(tb ? Shape{n, k} : Shape{k, n}, 37);
      EXPECT_TRUE(matches_cpu(op_case("matmul trans_a " + std::to_string(ta) + " trans_b " + std::to_string(tb),
                                      {at, bt}, [=](const auto& x) { return matmul(x[0], x[1], ta, tb); }, 1e-4f),
                              device()));
    }
}

TEST_P(OpsOnDevice, LinearMatchesCpu) {
  const std::vector<Tensor> xwb{random_tensor({64, 50}, 38), random_tensor({30, 50}, 39), random_tensor({30}, 40)};
  EXPECT_TRUE(
      matches_cpu(op_case("linear", xwb, [](const auto& x) { return linear(x[0], x[1], x[2]); }, 1e-4f), device()));
  EXPECT_TRUE(matches_cpu(op_case("add_bias", {random_tensor({300, 70}, 41), random_tensor({70}, 42)},
                                  [](const auto& x) { return add_bias(x[0], x[1]); }, 1e-4f),
                          device()));
}

TEST_P(OpsOnDevice, SoftmaxFamilyMatchesCpu) {
  Tensor x = random_tensor({129, 10}, 43, Device::cpu(), -8.f, 8.f);
  EXPECT_TRUE(matches_cpu(op_case("softmax", {x}, [](const auto& in) { return softmax(in[0]); }), device()));
  EXPECT_TRUE(matches_cpu(op_case("log_softmax", {x}, [](const auto& in) { return log_softmax(in[0]); }), device()));
  Tensor y = random_labels(129, 10, 44);
  EXPECT_TRUE(matches_cpu(
      op_case("cross_entropy", {x}, [y](const auto& in) { return cross_entropy(in[0], y.to(in[0].device())); }),
      device()));
}

TEST_P(OpsOnDevice, CrossEntropyMatchesDirectComputation) {
  Tensor z = random_tensor({50, 7}, 45, Device::cpu(), -20.f, 20.f);
  Tensor y = random_labels(50, 7, 46);
  const auto zv = z.to_vector<float>();
  const auto yv = y.to_vector<int32_t>();
  std::vector<float> ref(50);
  for (int i = 0; i < 50; ++i) {
    double m = -1e30, s = 0;
    for (int j = 0; j < 7; ++j) m = std::max(m, static_cast<double>(zv[i * 7 + j]));
    for (int j = 0; j < 7; ++j) s += std::exp(zv[i * 7 + j] - m);
    ref[i] = static_cast<float>(m + std::log(s) - zv[i * 7 + yv[i]]);
  }
  EXPECT_TRUE(all_close(cross_entropy(z.to(device()), y.to(device())).to_vector<float>(), ref, 1e-5f, 1e-5f));
}

TEST_P(OpsOnDevice, ExtremeLogitsStayFinite) {
  Tensor z = Tensor::from_vector<float>({1000.f, -1000.f, 0.f, -1000.f, 1000.f, 999.f}, {2, 3}, device());
  Tensor y = Tensor::from_vector<int32_t>({1, 2}, {2}, device());
  const auto loss = cross_entropy(z, y).to_vector<float>();
  EXPECT_NEAR(loss[0], 2000.f, 1e-2f);
  EXPECT_NEAR(loss[1], 1.f + std::log1p(std::exp(-1.f)), 1e-4f);
  for (float p : softmax(z).to_vector<float>()) EXPECT_TRUE(std::isfinite(p));
}

TEST_P(OpsOnDevice, ReductionsMatchCpu) {
  Tensor x = random_tensor({1000}, 47), w = random_tensor({1000}, 48, Device::cpu(), 0.f, 3.f);
  EXPECT_TRUE(matches_cpu(op_case("sum", {x}, [](const auto& in) { return sum(in[0]); }, 1e-4f), device()));
  EXPECT_TRUE(matches_cpu(op_case("mean", {x}, [](const auto& in) { return mean(in[0]); }, 1e-5f), device()));
  EXPECT_TRUE(matches_cpu(
      op_case("weighted_mean", {x, w}, [](const auto& in) { return weighted_mean(in[0], in[1]); }, 1e-5f), device()));
}

TEST_P(OpsOnDevice, ArgmaxAndCountEqual) {
  Tensor x = random_tensor({300, 13}, 49);
  const auto xv = x.to_vector<float>();
  std::vector<int32_t> ref(300);
  for (int i = 0; i < 300; ++i)
    ref[i] = static_cast<int32_t>(std::max_element(xv.begin() + i * 13, xv.begin() + (i + 1) * 13) - (xv.begin() + i * 13));
  Tensor got = argmax_rows(x.to(device()));
  EXPECT_EQ(got.to_vector<int32_t>(), ref);
  Tensor labels = random_labels(300, 13, 50);
  int64_t expected = 0;
  const auto lv = labels.to_vector<int32_t>();
  for (int i = 0; i < 300; ++i) expected += lv[i] == ref[i];
  EXPECT_EQ(count_equal(got, labels.to(device())), expected);
}

TEST_P(OpsOnDevice, RecordFirstNonfiniteKeepsTheFirstBadStep) {
  // The same sequence of values on the device and on the CPU: finite ones (random, never zero), then a NaN at step
  // 7, an inf at step 9 and a finite value after; the flag names step 7 and its NaN, and nothing later moves it.
  std::vector<float> values = random_tensor({12}, 52, Device::cpu(), 0.5f, 4.f).to_vector<float>();
  values[6] = std::numeric_limits<float>::quiet_NaN();
  values[8] = std::numeric_limits<float>::infinity();
  for (const Device d : {Device::cpu(), device()}) {
    Tensor first = Tensor::full({}, -1.0, DType::I64, d), value = Tensor::full({}, 0.0, DType::F32, d);
    for (int64_t step = 1; step <= 12; ++step) {
      record_first_nonfinite(Tensor::full({}, values[static_cast<size_t>(step - 1)], DType::F32, d), step, first,
                             value);
      if (step == 6) EXPECT_EQ(first.to(Device::cpu()).to_vector<int64_t>()[0], -1) << "finite values flagged";
    }
    EXPECT_EQ(first.to(Device::cpu()).to_vector<int64_t>()[0], 7);
    EXPECT_TRUE(std::isnan(value.item()));
  }
  // -inf alone is caught too, with its sign.
  Tensor first = Tensor::full({}, -1.0, DType::I64, device()), value = Tensor::full({}, 0.0, DType::F32, device());
  record_first_nonfinite(Tensor::full({}, -std::numeric_limits<double>::infinity(), DType::F32, device()), 3, first,
                         value);
  EXPECT_EQ(first.to(Device::cpu()).to_vector<int64_t>()[0], 3);
  EXPECT_EQ(value.item(), -std::numeric_limits<float>::infinity());
  EXPECT_THROW(record_first_nonfinite(Tensor::full({2}, 1.0, DType::F32, device()), 1, first, value), Error);
}

TEST_P(OpsOnDevice, IndexSelectAnyDtypeAndIndexType) {
  Tensor x = random_tensor({20, 3}, 51);
  Tensor idx32 = Tensor::from_vector<int32_t>({19, 0, 5, 5}, {4});
  Tensor idx64 = Tensor::from_vector<int64_t>({19, 0, 5, 5}, {4});
  const auto xv = x.to_vector<float>();
  std::vector<float> ref;
  for (int r : {19, 0, 5, 5})
    for (int c = 0; c < 3; ++c) ref.push_back(xv[r * 3 + c]);
  EXPECT_TRUE(all_close(index_select(x.to(device()), idx32.to(device())).to_vector<float>(), ref, 0, 0));
  EXPECT_TRUE(all_close(index_select(x.to(device()), idx64.to(device())).to_vector<float>(), ref, 0, 0));
  Tensor bytes = Tensor::from_vector<uint8_t>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}, device());
  EXPECT_EQ(index_select(bytes, Tensor::from_vector<int32_t>({2, 0}, {2}, device())).to_vector<uint8_t>(),
            (std::vector<uint8_t>{7, 8, 9, 1, 2, 3}));
  EXPECT_TRUE(matches_cpu(op_case("index_select, int32 indices", {x},
                                  [idx32](const auto& in) { return index_select(in[0], idx32.to(in[0].device())); }),
                          device()));
  EXPECT_TRUE(matches_cpu(op_case("index_select, int64 indices", {x},
                                  [idx64](const auto& in) { return index_select(in[0], idx64.to(in[0].device())); }),
                          device()));
}

TEST_P(OpsOnDevice, IndexSelectOfRandomRowsMatchesCpu) {
  // Odd row sizes take the byte path, multiples of four bytes the word path; int32 and int64 indices.
  Generator g(52);
  Tensor idx32 = randint({300}, 1000, g);
  std::vector<int64_t> wide;
  for (int32_t i : idx32.to_vector<int32_t>()) wide.push_back(i);
  Tensor idx64 = Tensor::from_vector(wide, {300});
  for (int64_t row : {3, 8, 784}) {
    std::vector<uint8_t> bytes(static_cast<size_t>(1000 * row));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(philox_word(53, 0, i) >> 24);
    Tensor x = Tensor::from_vector(bytes, {1000, row});
    for (const Tensor& idx : {idx32, idx64})
      EXPECT_EQ(index_select(x.to(device()), idx.to(device())).to_vector<uint8_t>(),
                index_select(x, idx).to_vector<uint8_t>())
          << "row " << row << " index " << to_string(idx.dtype());
  }
}

TEST_P(OpsOnDevice, RandomStreamsAreIdenticalOnEveryDevice) {
  Generator g1(1234, 77), g2(1234, 77);
  Tensor u_cpu = uniform({1000}, g1, Device::cpu(), -2.f, 3.f);
  Tensor u_dev = uniform({1000}, g2, device(), -2.f, 3.f);
  EXPECT_EQ(u_dev.to_vector<float>(), u_cpu.to_vector<float>());
  EXPECT_EQ(g1.offset(), 1077u);
  Tensor n_cpu = normal({1000}, g1, Device::cpu());
  Tensor n_dev = normal({1000}, g2, device());
  // log/cos of the host and device maths libraries may differ in the last ulp.
  EXPECT_TRUE(all_close(n_dev, n_cpu, 1e-5f, 1e-5f));
  Tensor i_cpu = randint({1000}, 60000, g1, Device::cpu());
  Tensor i_dev = randint({1000}, 60000, g2, device());
  EXPECT_EQ(i_dev.to_vector<int32_t>(), i_cpu.to_vector<int32_t>());
}

SIEVE_INSTANTIATE_DEVICE_TESTS(OpsOnDevice);

TEST(Ops, ShapeErrorsAreReadable) {
  Tensor a = random_tensor({3, 4}, 60), b = random_tensor({5, 2}, 61);
  try {
    matmul(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inner dimensions differ"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cross_entropy(a, Tensor::from_vector<int32_t>({0, 1, 4}, {3})), Error);  // label 4 of 4 classes
  EXPECT_THROW(index_select(a, Tensor::from_vector<int32_t>({3}, {1})), Error);
  EXPECT_THROW(add(a, b), Error);
}

}  // namespace
}  // namespace sieve

// Sgd: against an independent double-precision transcription of torch.optim.SGD on both devices, minimising a
// quadratic with gradients from autograd, the GPU against the CPU, and the checks on options and parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::throws_error;

using ::sieve::testing::all_close;
using ::sieve::testing::random_tensor;

// torch.optim.SGD's _single_tensor_sgd (dampening 0) step by step, in double:
//   d_p = grad; if wd: d_p = d_p + wd * param
//   if momentum: buf = clone(d_p) if buf is None else momentum * buf + d_p
//                d_p = d_p + momentum * buf if nesterov else buf
//   param = param - lr * d_p
// Parameters whose grad is None are skipped entirely.
struct ReferenceSgd {
  double momentum = 0, weight_decay = 0;
  bool nesterov = false;
  std::vector<std::vector<double>> params;
  std::vector<std::optional<std::vector<double>>> buffers;

  void step(double lr, const std::vector<std::optional<std::vector<float>>>& grads) {
    for (size_t t = 0; t < params.size(); ++t) {
      if (!grads[t]) continue;
      std::vector<double>& param = params[t];
      std::vector<double> d_p(grads[t]->begin(), grads[t]->end());
      if (weight_decay != 0)
        for (size_t j = 0; j < d_p.size(); ++j) d_p[j] += weight_decay * param[j];
      if (momentum != 0) {
        if (!buffers[t]) {
          buffers[t] = d_p;
        } else {
          for (size_t j = 0; j < d_p.size(); ++j) (*buffers[t])[j] = momentum * (*buffers[t])[j] + d_p[j];
        }
        const std::vector<double>& buf = *buffers[t];
        for (size_t j = 0; j < d_p.size(); ++j) d_p[j] = nesterov ? d_p[j] + momentum * buf[j] : buf[j];
      }
      for (size_t j = 0; j < d_p.size(); ++j) param[j] -= lr * d_p[j];
    }
  }
};

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

struct Config {
  const char* name;
  SgdOptions options;
};

const Config kConfigs[] = {
    {"plain", {.lr = 0.1f}},
    {"momentum", {.lr = 0.1f, .momentum = 0.9f}},
    {"nesterov", {.lr = 0.1f, .momentum = 0.9f, .nesterov = true}},
    {"weight decay", {.lr = 0.1f, .weight_decay = 0.05f}},
    {"momentum and weight decay", {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.05f}},
    {"nesterov and weight decay", {.lr = 0.05f, .momentum = 0.8f, .weight_decay = 0.01f, .nesterov = true}},
};

const std::vector<Shape> kShapes = {{7, 5}, {13}, {3, 2, 4}};

// Parameter 2 has no gradient on step 0: it must be skipped then, and get its momentum buffer on step 1.
bool has_grad(size_t param, int step) { return !(param == 2 && step == 0); }

// Values below 10 (|p|, |g| <= 1 at the start; v <= 5 (1 + wd |p|) after five steps), at most six float32
// roundings per element and step, each <= 1e-6 absolute, carried over five steps (FMA contraction on the GPU
// only removes roundings): a few 1e-6 at worst.
constexpr float kAtol = 2e-5f, kRtol = 1e-5f;

class SgdUpdate : public ::sieve::testing::DeviceTest {};

TEST_P(SgdUpdate, MatchesDoublePrecisionReferenceOfTorchSgd) {
  for (const Config& config : kConfigs) {
    SCOPED_TRACE(config.name);
    std::vector<Tensor> params;
    ReferenceSgd ref{config.options.momentum, config.options.weight_decay, config.options.nesterov, {}, {}};
    for (size_t t = 0; t < kShapes.size(); ++t) {
      Tensor p = random_tensor(kShapes[t], 100 + t, device());
      p.set_requires_grad();
      params.push_back(p);
      const std::vector<float> host = p.to_vector<float>();
      ref.params.emplace_back(host.begin(), host.end());
      ref.buffers.emplace_back();
    }
    Sgd sgd(params, config.options);
    for (int step = 0; step < 5; ++step) {
      // A different rate each step: the kernel must read the current one.
      const float lr = config.options.lr / static_cast<float>(1 + step);
      sgd.set_lr(lr);
      std::vector<std::optional<std::vector<float>>> grads;
      for (size_t t = 0; t < params.size(); ++t) {
        if (!has_grad(t, step)) {
          params[t].zero_grad();
          grads.emplace_back();
          continue;
        }
        Tensor g = random_tensor(kShapes[t], 1000 + 10 * step + t, device());
        params[t].set_grad(g);
        grads.emplace_back(g.to_vector<float>());
      }
      sgd.step();
      ref.step(lr, grads);
      for (size_t t = 0; t < params.size(); ++t) {
        SCOPED_TRACE("step " + std::to_string(step) + ", parameter " + std::to_string(t));
        EXPECT_TRUE(all_close(params[t].to_vector<float>(), to_float(ref.params[t]), kAtol, kRtol));
      }
    }
    // The momentum buffers, as a checkpoint would see them.
    const auto state = sgd.state();
    if (config.options.momentum == 0.f) {
      EXPECT_TRUE(state.empty());
    } else {
      ASSERT_EQ(state.size(), params.size());
      for (size_t t = 0; t < params.size(); ++t) {
        EXPECT_EQ(state[t].first, "momentum." + std::to_string(t));
        EXPECT_TRUE(all_close(state[t].second.to_vector<float>(), to_float(*ref.buffers[t]), kAtol, kRtol));
      }
    }
  }
}

TEST_P(SgdUpdate, SkipsParametersWithoutGradientAndAllocatesMomentumOnce) {
  Tensor a = random_tensor({64}, 1, device());
  Tensor b = random_tensor({16}, 2, device());
  a.set_requires_grad();
  b.set_requires_grad();
  const std::vector<float> b_before = b.to_vector<float>();
  Sgd sgd({a, b}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f});
  a.set_grad(random_tensor({64}, 3, device()));
  sgd.step();
  auto state = sgd.state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "momentum.0");
  const void* buffer = state[0].second.raw_data();
  for (int step = 0; step < 3; ++step) {
    a.set_grad(random_tensor({64}, 4 + step, device()));
    sgd.step();
  }
  state = sgd.state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].second.raw_data(), buffer) << "the momentum buffer was reallocated";
  // No gradient: no weight decay either, as in PyTorch.
  EXPECT_EQ(b.to_vector<float>(), b_before);
}

TEST_P(SgdUpdate, ZeroGradDropsTheModelsGradients) {
  Tensor a = random_tensor({8}, 1, device());
  a.set_requires_grad();
  Sgd sgd({a}, {.lr = 0.1f});
  a.set_grad(random_tensor({8}, 2, device()));
  sgd.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(sgd.parameters()[0].grad().defined());
}

TEST_P(SgdUpdate, MinimisesAQuadraticWithAutogradGradients) {
  // f(x) = sum a (x - c)^2 with a in [0.5, 2]; weight decay adds (lambda / 2) |x|^2, so the minimum is
  // x* = 2 a c / (2 a + lambda). Curvatures 2a + lambda in [1, 4.1]: with these rates every configuration
  // contracts by at least 0.95 per step, below 1e-6 of the start after 300 steps.
  const Shape shape = {6, 5};
  const Tensor a = random_tensor(shape, 11, device(), 0.5f, 2.f);
  const Tensor c = random_tensor(shape, 12, device(), -1.f, 1.f);
  const Config configs[] = {
      {"plain", {.lr = 0.1f}},
      {"momentum", {.lr = 0.05f, .momentum = 0.9f}},
      {"nesterov and weight decay", {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.1f, .nesterov = true}},
  };
  for (const Config& config : configs) {
    SCOPED_TRACE(config.name);
    Tensor x = random_tensor(shape, 13, device(), -3.f, 3.f);
    x.set_requires_grad();
    Sgd sgd({x}, config.options);
    for (int step = 0; step < 300; ++step) {
      sgd.zero_grad();
      const Tensor d = sub(x, c);
      const Tensor loss = sum(mul(a, mul(d, d)));
      loss.backward();
      sgd.step();
    }
    const std::vector<float> av = a.to_vector<float>(), cv = c.to_vector<float>();
    std::vector<float> expected(av.size());
    const double lambda = config.options.weight_decay;
    for (size_t i = 0; i < av.size(); ++i)
      expected[i] = static_cast<float>(2.0 * av[i] * cv[i] / (2.0 * av[i] + lambda));
    EXPECT_TRUE(all_close(x.to_vector<float>(), expected, 1e-4f, 0.f));
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SgdUpdate);

class SgdGpu : public ::sieve::testing::GpuTest {};

TEST_F(SgdGpu, FusedUpdateMatchesCpuAfterSeveralSteps) {
  const std::vector<Shape> shapes = {{1000, 300}, {4097}, {1}};
  const SgdOptions options{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = true};
  testing::TwinParameters params = testing::twin_parameters(shapes, 200);
  const std::vector<Tensor>& cpu_params = params.cpu;
  const std::vector<Tensor>& gpu_params = params.gpu;
  Sgd cpu_sgd(cpu_params, options), gpu_sgd(gpu_params, options);
  for (int step = 0; step < 6; ++step) {
    testing::set_twin_gradients(params, 3000 + 10 * step);
    cpu_sgd.step();
    gpu_sgd.step();
  }
  // The same arithmetic (sgd_math.h); nvcc may contract a multiply-add into one FMA, one rounding fewer per
  // operation on values below 10: a few float32 ulps after six steps.
  for (size_t t = 0; t < shapes.size(); ++t) {
    SCOPED_TRACE("parameter " + std::to_string(t));
    EXPECT_TRUE(all_close(gpu_params[t], cpu_params[t], 1e-5f, 1e-5f));
    EXPECT_TRUE(all_close(gpu_sgd.state()[t].second, cpu_sgd.state()[t].second, 1e-5f, 1e-5f));
  }
}


std::vector<Tensor> one_parameter() {
  Tensor p = random_tensor({4}, 1);
  p.set_requires_grad();
  return {p};
}

TEST(SgdOptions, RejectsImpossibleOptions) {
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = -0.1f}); }, "learning rate"));
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = NAN}); }, "learning rate"));
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = 0.1f, .momentum = 1.f}); }, "momentum must be in [0, 1)"));
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = 0.1f, .momentum = -0.5f}); }, "momentum"));
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = 0.1f, .weight_decay = -1e-4f}); }, "weight decay"));
  EXPECT_TRUE(throws_error([] { Sgd(one_parameter(), {.lr = 0.1f, .nesterov = true}); }, "Nesterov"));
  Sgd sgd(one_parameter(), {.lr = 0.1f});
  EXPECT_TRUE(throws_error([&] { sgd.set_lr(-1.f); }, "learning rate"));
  EXPECT_FLOAT_EQ(sgd.lr(), 0.1f);
  sgd.set_lr(0.02f);
  EXPECT_FLOAT_EQ(sgd.options().lr, 0.02f);
}

TEST(SgdParameters, RejectsBadParameterLists) {
  EXPECT_TRUE(throws_error([] { Sgd({}, {}); }, "empty"));
  EXPECT_TRUE(throws_error([] { Sgd({Tensor()}, {}); }, "undefined"));
  EXPECT_TRUE(throws_error([] { Sgd({Tensor::zeros({3}, DType::I32)}, {}); }, "float32"));
  EXPECT_TRUE(throws_error([] { Sgd({random_tensor({3}, 1)}, {}); }, "does not require gradients"));
  EXPECT_TRUE(throws_error([] {
    std::vector<Tensor> p = one_parameter();
    Sgd({p[0], p[0]}, {});
  }, "same tensor"));
  EXPECT_TRUE(throws_error([] {
    std::vector<Tensor> p = one_parameter();
    Sgd({scale(p[0], 2.f)}, {});
  }, "not a leaf"));
  if (cuda_available()) {
    EXPECT_TRUE(throws_error([] {
      Tensor a = random_tensor({3}, 1), b = random_tensor({3}, 2, Device::cuda(0));
      a.set_requires_grad();
      b.set_requires_grad();
      Sgd({a, b}, {});
    }, "different devices"));
  }
}

TEST(SgdStep, RejectsAGradientThatDoesNotMatchItsParameter) {
  std::vector<Tensor> p = one_parameter();
  Sgd sgd(p, {.lr = 0.1f});
  p[0].set_grad(random_tensor({5}, 2));
  EXPECT_TRUE(throws_error([&] { sgd.step(); }, "gradient of parameter 0"));
}

}  // namespace
}  // namespace sieve

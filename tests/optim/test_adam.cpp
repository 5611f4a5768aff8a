// Adam and AdamW: against an independent double-precision transcription of torch.optim.Adam / AdamW on both
// devices, the GPU against the CPU, a state round trip through a checkpoint file, and the checks on options.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "optim/adam.h"
#include "optim/optimizer_state.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using ::sieve::testing::all_close;
using ::sieve::testing::random_tensor;
using ::sieve::testing::TempDir;
using ::sieve::testing::throws_error;

// torch.optim.Adam's _single_tensor_adam (amsgrad False, maximize False), decoupled_weight_decay for AdamW, in
// double:
//   step += 1
//   if wd: decoupled ? param *= 1 - lr * wd : grad = grad + wd * param
//   exp_avg = exp_avg + (1 - beta1) (grad - exp_avg);  exp_avg_sq = beta2 exp_avg_sq + (1 - beta2) grad^2
//   param -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)
// Parameters whose grad is None are skipped (their step does not advance).
struct ReferenceAdam {
  AdamOptions o;
  std::vector<std::vector<double>> params, m, v;
  std::vector<int64_t> steps;

  void step(double lr, const std::vector<std::optional<std::vector<float>>>& grads) {
    const double b1 = o.beta1, b2 = o.beta2, eps = o.eps, wd = o.weight_decay;
    for (size_t t = 0; t < params.size(); ++t) {
      if (!grads[t]) continue;
      std::vector<double>& p = params[t];
      if (m[t].empty()) {  // zeros_like on the parameter's first step
        m[t].assign(p.size(), 0.0);
        v[t].assign(p.size(), 0.0);
      }
      const double k = static_cast<double>(++steps[t]);
      const double bc1 = 1.0 - std::pow(b1, k), bc2 = 1.0 - std::pow(b2, k);
      for (size_t j = 0; j < p.size(); ++j) {
        double g = (*grads[t])[j];
        if (wd != 0 && o.decoupled) p[j] *= 1.0 - lr * wd;
        if (wd != 0 && !o.decoupled) g += wd * p[j];
        m[t][j] += (1.0 - b1) * (g - m[t][j]);
        v[t][j] = b2 * v[t][j] + (1.0 - b2) * g * g;
        p[j] -= lr / bc1 * m[t][j] / (std::sqrt(v[t][j]) / std::sqrt(bc2) + eps);
      }
    }
  }
};

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

struct Config {
  const char* name;
  AdamOptions options;
};

const Config kConfigs[] = {
    {"adam", {.lr = 0.01f}},
    {"adam with L2 weight decay", {.lr = 0.01f, .weight_decay = 0.1f}},
    {"adamw", {.lr = 0.01f, .weight_decay = 0.1f, .decoupled = true}},
    {"other betas and eps", {.lr = 0.02f, .beta1 = 0.5f, .beta2 = 0.9f, .eps = 1e-3f}},
    {"beta1 0, adamw", {.lr = 0.01f, .beta1 = 0.f, .beta2 = 0.99f, .weight_decay = 0.5f, .decoupled = true}},
};

const std::vector<Shape> kShapes = {{7, 5}, {13}, {3, 2, 4}};

// Parameter 2 has no gradient on step 0: it is skipped, and its bias correction lags one step behind.
bool has_grad(size_t param, int step) { return !(param == 2 && step == 0); }

// |p| <= 1.1, |m| <= 1, v <= 1 and each update at most lr / (1 - beta1) in size; every float32 operation rounds
// by <= 6e-8 relative, a few dozen per element over five steps, and the quotient m / denom is bounded by
// 1 / sqrt(1 - beta2) in relative terms: errors of a few 1e-6 at worst.
constexpr float kAtol = 2e-5f, kRtol = 1e-5f;

class AdamUpdate : public ::sieve::testing::DeviceTest {};

TEST_P(AdamUpdate, MatchesDoublePrecisionReferenceOfTorchAdam) {
  for (const Config& config : kConfigs) {
    SCOPED_TRACE(config.name);
    std::vector<Tensor> params;
    ReferenceAdam ref{config.options, {}, {}, {}, {}};
    for (size_t t = 0; t < kShapes.size(); ++t) {
      Tensor p = random_tensor(kShapes[t], 100 + t, device());
      p.set_requires_grad();
      params.push_back(p);
      const std::vector<float> host = p.to_vector<float>();
      ref.params.emplace_back(host.begin(), host.end());
      ref.m.emplace_back();
      ref.v.emplace_back();
      ref.steps.push_back(0);
    }
    Adam adam(params, config.options);
    EXPECT_EQ(adam.name(), config.options.decoupled ? "AdamW" : "Adam");
    for (int step = 0; step < 5; ++step) {
      const float lr = config.options.lr / static_cast<float>(1 + step);  // the kernel must read the current rate
      adam.set_lr(lr);
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
      adam.step();
      ref.step(lr, grads);
      for (size_t t = 0; t < params.size(); ++t) {
        SCOPED_TRACE("step " + std::to_string(step) + ", parameter " + std::to_string(t));
        EXPECT_TRUE(all_close(params[t].to_vector<float>(), to_float(ref.params[t]), kAtol, kRtol));
        EXPECT_EQ(adam.step_count(t), ref.steps[t]);
      }
    }
    // The moments and counts, as a checkpoint sees them.
    const auto state = adam.state();
    ASSERT_EQ(state.size(), 3 * params.size());
    for (size_t t = 0; t < params.size(); ++t) {
      const std::string i = std::to_string(t);
      EXPECT_EQ(state[3 * t].first, "exp_avg." + i);
      EXPECT_EQ(state[3 * t + 1].first, "exp_avg_sq." + i);
      EXPECT_EQ(state[3 * t + 2].first, "step." + i);
      EXPECT_TRUE(all_close(state[3 * t].second.to_vector<float>(), to_float(ref.m[t]), kAtol, kRtol));
      EXPECT_TRUE(all_close(state[3 * t + 1].second.to_vector<float>(), to_float(ref.v[t]), 1e-6f, 1e-5f));
      EXPECT_EQ(state[3 * t + 2].second.to_vector<int64_t>(), std::vector<int64_t>{ref.steps[t]});
    }
  }
}

TEST_P(AdamUpdate, SkipsParametersWithoutGradientAndAllocatesBuffersOnce) {
  Tensor a = random_tensor({64}, 1, device());
  Tensor b = random_tensor({16}, 2, device());
  a.set_requires_grad();
  b.set_requires_grad();
  const std::vector<float> b_before = b.to_vector<float>();
  Adam adam({a, b}, {.lr = 0.1f, .weight_decay = 0.1f, .decoupled = true});
  EXPECT_TRUE(adam.state().empty());
  a.set_grad(random_tensor({64}, 3, device()));
  adam.step();
  auto state = adam.state();
  ASSERT_EQ(state.size(), 3u);
  const void* m = state[0].second.raw_data();
  const void* v = state[1].second.raw_data();
  for (int step = 0; step < 3; ++step) {
    a.set_grad(random_tensor({64}, 4 + step, device()));
    adam.step();
  }
  state = adam.state();
  ASSERT_EQ(state.size(), 3u);
  EXPECT_EQ(state[0].second.raw_data(), m) << "exp_avg was reallocated";
  EXPECT_EQ(state[1].second.raw_data(), v) << "exp_avg_sq was reallocated";
  EXPECT_EQ(adam.step_count(0), 4);
  EXPECT_EQ(adam.step_count(1), 0);
  EXPECT_EQ(b.to_vector<float>(), b_before);  // no gradient: no decoupled decay either, as in PyTorch
}

// Three steps, the state through a checkpoint file into a fresh optimizer, three more steps: bit-identical to six
// steps in one go (the same kernels on the same values).
TEST_P(AdamUpdate, StateRoundTripThroughACheckpointContinuesIdentically) {
  const AdamOptions options{.lr = 0.05f, .beta1 = 0.8f, .beta2 = 0.95f, .weight_decay = 0.01f};
  auto make_params = [&] {
    std::vector<Tensor> ps;
    for (size_t t = 0; t < kShapes.size(); ++t) {
      Tensor p = random_tensor(kShapes[t], 300 + t, device());
      p.set_requires_grad();
      ps.push_back(p);
    }
    return ps;
  };
  auto set_grads = [&](std::vector<Tensor>& ps, int step) {
    for (size_t t = 0; t < ps.size(); ++t) {
      if (has_grad(t, step)) ps[t].set_grad(random_tensor(kShapes[t], 5000 + 10 * step + t, device()));
      else ps[t].zero_grad();
    }
  };
  std::vector<Tensor> straight = make_params();
  Adam a(straight, options);
  for (int step = 0; step < 6; ++step) {
    set_grads(straight, step);
    a.step();
  }

  TempDir dir;
  std::vector<Tensor> first = make_params();
  {
    Adam b(first, options);
    for (int step = 0; step < 3; ++step) {
      set_grads(first, step);
      b.step();
    }
    CheckpointState s;
    add_optimizer_state(s, b);
    save_checkpoint(dir.file("adam.safetensors"), s);
  }
  Adam c(first, options);
  c.load_state(optimizer_state(load_checkpoint(dir.file("adam.safetensors"))));
  EXPECT_EQ(c.step_count(0), 3);
  EXPECT_EQ(c.step_count(2), 2);
  for (int step = 3; step < 6; ++step) {
    set_grads(first, step);
    c.step();
  }
  for (size_t t = 0; t < kShapes.size(); ++t) {
    EXPECT_EQ(first[t].to_vector<float>(), straight[t].to_vector<float>()) << "parameter " << t;
    EXPECT_EQ(c.step_count(t), a.step_count(t));
  }
  const auto sa = a.state(), sc = c.state();
  ASSERT_EQ(sa.size(), sc.size());
  for (size_t k = 0; k < sa.size(); ++k) {
    EXPECT_EQ(sc[k].first, sa[k].first);
    EXPECT_EQ(sc[k].second.to(Device::cpu()).nbytes(), sa[k].second.to(Device::cpu()).nbytes());
    if (sa[k].second.dtype() == DType::F32)
      EXPECT_EQ(sc[k].second.to_vector<float>(), sa[k].second.to_vector<float>()) << sa[k].first;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(AdamUpdate);

class AdamGpu : public ::sieve::testing::GpuTest {};

TEST_F(AdamGpu, FusedUpdateMatchesCpuAfterSeveralSteps) {
  const std::vector<Shape> shapes = {{1000, 300}, {4097}, {1}};
  for (const bool decoupled : {false, true}) {
    SCOPED_TRACE(decoupled ? "adamw" : "adam");
    const AdamOptions options{.lr = 0.01f, .weight_decay = 0.05f, .decoupled = decoupled};
    testing::TwinParameters params = testing::twin_parameters(shapes, 200);
    const std::vector<Tensor>& cpu_params = params.cpu;
    const std::vector<Tensor>& gpu_params = params.gpu;
    Adam cpu_adam(cpu_params, options), gpu_adam(gpu_params, options);
    for (int step = 0; step < 6; ++step) {
      testing::set_twin_gradients(params, 3000 + 10 * step);
      cpu_adam.step();
      gpu_adam.step();
    }
    // The same arithmetic (adam_math.h); nvcc may contract multiply-adds into FMAs and its sqrtf and division are
    // correctly rounded as the host's: a few float32 ulps of values below 2 after six steps.
    const auto cs = cpu_adam.state(), gs = gpu_adam.state();
    for (size_t t = 0; t < shapes.size(); ++t) {
      SCOPED_TRACE("parameter " + std::to_string(t));
      EXPECT_TRUE(all_close(gpu_params[t], cpu_params[t], 1e-5f, 1e-5f));
      EXPECT_TRUE(all_close(gs[3 * t].second, cs[3 * t].second, 1e-6f, 1e-5f));
      EXPECT_TRUE(all_close(gs[3 * t + 1].second, cs[3 * t + 1].second, 1e-7f, 1e-5f));
    }
  }
}

std::vector<Tensor> one_parameter() {
  Tensor p = random_tensor({4}, 1);
  p.set_requires_grad();
  return {p};
}

TEST(AdamOptions, RejectsImpossibleOptions) {
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.lr = -0.1f}); }, "learning rate"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.beta1 = 1.f}); }, "beta1 must be in [0, 1)"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.beta1 = -0.1f}); }, "beta1"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.beta2 = 1.f}); }, "beta2 must be in [0, 1)"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.beta2 = NAN}); }, "beta2"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.eps = 0.f}); }, "eps must be finite and > 0"));
  EXPECT_TRUE(throws_error([] { Adam(one_parameter(), {.weight_decay = -1e-4f, .decoupled = true}); },
                           {"AdamW", "weight decay"}));
  EXPECT_TRUE(throws_error([] { Adam({}, {}); }, {"Adam", "empty"}));
  Adam adam(one_parameter(), {.lr = 0.1f});
  adam.set_lr(0.02f);
  EXPECT_FLOAT_EQ(adam.options().lr, 0.02f);
}

TEST(AdamState, RejectsMalformedStateWithoutChangingAnything) {
  std::vector<Tensor> p = one_parameter();
  Adam adam(p, {});
  p[0].set_grad(random_tensor({4}, 2));
  adam.step();
  const auto good = adam.state();
  using State = std::vector<std::pair<std::string, Tensor>>;
  const Tensor m = good[0].second, v = good[1].second, s = good[2].second;
  EXPECT_TRUE(throws_error([&] { adam.load_state(State{{"momentum.0", m}}); }, "'momentum.0'"));
  EXPECT_TRUE(throws_error([&] { adam.load_state(State{{"exp_avg.1", m}}); }, "'exp_avg.1'"));
  EXPECT_TRUE(throws_error([&] { adam.load_state(State{{"exp_avg.0", m}, {"step.0", s}}); }, "incomplete"));
  EXPECT_TRUE(throws_error([&] { adam.load_state(State{{"exp_avg.0", m}, {"exp_avg.0", m}}); }, "two entries"));
  EXPECT_TRUE(throws_error(
      [&] { adam.load_state(State{{"exp_avg.0", random_tensor({5}, 3)}, {"exp_avg_sq.0", v}, {"step.0", s}}); },
      {"'exp_avg.0'", "float32[5]"}));
  EXPECT_TRUE(throws_error(
      [&] { adam.load_state(State{{"exp_avg.0", m}, {"exp_avg_sq.0", v}, {"step.0", Tensor::scalar(1.f)}}); },
      {"'step.0'", "int64"}));
  EXPECT_TRUE(throws_error(
      [&] {
        adam.load_state(State{{"exp_avg.0", m}, {"exp_avg_sq.0", v}, {"step.0", Tensor::from_vector<int64_t>({0}, {})}});
      },
      "expected >= 1"));
  EXPECT_EQ(adam.step_count(0), 1);
  // An empty state is a fresh optimizer.
  adam.load_state({});
  EXPECT_EQ(adam.step_count(0), 0);
  EXPECT_TRUE(adam.state().empty());
}

}  // namespace
}  // namespace sieve

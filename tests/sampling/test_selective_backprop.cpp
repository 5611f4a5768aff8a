// Selective backprop (sampling/selective_backprop.h): candidates are kept with probability percentile^β, so the
// trained examples follow the density that predicts; the stale variant trains on every unseen example first and uses
// no forward pass; checkpoints resume exactly; the GPU selects as the CPU does.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include "core/checkpoint.h"
#include "sampling/make_selector.h"
#include "sampling/selective_backprop.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// A data set of n examples whose loss under the "model" is 0.05 + 3 e / n for example e: logits (0, z) with label 0
// have cross-entropy log(1 + e^z).
struct FakeModel {
  int64_t n;
  int64_t calls = 0;
  int64_t scored = 0;
  static float loss(int32_t e, int64_t n) { return 0.05f + 3.f * static_cast<float>(e) / static_cast<float>(n); }
  ScoringContext context(Device device) {
    ScoringContext ctx;
    ctx.dataset_size = n;
    ctx.device = device;
    ctx.labels = Tensor::zeros({n}, DType::I32, device);
    ctx.logits = [this, device](const Tensor& indices) {
      ++calls;
      scored += indices.numel();
      std::vector<float> logits;
      for (int32_t e : indices.to_vector<int32_t>()) {
        logits.push_back(0.f);
        logits.push_back(std::log(std::expm1(loss(e, this->n))));
      }
      return Tensor::from_vector(logits, {indices.numel(), 2}, device);
    };
    return ctx;
  }
};

std::vector<int32_t> serve(Selector& s, const ScoringContext& ctx, int64_t steps) {
  std::vector<int32_t> out;
  for (int64_t t = 0; t < steps; ++t) {
    const Selection sel = s.select(ctx);
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    EXPECT_EQ(sel.weights.to_vector<float>(), std::vector<float>(idx.size(), 1.f));
    std::vector<float> losses;
    for (int32_t e : idx) losses.push_back(FakeModel::loss(e, ctx.dataset_size));
    s.observe(sel, Tensor(), Tensor(), Tensor::from_vector(losses, {static_cast<int64_t>(idx.size())}, ctx.device));
    out.insert(out.end(), idx.begin(), idx.end());
  }
  return out;
}

using testing::stat;

class SelectiveBackprop : public testing::DeviceTest {};

// The loss is increasing in x = e / n, so a candidate's percentile is about x and it is kept with probability x^β:
// the trained x have density (β + 1) x^β, mean (β + 1) / (β + 2), and a share 1 / (β + 1) of candidates is kept.
TEST_P(SelectiveBackprop, TrainsOnHighLossExamplesAsThePercentileRulePredicts) {
  for (float beta : {1.f, 2.f}) {
    FakeModel model{10000};
    SelectiveBackpropOptions o;
    o.batch = 64;
    o.beta = beta;
    o.seed = 4;
    SelectiveBackpropSelector sel(o);
    const ScoringContext ctx = model.context(device());
    serve(sel, ctx, 20);  // fills the history of 1024 losses
    const std::vector<int32_t> trained = serve(sel, ctx, 300);
    double mean = 0, mean_sq = 0;
    for (int32_t e : trained) {
      const double x = static_cast<double>(e) / model.n;
      mean += x;
      mean_sq += x * x;
    }
    mean /= trained.size();
    mean_sq /= trained.size();
    const double expected = (beta + 1) / (beta + 2);
    const double sd = std::sqrt(mean_sq - mean * mean);
    EXPECT_NEAR(mean, expected, 5 * sd / std::sqrt(static_cast<double>(trained.size())) + 0.005) << beta;
    EXPECT_NEAR(stat(sel, "keep_rate"), 1.0 / (beta + 1), 0.03) << beta;
    EXPECT_EQ(model.scored, static_cast<int64_t>(stat(sel, "candidates"))) << beta;  // every candidate forwarded once
  }
}

TEST_P(SelectiveBackprop, StaleVariantTrainsEveryUnseenExampleFirstWithoutForwardPasses) {
  FakeModel model{640};
  SelectorOptions o;
  o.batch = 64;
  o.seed = 2;
  std::unique_ptr<Selector> sel = make_selector("selective-backprop-stale", o);
  const ScoringContext ctx = model.context(device());
  const std::vector<int32_t> first = serve(*sel, ctx, 10);  // the first pass: every example, once
  EXPECT_EQ(std::set<int32_t>(first.begin(), first.end()).size(), 640u);
  serve(*sel, ctx, 30);
  EXPECT_EQ(model.calls, 0);
  EXPECT_LT(stat(*sel, "keep_rate"), 0.8);  // later passes keep only some
}

TEST_P(SelectiveBackprop, ResumesIdentically) {
  for (const char* name : {"selective-backprop", "selective-backprop-stale"}) {
    FakeModel model{700};
    SelectorOptions o;
    o.batch = 32;
    o.sb_history = 100;
    o.seed = 9;
    const ScoringContext ctx = model.context(device());
    std::unique_ptr<Selector> straight = make_selector(name, o), first = make_selector(name, o);
    serve(*straight, ctx, 30);
    serve(*first, ctx, 30);
    testing::TempDir dir;
    CheckpointState state;
    first->save_state(state, "selector.");
    save_checkpoint(dir.file("sb.safetensors"), state);
    serve(*first, ctx, 3);
    std::unique_ptr<Selector> resumed = make_selector(name, o);
    resumed->load_state(load_checkpoint(dir.file("sb.safetensors")), "selector.");
    EXPECT_EQ(serve(*resumed, ctx, 25), serve(*straight, ctx, 25)) << name;
    EXPECT_EQ(resumed->stats(), straight->stats()) << name;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SelectiveBackprop);

TEST(SelectiveBackpropOptions, InvalidOptionsAreRejected) {
  using testing::throws_error;
  SelectiveBackpropOptions o;
  o.beta = -1.f;
  EXPECT_TRUE(throws_error([&] { SelectiveBackpropSelector s(o); }, {"--sb-beta", "-1"}));
  o = SelectiveBackpropOptions{};
  o.history = 10;
  EXPECT_TRUE(throws_error([&] { SelectiveBackpropSelector s(o); }, {"--sb-history", "128", "10"}));
}

class SelectiveBackpropGpu : public testing::GpuTest {};

TEST_F(SelectiveBackpropGpu, MatchesCpu) {
  for (const char* name : {"selective-backprop", "selective-backprop-stale"}) {
    SelectorOptions o;
    o.batch = 128;
    o.sb_beta = 2.f;
    o.seed = 6;
    FakeModel m_cpu{30000}, m_gpu{30000};
    std::unique_ptr<Selector> cpu = make_selector(name, o), gpu = make_selector(name, o);
    EXPECT_EQ(serve(*gpu, m_gpu.context(Device::cuda(0)), 300), serve(*cpu, m_cpu.context(Device::cpu()), 300))
        << name;
    EXPECT_EQ(gpu->stats(), cpu->stats()) << name;
  }
}

}  // namespace
}  // namespace sieve

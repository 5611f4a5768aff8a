// InfoBatch (sampling/infobatch.h): the first epoch keeps everything, later epochs prune examples below the mean score
// with probability r and up-weight the kept ones, the epoch's weighted sum is unbiased, annealing restores the full
// data, checkpoints resume exactly, and the GPU serves the same batches as the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include "core/checkpoint.h"
#include "sampling/infobatch.h"
#include "sampling/make_selector.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

ScoringContext context(int64_t n, Device device, double progress = 0) {
  ScoringContext ctx;
  ctx.dataset_size = n;
  ctx.device = device;
  ctx.progress = progress;
  return ctx;  // no logits: InfoBatch scores with the training losses only
}

// A fixed "loss" per example: low for the first half of the examples, high for the rest.
float loss_of(int32_t e, int64_t n) { return e < n / 2 ? 0.1f + 0.001f * static_cast<float>(e % 7) : 2.f; }

struct Served {
  std::vector<int32_t> indices;
  std::vector<float> weights;
};

// Serves `steps` batches, observing loss_of for each.
Served serve(Selector& s, const ScoringContext& ctx, int64_t steps) {
  Served out;
  for (int64_t t = 0; t < steps; ++t) {
    const Selection sel = s.select(ctx);
    const std::vector<int32_t> idx = sel.indices.to_vector<int32_t>();
    const std::vector<float> w = sel.weights.to_vector<float>();
    std::vector<float> losses;
    for (int32_t e : idx) losses.push_back(loss_of(e, ctx.dataset_size));
    s.observe(sel, Tensor(), Tensor(), Tensor::from_vector(losses, {static_cast<int64_t>(losses.size())}, ctx.device));
    out.indices.insert(out.indices.end(), idx.begin(), idx.end());
    out.weights.insert(out.weights.end(), w.begin(), w.end());
  }
  return out;
}

using testing::stat;

class InfoBatch : public testing::DeviceTest {};

TEST_P(InfoBatch, FirstEpochKeepsAllThenPrunesExamplesBelowTheMean) {
  const int64_t n = 2000, b = 100;
  InfoBatchOptions o;
  o.batch = b;
  o.prune_ratio = 0.5;
  o.seed = 3;
  InfoBatchSelector sel(o);
  const ScoringContext ctx = context(n, device());
  // Epoch 1: every score is the initial 3, none lies below the mean: all N examples once, weight 1.
  const Served first = serve(sel, ctx, n / b);
  EXPECT_EQ(std::set<int32_t>(first.indices.begin(), first.indices.end()).size(), static_cast<size_t>(n));
  for (float w : first.weights) ASSERT_EQ(w, 1.f);
  EXPECT_EQ(stat(sel, "pruned_share"), 0.0);
  // Epoch 2: the first half has scores ~0.1 below the mean ~1.05: each kept with probability 0.5 at weight 2.
  const Selection head = sel.select(ctx);  // starts epoch 2
  const int64_t kept = sel.epoch_examples().numel();
  const std::vector<int32_t> epoch = sel.epoch_examples().to_vector<int32_t>();
  EXPECT_EQ(std::set<int32_t>(epoch.begin(), epoch.end()).size(), epoch.size());  // without repeats
  int64_t low = 0, high = 0;
  for (int32_t e : epoch) (e < n / 2 ? low : high) += 1;
  EXPECT_EQ(high, n / 2);  // every example at or above the mean stays
  EXPECT_NEAR(low, n / 4, 5 * std::sqrt(n / 2 * 0.25));  // Binomial(1000, 0.5): 5 standard deviations
  EXPECT_EQ(kept, low + high);
  EXPECT_NEAR(stat(sel, "pruned_share"), 1.0 - static_cast<double>(kept) / n, 1e-12);
  const std::vector<int32_t> idx = head.indices.to_vector<int32_t>();
  const std::vector<float> w = head.weights.to_vector<float>();
  for (size_t j = 0; j < idx.size(); ++j) EXPECT_EQ(w[j], idx[j] < n / 2 ? 2.f : 1.f) << idx[j];
  // The epoch is served in ceil(kept / b) steps, the last one short.
  int64_t served = head.indices.numel();
  while (served < kept) served += sel.select(ctx).indices.numel();
  EXPECT_EQ(served, kept);
  EXPECT_EQ(stat(sel, "epoch"), 2.0);
}

// Note [infobatch unbiased]: over many pruned epochs, the mean of Σ_kept w_e v_e equals Σ_e v_e for any values v.
TEST_P(InfoBatch, EpochWeightedSumIsTheFullSumInExpectation) {
  const int64_t n = 400, epochs = 600;
  InfoBatchOptions o;
  o.batch = n;  // one step per epoch
  o.prune_ratio = 0.7;
  o.seed = 8;
  InfoBatchSelector sel(o);
  const ScoringContext ctx = context(n, device());
  const std::vector<float> v = testing::random_tensor({n}, 5, Device::cpu(), -1.f, 3.f).to_vector<float>();
  double full = 0, variance = 0;
  for (float x : v) full += x;
  serve(sel, ctx, 1);  // epoch 1 keeps all and sets the scores; later epochs observe nothing new
  const double k = sel.keep_ratio();
  for (int64_t e = 0; e < n / 2; ++e) variance += v[e] * v[e] * (1 - k) / k;  // Bernoulli(k) v / k per example
  double total = 0;
  for (int64_t t = 0; t < epochs; ++t) {
    const Selection s = sel.select(ctx);
    const std::vector<int32_t> idx = s.indices.to_vector<int32_t>();
    const std::vector<float> w = s.weights.to_vector<float>();
    for (size_t j = 0; j < idx.size(); ++j) total += w[j] * v[idx[j]];
  }
  EXPECT_NEAR(total / epochs, full, 5 * std::sqrt(variance / epochs));
  EXPECT_NEAR(stat(sel, "pruned_mean"), 0.5 * 0.7 * static_cast<double>(epochs) / (epochs + 1), 0.02);
}

TEST_P(InfoBatch, AnnealsToTheFullDataAfterDeltaOfTheBudget) {
  const int64_t n = 1000, b = 1000;
  InfoBatchOptions o;
  o.batch = b;
  o.anneal = 0.8;
  InfoBatchSelector sel(o);
  serve(sel, context(n, device(), 0.0), 2);  // epoch 1 full, epoch 2 pruned
  EXPECT_GT(stat(sel, "pruned_share"), 0.1);
  EXPECT_EQ(stat(sel, "annealed"), 0.0);
  const Served later = serve(sel, context(n, device(), 0.8), 1);
  EXPECT_EQ(later.indices.size(), static_cast<size_t>(n));
  for (float w : later.weights) ASSERT_EQ(w, 1.f);
  EXPECT_EQ(stat(sel, "annealed"), 1.0);
  EXPECT_EQ(stat(sel, "pruned_share"), 0.0);
}

TEST_P(InfoBatch, ResumesIdentically) {
  SelectorOptions o;
  o.batch = 64;
  o.seed = 12;
  const int64_t n = 500;
  const ScoringContext ctx = context(n, device());
  std::unique_ptr<Selector> straight = make_selector("infobatch", o), first = make_selector("infobatch", o);
  serve(*straight, ctx, 11);  // mid-epoch 2
  serve(*first, ctx, 11);
  testing::TempDir dir;
  CheckpointState state;
  first->save_state(state, "selector.");
  save_checkpoint(dir.file("ib.safetensors"), state);
  serve(*first, ctx, 3);
  std::unique_ptr<Selector> resumed = make_selector("infobatch", o);
  resumed->load_state(load_checkpoint(dir.file("ib.safetensors")), "selector.");
  const Served a = serve(*resumed, ctx, 20), b = serve(*straight, ctx, 20);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(resumed->stats(), straight->stats());
}

SIEVE_INSTANTIATE_DEVICE_TESTS(InfoBatch);

TEST(InfoBatchOptions, InvalidOptionsAreRejected) {
  using testing::throws_error;
  InfoBatchOptions o;
  o.prune_ratio = -0.1;
  EXPECT_TRUE(throws_error([&] { InfoBatchSelector s(o); }, {"--prune-ratio", "[0, 1]", "-0.1"}));
  o = InfoBatchOptions{};
  o.anneal = 1.5;
  EXPECT_TRUE(throws_error([&] { InfoBatchSelector s(o); }, {"--anneal", "1.5"}));
  o = InfoBatchOptions{};
  o.prune_ratio = 1.0;
  EXPECT_FLOAT_EQ(InfoBatchSelector(o).keep_ratio(), 0.1f);  // floored, as the reference
}

class InfoBatchGpu : public testing::GpuTest {};

TEST_F(InfoBatchGpu, MatchesCpu) {
  SelectorOptions o;
  o.batch = 128;
  o.seed = 5;
  std::unique_ptr<Selector> cpu = make_selector("infobatch", o), gpu = make_selector("infobatch", o);
  const Served c = serve(*cpu, context(20000, Device::cpu()), 500);
  const Served g = serve(*gpu, context(20000, Device::cuda(0)), 500);
  EXPECT_EQ(g.indices, c.indices);
  EXPECT_EQ(g.weights, c.weights);
  EXPECT_EQ(gpu->stats(), cpu->stats());
}

}  // namespace
}  // namespace sieve

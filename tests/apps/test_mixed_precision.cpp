// --mixed-precision bf16 (Note [bf16 products] in core/ops/precision.h) through the Trainer: a short CPU run of the
// small CNN (convolutions and linear layers) trains as well as float32 and leaves float32 weights.
#include <cmath>
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "core/ops/precision.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

TrainOptions short_cnn_run(const std::string& mixed_precision) {
  TrainOptions o;
  o.model = "cnn";
  o.sampler = "uniform";
  o.selection.batch = 32;
  o.selection.presample = 32;
  o.schedule = "constant";
  o.iterations = 60;
  o.eval_every = 60;
  o.train_eval_size = 500;
  o.seed = 5;
  o.mixed_precision = mixed_precision;
  return o;
}

DataSplits small_fashion_mnist() { return testing::fashion_mnist_subset(0, 500, 2); }

using testing::have_fashion_mnist;

// Every parameter of the model, copied.
std::vector<Tensor> snapshot(Trainer& trainer) {
  std::vector<Tensor> out;
  for (const Tensor& p : trainer.model().parameters()) out.push_back(p.detach().clone());
  return out;
}

// One step from the same initial model and batch: the bf16 update is the float32 update up to the rounding of
// the products' inputs, ~2^-8 relative each. Measured (seed 5): 0.4% on the last layer's weights, 4% to 7% on
// the layers below, where backpropagation through batch normalisation subtracts the gradient's mean and its
// projection on the normalised activations, leaving a smaller residual that keeps the absolute rounding error;
// 3.9% over all parameters. A wrong product (a transposed operand, a missing rounding scope) is off by O(1).
TEST(MixedPrecision, OneBf16StepUpdatesLikeFloat32) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const MatmulPrecisionScope restore(matmul_precision());  // the Trainer sets the process-wide switch
  const DataSplits data = small_fashion_mnist();
  std::vector<std::vector<Tensor>> before, after;
  for (const std::string mixed_precision : {"none", "bf16"}) {
    Trainer trainer(short_cnn_run(mixed_precision), data, Device::cpu());
    EXPECT_EQ(matmul_precision(), parse_matmul_precision(mixed_precision));
    before.push_back(snapshot(trainer));
    trainer.step();
    after.push_back(snapshot(trainer));
  }
  double diff = 0, norm = 0;
  for (size_t i = 0; i < before[0].size(); ++i) {
    ASSERT_EQ(after[1][i].dtype(), DType::F32);
    const std::vector<float> b32 = before[0][i].to_vector<float>(), b16 = before[1][i].to_vector<float>();
    const std::vector<float> a32 = after[0][i].to_vector<float>(), a16 = after[1][i].to_vector<float>();
    ASSERT_EQ(b32, b16) << "parameter " << i << ": the same seed gives the same initial model";
    for (size_t j = 0; j < b32.size(); ++j) {
      const double d32 = static_cast<double>(a32[j]) - b32[j], d16 = static_cast<double>(a16[j]) - b16[j];
      diff += (d16 - d32) * (d16 - d32);
      norm += d32 * d32;
    }
  }
  ASSERT_GT(norm, 0.0);
  const double relative = std::sqrt(diff / norm);
  EXPECT_LT(relative, 1.0 / 8);
  EXPECT_GT(relative, 0.0) << "bf16 changed nothing";
}

// 60 steps of the small CNN in bf16 train it; how far it gets varies from seed to seed by more than bf16 moves it
// (at 200 steps, float32 seeds 5 and 6 reached 72% and 77% test accuracy, bf16 78% and 78%), so the comparison
// with float32 only catches gross failure.
TEST(MixedPrecision, Bf16CnnTrainsOnTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const MatmulPrecisionScope restore(matmul_precision());
  const DataSplits data = small_fashion_mnist();
  std::vector<EvalRecord> f32, bf16;
  Trainer f32_trainer(short_cnn_run("none"), data, Device::cpu());
  f32_trainer.run([&](const EvalRecord& r) { f32.push_back(r); });
  Trainer bf16_trainer(short_cnn_run("bf16"), data, Device::cpu());
  bf16_trainer.run([&](const EvalRecord& r) { bf16.push_back(r); });
  ASSERT_EQ(f32.size(), 2u);
  ASSERT_EQ(bf16.size(), 2u);
  // The same initial model, evaluated with bf16 products: the loss moves by rounding only.
  EXPECT_NEAR(bf16.front().train_loss, f32.front().train_loss, 0.01 * f32.front().train_loss);
  EXPECT_LT(bf16.back().train_loss, 0.6 * bf16.front().train_loss);
  EXPECT_GT(bf16.back().test_accuracy, 0.5);  // 60 steps of 32 examples, from 10% (chance)
  EXPECT_LT(bf16.back().train_loss, 1.5 * f32.back().train_loss);
  // The master weights stay float32 and are not confined to bf16 values.
  bool off_grid = false;
  for (const Tensor& p : bf16_trainer.model().parameters()) {
    ASSERT_EQ(p.dtype(), DType::F32);
    const std::vector<float> v = p.to_vector<float>(), r = round_to_bf16(p).to_vector<float>();
    for (size_t i = 0; i < v.size() && !off_grid; ++i) off_grid = v[i] != r[i];
  }
  EXPECT_TRUE(off_grid);
}

TEST(MixedPrecision, UnknownNameIsOneReadableError) {
  EXPECT_TRUE(testing::throws_error([] { parse_matmul_precision("fp8"); },
                                    std::vector<std::string>{"mixed precision", "none or bf16", "fp8"}));
}

}  // namespace
}  // namespace sieve

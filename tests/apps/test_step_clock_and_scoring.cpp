// The training loop's clock and scoring pass: the fair clock of Note [fair clock] counts the device work of every
// step but the last, and --score-precision bf16 changes the scoring pass only.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "core/ops/linear.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

class FairClock : public testing::DeviceTest {};

// A "step" queues a chain of matrix products and returns without waiting. After k steps the clock must have counted
// the device time of all but the last of them. The bound is taken from the same loop's own wall time, measured
// around it with a synchronisation at the end, not from steps timed before it: under a parallel ctest the machine's
// speed changes from one moment to the next (a bound from five earlier steps once exceeded what the loop itself
// took). With 10 steps the clock must have counted at least half of the loop's time after the last step (all but
// one step's worth when it works; next to nothing on a GPU when it never waits) and all of it once synchronised.
TEST_P(FairClock, CountsTheDeviceWorkOfEveryStepButTheLast) {
  const Device d = device();
  const int64_t size = d.is_cuda() ? 4096 : 256;
  const Tensor a = testing::random_tensor({size, size}, 1, d, -0.01f, 0.01f);
  auto step = [&] {
    Tensor c = a;
    for (int i = 0; i < 6; ++i) c = matmul(c, a);
    return c;
  };
  step();
  synchronize(d);

  StepClock clock(d);
  clock.start(5.0);  // continues from 5 s
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  const int steps = 10;
  for (int k = 0; k < steps; ++k) {
    step();
    seconds = clock.after_step();
  }
  synchronize(d);
  const double loop = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(seconds - 5.0, 0.5 * loop) << "the loop took " << loop << " s";
  EXPECT_GE(clock.synchronized() - 5.0, 0.99 * loop) << "the loop took " << loop << " s";
}

SIEVE_INSTANTIATE_DEVICE_TESTS(FairClock);

// --score-precision bf16: the scoring pass multiplies in bf16 (Note [bf16 products]), so its logits differ from the
// float32 ones by bf16's relative precision (8 significant bits) and no more; the training precision is untouched.
TEST(ScorePrecision, Bf16ScoringPassIsCloseToFloat32AndLeavesTrainingAlone) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const DataSplits data = testing::fashion_mnist_subset(1000, 100, 3);
  TrainOptions o;
  o.model = "cnn";
  o.sampler = "upper-bound";
  o.iterations = 1;
  TrainOptions b = o;
  b.score_precision = "bf16";
  Trainer f32(o, data, Device::cpu()), bf16(b, data, Device::cpu());
  Generator gen(1);
  const Tensor indices = randint({64}, data.train.size(), gen);
  const std::vector<float> exact = f32.scoring_logits(indices).to_vector<float>();
  const std::vector<float> rounded = bf16.scoring_logits(indices).to_vector<float>();
  EXPECT_EQ(matmul_precision(), MatmulPrecision::F32);
  ASSERT_EQ(exact.size(), rounded.size());
  double largest = 0, scale = 0, differing = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    largest = std::max(largest, static_cast<double>(std::abs(exact[i] - rounded[i])));
    scale = std::max(scale, static_cast<double>(std::abs(exact[i])));
    differing += exact[i] != rounded[i];
  }
  EXPECT_GT(differing, exact.size() / 2) << "bf16 products change most logits";
  // Each of the network's products rounds its inputs to 2^-8 relative; a few layers deep, a few percent of the scale.
  EXPECT_LT(largest, 0.05 * scale);
  EXPECT_TRUE(testing::throws_error([&] {
    TrainOptions bad = o;
    bad.score_precision = "fp8";
    Trainer t(bad, data, Device::cpu());
  }, "--score-precision must be f32 or bf16, found 'fp8'"));
}

}  // namespace
}  // namespace sieve

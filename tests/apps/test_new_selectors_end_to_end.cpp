// InfoBatch, selective backprop and history-score importance sampling in the real training loop on Fashion-MNIST (CPU):
// runs complete and learn, log the selection time and write the per-example dump (their bit-identical resumes are in
// test_selectors_end_to_end.cpp); the fair clock of Note [fair clock] counts the device work of every step but the last.
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "core/ops/linear.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::have_fashion_mnist;

const DataSplits& small_fashion_mnist() {
  static const DataSplits data = testing::fashion_mnist_subset(3000, 500, 21);
  return data;
}

TrainOptions small_run(const std::string& sampler) {
  TrainOptions o;
  o.model = "mlp:128";
  o.sampler = sampler;
  o.selection.batch = 64;
  o.selection.history_refresh = 10;  // history samplers: a new distribution every 10 steps
  o.selection.sb_history = 256;
  o.iterations = 120;
  o.eval_every = 60;
  o.train_eval_size = 500;
  o.schedule = "constant";
  o.seed = 4;
  return o;
}

using testing::stat;

// The dump's rows: header split by commas, then one vector of fields per example.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    rows.push_back(fields);
  }
  return rows;
}

TEST(NewSelectorsEndToEnd, MlpTrainsWithEachAndDumpsItsSelection) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  for (const char* sampler :
       {"infobatch", "selective-backprop", "selective-backprop-stale", "upper-bound-history", "loss-history"}) {
    TrainOptions o = small_run(sampler);
    o.dump_selection = dir.file(std::string(sampler) + ".csv");
    Trainer trainer(o, small_fashion_mnist(), Device::cpu());
    std::vector<EvalRecord> records;
    const EvalRecord last = trainer.run([&](const EvalRecord& r) { records.push_back(r); });
    ASSERT_EQ(records.size(), 3u) << sampler;
    EXPECT_EQ(last.sampler, sampler);
    EXPECT_LT(last.train_loss, 0.8 * records.front().train_loss) << sampler;
    EXPECT_GT(last.test_accuracy, 0.6) << sampler;
    EXPECT_GT(last.selection_s, 0.0) << sampler;
    EXPECT_LT(last.selection_s, last.time_s) << sampler;
    const nlohmann::json j = nlohmann::json::parse(to_json_line(last));
    EXPECT_TRUE(j.contains("selection_s")) << sampler;
    const std::string name(sampler);
    if (name == "selective-backprop") EXPECT_GE(last.scored, last.examples) << "every candidate forwarded";
    else EXPECT_EQ(last.scored, 0) << sampler << ": no scoring pass";
    if (name == "infobatch") {
      // 3000 examples, b = 64: epoch 1 (47 steps) keeps all; epochs 2 and 3 prune some of those below the mean; the
      // epoch begun after 87.5% of the 120 steps trains on all of them again.
      EXPECT_GT(stat(last.selector_stats, "pruned_mean"), 0.05);
      EXPECT_GE(stat(last.selector_stats, "epoch"), 3.0);
      EXPECT_EQ(stat(last.selector_stats, "annealed"), 1.0);
      EXPECT_EQ(stat(last.selector_stats, "pruned_share"), 0.0);
    }
    if (name.find("history") != std::string::npos) EXPECT_TRUE(last.importance_on) << sampler;

    // The dump: one row per example; the counts add up to the examples trained; a trained example has a weight and,
    // for these selectors, a last score.
    const auto rows = read_csv(o.dump_selection);
    ASSERT_EQ(rows.size(), 3001u) << sampler;
    ASSERT_GE(rows[0].size(), 5u) << sampler;
    EXPECT_EQ(rows[0][2], "times_trained");
    EXPECT_EQ(rows[0][3], "last_weight");
    EXPECT_EQ(rows[0][4], "last_score");
    int64_t trained = 0;
    for (size_t i = 1; i < rows.size(); ++i) {
      ASSERT_EQ(rows[i].size(), rows[0].size()) << sampler << " row " << i;
      const int64_t times = std::stoll(rows[i][2]);
      trained += times;
      EXPECT_EQ(rows[i][3].empty(), times == 0) << sampler << " row " << i;
    }
    EXPECT_EQ(trained, last.examples) << sampler;
    if (name == "infobatch") EXPECT_EQ(rows[0][5], "pruned");
  }
}

class FairClock : public testing::DeviceTest {};

// A "step" queues a chain of matrix products and returns without waiting. After k steps the clock must have counted
// the device time of at least k - 1 of them: the time it reads includes all but the last step's work.
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
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) step();
  synchronize(d);
  const double per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;

  StepClock clock(d);
  clock.start(5.0);  // continues from 5 s
  double seconds = 0;
  const int steps = 10;
  for (int k = 0; k < steps; ++k) {
    step();
    seconds = clock.after_step();
  }
  EXPECT_GE(seconds - 5.0, 0.8 * (steps - 1) * per_step) << "one step of " << per_step << " s";
  EXPECT_GE(clock.synchronized() - 5.0, 0.8 * steps * per_step);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(FairClock);

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

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

#ifdef SIEVE_TRAIN_BINARY
namespace sieve {
namespace {

// The new flags from the command line: a run per selector completes, prints the selection share, and writes the dump;
// impossible values give one readable line before any data are loaded.
TEST(SieveTrain, TakesTheNewSelectorsFlags) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  const std::string bin = std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:64 --iterations 40 "
                          "--train-eval-size 500 --test-eval-size 500 --quiet ";
  const testing::CommandResult c = testing::run_command(
      bin + "--sampler infobatch,selective-backprop,upper-bound --score-source history --prune-ratio 0.3 --anneal 0.5 "
            "--sb-history 512 --sb-beta 2 --score-smoothing 0.2 --history-refresh 5 --score-precision bf16 "
            "--dump-selection " + dir.file("dump.csv"));
  ASSERT_EQ(c.status, 0) << c.output;
  for (const char* text : {"infobatch", "selective-backprop", "upper-bound-history", "selection share of time"})
    EXPECT_NE(c.output.find(text), std::string::npos) << text << "\n" << c.output;
  for (const char* name : {"dump-infobatch.csv", "dump-selective-backprop.csv", "dump-upper-bound-history.csv"})
    EXPECT_TRUE(std::ifstream(dir.file(name)).good()) << name;
  const testing::CommandResult stale = testing::run_command(bin + "--sampler selective-backprop --sb-stale");
  ASSERT_EQ(stale.status, 0) << stale.output;
  EXPECT_NE(stale.output.find("selective-backprop-stale"), std::string::npos) << stale.output;

  struct Case {
    std::string args, expect;
  };
  for (const Case& k : std::vector<Case>{
           {"--sampler infobatch --prune-ratio 2", "--prune-ratio must be in [0, 1], found 2"},
           {"--sampler infobatch --anneal -1", "--anneal must be in [0, 1]"},
           {"--sampler selective-backprop --sb-history 10", "--sb-history must be at least --batch (128)"},
           {"--sampler selective-backprop --sb-beta -2", "--sb-beta must be finite and >= 0"},
           {"--sampler loss-history --score-smoothing -1", "--score-smoothing must be finite and >= 0"},
           {"--sampler upper-bound-history --history-refresh 0", "--history-refresh must be >= 1"},
           {"--sampler uniform --dump-selection " + dir.file("no/such/dir/d.csv"), "no/such/dir"},
       }) {
    const testing::CommandResult bad = testing::run_command(bin + k.args);
    EXPECT_NE(bad.status, 0) << k.args;
    EXPECT_NE(bad.output.find("sieve-train: error: "), std::string::npos) << k.args << "\n" << bad.output;
    EXPECT_NE(bad.output.find(k.expect), std::string::npos) << k.args << "\n" << bad.output;
  }
}

}  // namespace
}  // namespace sieve
#endif

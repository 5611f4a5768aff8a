// End to end on real Fashion-MNIST (Debian's dataset-fashion-mnist): the training loop reaches a meaningful
// accuracy, and the programs turn bad input into one readable line and a non-zero exit.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/trainer.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

namespace fs = std::filesystem;

bool have_fashion_mnist() { return fs::is_directory(default_data_dir("fashion-mnist")); }

const DataSplits& fashion_mnist() {
  static const DataSplits data = load_dataset(parse_data_spec("fashion-mnist"));
  return data;
}

struct Command {
  int status;
  std::string output;  // stdout and stderr together
};
Command run_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

TrainOptions short_run(const std::string& sampler) {
  TrainOptions o;
  o.sampler = sampler;
  o.iterations = 1500;  // 3.2 epochs of b = 128: steps, not seconds, so a busy machine changes nothing
  o.schedule = "step";
  o.milestones = {1000, 1300};
  o.selection.batch = 128;
  o.selection.presample = 384;
  o.selection.tau_th = 1.2f;  // low enough that importance sampling is on for most of this short run
  o.eval_every = 1500;
  o.seed = 3;
  return o;
}

TEST(EndToEnd, MlpOnFashionMnistClearsEightySixPercentInFifteenHundredSteps) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  Trainer trainer(short_run("uniform"), fashion_mnist(), Device::cpu());
  std::vector<EvalRecord> records;
  const EvalRecord last = trainer.run([&](const EvalRecord& r) { records.push_back(r); });
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NEAR(records.front().test_accuracy, 0.1, 0.08);  // an untrained model guesses
  EXPECT_TRUE(last.final);
  EXPECT_EQ(last.step, 1500);
  EXPECT_GT(last.test_accuracy, 0.86);  // the data set's own MLP benchmark lists 87-88% after full training
  EXPECT_LT(last.train_loss, records.front().train_loss / 4);
}

TEST(EndToEnd, UpperBoundImportanceSamplingTrainsAndSwitchesOn) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  Trainer trainer(short_run("upper-bound"), fashion_mnist(), Device::cpu());
  const EvalRecord last = trainer.run([](const EvalRecord&) {});
  ASSERT_TRUE(last.tau.has_value());
  EXPECT_GT(*last.tau, 1.2);
  EXPECT_GT(last.importance_fraction, 0.5);
  EXPECT_GT(last.scored, 1500 * 384 / 2);
  EXPECT_GT(last.test_accuracy, 0.86);
}

#ifdef SIEVE_TRAIN_BINARY
TEST(SieveTrain, WritesTheDocumentedJsonLog) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const fs::path log = fs::temp_directory_path() / "sieve-train-test.jsonl";
  const Command c = run_command(std::string(SIEVE_TRAIN_BINARY) + " --device cpu --sampler uniform,upper-bound " +
                                "--iterations 60 --eval-every 30 --log " + log.string());
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("final results"), std::string::npos) << c.output;
  std::ifstream in(log);
  std::string line;
  int records = 0, finals = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* key : {"step", "time_s", "train_loss", "test_loss", "test_accuracy", "tau", "importance_on",
                            "examples", "scored", "epochs", "selector"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    finals += j.value("final", false);
    ++records;
  }
  EXPECT_EQ(records, 6);  // per sampler: the start, step 30, step 60 (final)
  EXPECT_EQ(finals, 2);
  fs::remove(log);
}

// The equal-data budget of the coreset papers: a run stops at the first step that reaches it, and its records
// count the examples trained on and the epochs they make.
TEST(Trainer, ExampleBudgetStopsAtTheFirstStepThatReachesIt) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TrainOptions o;
  o.model = "mlp:16";
  o.sampler = "uniform";
  o.selection.batch = 100;
  o.example_budget = 1050;  // 11 steps of 100
  Trainer trainer(o, fashion_mnist(), Device::cpu());
  int records = 0;
  const EvalRecord final_record = trainer.run([&](const EvalRecord&) { ++records; });
  EXPECT_EQ(final_record.step, 11);
  EXPECT_EQ(final_record.examples, 1100);
  EXPECT_DOUBLE_EQ(final_record.epochs, 1100.0 / static_cast<double>(fashion_mnist().train.size()));
  EXPECT_TRUE(final_record.final);
  EXPECT_EQ(records, 12);  // the start, then every planned step / 10 = 1 step
}

// Bad input gives one line on stderr and a non-zero exit, never a crash.
TEST(SieveTrain, BadInputGivesOneReadableLine) {
  const std::string bin = SIEVE_TRAIN_BINARY;
  const fs::path dir = fs::temp_directory_path() / "sieve-bad-data";
  fs::create_directories(dir);
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"})
    std::ofstream(dir / name) << "not an idx file";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"--batch 256 --presample 128 --iterations 1", "exceeds --presample"},
      {"--sampler magic --iterations 1", "magic"},
      {"--model mlp:abc --iterations 1", "mlp:abc"},
      {"--data fashion-mnist:" + dir.string() + " --iterations 1", "train-images-idx3-ubyte"},
      {"--data cifar7 --iterations 1", "cifar7"},
      {"--device cuda:9 --iterations 1", "cuda:9"},
  };
  for (const Case& k : cases) {
    const Command c = run_command(bin + " " + k.args);
    EXPECT_NE(c.status, 0) << k.args;
    EXPECT_EQ(line_count(c.output), 1u) << k.args << "\n" << c.output;
    EXPECT_NE(c.output.find(k.expect), std::string::npos) << k.args << "\n" << c.output;
    EXPECT_NE(c.output.find("error"), std::string::npos) << c.output;
  }
  const Command unknown = run_command(bin + " --no-such-flag");
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.output.find("no-such-flag"), std::string::npos) << unknown.output;
  fs::remove_all(dir);
}
#endif

#ifdef SIEVE_BENCH_BINARY
TEST(SieveBench, PrintsItsTableOnTheCpu) {
  const Command c = run_command(std::string(SIEVE_BENCH_BINARY) + " --device cpu --repeats 2 --warmup 1");
  ASSERT_EQ(c.status, 0) << c.output;
  for (const char* row : {"upper_bound_scores", "sample_with_replacement", "gather_batch", "train_step uniform",
                          "train_step upper-bound"})
    EXPECT_NE(c.output.find(row), std::string::npos) << row << "\n" << c.output;
}
#endif

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

// A run saved at step 6 and resumed gives bit-identical weights to the same run done in one go (CPU): model,
// batch-norm statistics, momentum, the importance sampler's τ and generators, and the augmentation generator.
TEST(Checkpoint, ResumedRunIsBitIdenticalOnTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const fs::path file = fs::temp_directory_path() / "sieve-resume-test.safetensors";
  TrainOptions o;
  o.model = "cnn";
  o.sampler = "upper-bound";
  o.selection.batch = 16;
  o.selection.presample = 48;
  o.selection.tau_th = 1.0f;  // importance sampling from the second step on
  o.augment = true;
  o.schedule = "step";
  o.milestones = {8};
  o.iterations = 12;
  o.eval_every = 12;
  o.train_eval_size = 100;
  o.seed = 5;
  DataSplits small = fashion_mnist();
  Generator g(1);
  small.test = small.test.subset(randint({100}, small.test.size(), g));

  Trainer straight(o, small, Device::cpu());
  straight.run([](const EvalRecord&) {});

  TrainOptions first = o;
  first.iterations = 6;
  first.eval_every = 6;
  first.checkpoint = file.string();
  Trainer a(first, small, Device::cpu());
  a.run([](const EvalRecord&) {});
  Trainer b(o, small, Device::cpu());
  b.resume(file.string());
  EXPECT_EQ(b.steps(), 6);
  b.run([](const EvalRecord&) {});

  const auto expected = straight.model().named_parameters();
  const auto got = b.model().named_parameters();
  ASSERT_EQ(expected.size(), got.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(got[i].second.to_vector<float>(), expected[i].second.to_vector<float>()) << expected[i].first;
  const auto eb = straight.model().named_buffers(), gb = b.model().named_buffers();
  for (size_t i = 0; i < eb.size(); ++i)
    EXPECT_EQ(gb[i].second.to_vector<float>(), eb[i].second.to_vector<float>()) << eb[i].first;
  fs::remove(file);
}

TEST(Checkpoint, InitFromWithResetHeadKeepsTheBodyAndANewHead) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const fs::path file = fs::temp_directory_path() / "sieve-init-test.safetensors";
  TrainOptions o;
  o.sampler = "uniform";
  o.iterations = 3;
  o.eval_every = 3;
  o.train_eval_size = 100;
  o.checkpoint = file.string();
  Trainer a(o, fashion_mnist(), Device::cpu());
  a.run([](const EvalRecord&) {});
  TrainOptions fresh = o;
  fresh.seed = 9;
  fresh.checkpoint.clear();
  Trainer b(fresh, fashion_mnist(), Device::cpu());
  const auto head_before = b.model().named_parameters().back().second.to_vector<float>();
  b.init_from(file.string(), /*reset_head=*/true);
  const auto pa = a.model().named_parameters(), pb = b.model().named_parameters();
  EXPECT_EQ(pb.front().second.to_vector<float>(), pa.front().second.to_vector<float>());  // body loaded
  EXPECT_EQ(pb.back().second.to_vector<float>(), head_before);                            // head kept fresh
  TrainOptions other = fresh;
  other.model = "mlp:32";
  Trainer c(other, fashion_mnist(), Device::cpu());
  EXPECT_TRUE(testing::throws_error([&] { c.resume(file.string()); }, {file.string(), "model mlp", "mlp:32"}));
  fs::remove(file);
}

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

// A Wide-ResNet trains end to end on the CPU at small size, with augmentation and importance sampling on.
TEST(EndToEnd, SmallWideResNetTrainsOnTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TrainOptions o;
  o.model = "wrn-10-1";
  o.sampler = "upper-bound";
  o.selection.batch = 32;
  o.selection.presample = 96;
  o.selection.tau_th = 0.5f;  // tau >= 1 always; with a_tau = 0.5 the smoothed tau passes 0.5 after one step
  o.selection.tau_ema = 0.5f;
  o.augment = true;
  o.sgd = {0.05f, 0.9f, 5e-4f, true};
  o.schedule = "constant";
  o.iterations = 60;
  o.eval_every = 60;
  o.train_eval_size = 500;
  DataSplits small = fashion_mnist();
  Generator g(2);
  small.test = small.test.subset(randint({500}, small.test.size(), g));
  Trainer trainer(o, small, Device::cpu());
  std::vector<EvalRecord> records;
  trainer.run([&](const EvalRecord& r) { records.push_back(r); });
  ASSERT_EQ(records.size(), 2u);
  EXPECT_LT(records.back().train_loss, 0.6 * records.front().train_loss);
  EXPECT_GT(records.back().test_accuracy, 0.35);  // 60 steps of 32 examples, from 10% (chance)
  EXPECT_GT(records.back().importance_fraction, 0.9);
}

}  // namespace
}  // namespace sieve

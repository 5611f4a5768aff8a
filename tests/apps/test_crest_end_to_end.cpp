// CREST end to end on the CPU (Debian's dataset-fashion-mnist): the Trainer trains the small CNN with --sampler crest
// and resumes it exactly, and sieve-train takes the CREST flags and writes the records every sampler writes.
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "apps/trainer.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::have_fashion_mnist;

// 2000 training and 300 test examples of Fashion-MNIST: enough for a coreset to be a choice, small enough for seconds.
DataSplits small_fashion_mnist() { return testing::fashion_mnist_subset(2000, 300, 4); }

TrainOptions crest_run() {
  TrainOptions o;
  o.model = "cnn";
  o.sampler = "crest";
  o.selection.batch = 32;
  o.selection.crest.subsets = 2;
  o.selection.crest.subset_size = 96;
  o.selection.crest.subsets_mul = 1.f;  // P = T1: keeps the scoring of a short CPU run small (the reference: 5 T1)
  o.selection.crest.warmup_epochs = 0.f;  // select from the first step
  o.sgd = {0.05f, 0.9f, 0.f, false};
  o.iterations = 24;
  o.eval_every = 24;
  o.train_eval_size = 500;
  o.seed = 6;
  return o;
}

std::map<std::string, double> stats_of(Trainer& t) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : t.selector().stats()) out[k] = v;
  return out;
}

TEST(CrestEndToEnd, SmallCnnTrainsOnCoresetsOnTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const DataSplits data = small_fashion_mnist();
  Trainer trainer(crest_run(), data, Device::cpu());
  std::vector<EvalRecord> records;
  trainer.run([&](const EvalRecord& r) { records.push_back(r); });
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records.back().sampler, "crest");
  EXPECT_EQ(records.back().examples, 24 * 32);
  EXPECT_LT(records.back().train_loss, 0.8 * records.front().train_loss);
  EXPECT_GT(records.back().test_accuracy, 0.4);  // 40 steps of 32, from 10% (chance)
  const auto st = stats_of(trainer);
  EXPECT_GE(st.at("crest_selections"), 1);
  EXPECT_GT(st.at("crest_checks"), 0);
  EXPECT_GE(st.at("crest_gradient_evals"), 4);
  // Scored examples: every selection scores P r candidates and every check the P r of the last selection, P >= 1.
  EXPECT_GE(records.back().scored, static_cast<int64_t>(st.at("crest_selections") + st.at("crest_checks")) * 96);
}

TEST(CrestEndToEnd, ResumedRunIsBitIdentical) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const DataSplits data = small_fashion_mnist();
  testing::TempDir dir;
  TrainOptions o = crest_run();
  o.iterations = 8;
  o.eval_every = 8;
  o.train_eval_size = 100;
  Trainer straight(o, data, Device::cpu());
  straight.run([](const EvalRecord&) {});

  TrainOptions first = o;
  first.iterations = 4;
  first.eval_every = 4;
  first.checkpoint = dir.file("crest.safetensors");
  Trainer a(first, data, Device::cpu());
  a.run([](const EvalRecord&) {});
  Trainer b(o, data, Device::cpu());
  b.resume(first.checkpoint);
  b.run([](const EvalRecord&) {});
  const auto expected = straight.model().named_parameters(), got = b.model().named_parameters();
  ASSERT_EQ(expected.size(), got.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(got[i].second.to_vector<float>(), expected[i].second.to_vector<float>()) << expected[i].first;
  EXPECT_EQ(stats_of(b), stats_of(straight));
}

TEST(CrestEndToEnd, SieveTrainTakesTheCrestFlags) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  const std::string log = dir.file("crest.jsonl");
  const std::string command = std::string(SIEVE_TRAIN_BINARY) +
                              " --device cpu --sampler crest --iterations 20 --eval-every 10 --crest-subsets 2"
                              " --crest-subset-size 256 --crest-tau 0.2 --crest-warmup-epochs 0 --drop-learned --drop-interval 10 --log " +
                              log;
  const testing::CommandResult run = testing::run_command(command);
  ASSERT_EQ(run.status, 0) << run.output;
  std::ifstream in(log);
  std::string line;
  int records = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* key : {"sampler", "step", "time_s", "train_loss", "test_loss", "test_accuracy", "tau",
                            "importance_on", "lr", "examples", "scored"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    EXPECT_EQ(j["sampler"], "crest");
    ++records;
  }
  EXPECT_EQ(records, 3);  // the start, step 10, step 20 (final)
}

}  // namespace
}  // namespace sieve

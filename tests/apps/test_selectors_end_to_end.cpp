// SRS, random-subset, online batch selection, InfoBatch, selective backprop and history-score importance sampling in
// the real training loop on Fashion-MNIST (CPU): runs complete and learn, log the same records as the other samplers
// (with their selection time), write the per-example dump, resume bit-identically, and sieve-train takes their flags.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::have_fashion_mnist;

// 3000 training and 500 test examples: a small data set on which an epoch is a few dozen steps.
const DataSplits& small_fashion_mnist() {
  static const DataSplits data = testing::fashion_mnist_subset(3000, 500, 21);
  return data;
}

TrainOptions small_run(const std::string& sampler, const std::string& model) {
  TrainOptions o;
  o.model = model;
  o.sampler = sampler;
  o.selection.batch = 64;
  o.selection.subset_ratio = 0.5;       // srs / random-subset: epochs of 1500 examples, 24 steps
  o.selection.resort_every = 10;        // online-batch
  o.selection.recompute_every = 1;      // online-batch: every 47 steps, all 3000 losses again
  o.iterations = 120;
  o.eval_every = 60;
  o.train_eval_size = 500;
  o.schedule = "constant";
  o.seed = 4;
  return o;
}

using testing::stat;

TEST(SelectorsEndToEnd, MlpTrainsWithEachSelectorAndLogsRecords) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  for (const char* sampler : {"srs", "random-subset", "online-batch"}) {
    Trainer trainer(small_run(sampler, "mlp:128"), small_fashion_mnist(), Device::cpu());
    std::vector<EvalRecord> records;
    const EvalRecord last = trainer.run([&](const EvalRecord& r) { records.push_back(r); });
    ASSERT_EQ(records.size(), 3u) << sampler;  // the start, step 60, step 120
    EXPECT_EQ(last.sampler, sampler);
    EXPECT_TRUE(last.final);
    EXPECT_EQ(last.step, 120);
    // online-batch: 64 a step; an epoch of srs and random-subset is 1500 = 23 * 64 + 28 in 24 steps, 5 in 120.
    EXPECT_EQ(last.examples, std::string(sampler) == "online-batch" ? 120 * 64 : 5 * 1500) << sampler;
    EXPECT_LT(last.train_loss, 0.8 * records.front().train_loss) << sampler;
    EXPECT_GT(last.test_accuracy, 0.6) << sampler;
    const nlohmann::json j = nlohmann::json::parse(to_json_line(last));
    for (const char* key : {"step", "time_s", "train_loss", "test_loss", "test_accuracy", "examples", "scored"})
      EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_GT(stat(trainer.selector(), "coverage"), 0.5) << sampler;
    if (std::string(sampler) == "online-batch") EXPECT_EQ(last.scored, 2 * 3000);  // recomputed at steps 47 and 94
    else EXPECT_EQ(last.scored, 0);
  }
}

// The small CNN trains with online batch selection on the CPU path (a few steps; the MLP test measures learning).
TEST(SelectorsEndToEnd, CnnTrainsWithOnlineBatchSelection) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TrainOptions o = small_run("online-batch", "cnn");
  o.iterations = 30;
  o.eval_every = 30;
  Trainer trainer(o, small_fashion_mnist(), Device::cpu());
  std::vector<EvalRecord> records;
  const EvalRecord last = trainer.run([&](const EvalRecord& r) { records.push_back(r); });
  ASSERT_EQ(records.size(), 2u);
  EXPECT_LT(last.train_loss, records.front().train_loss);
  EXPECT_GT(stat(trainer.selector(), "coverage"), 0.3);
}

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
    TrainOptions o = small_run(sampler, "mlp:128");
    o.selection.history_refresh = 10;  // history samplers: a new distribution every 10 steps
    o.selection.sb_history = 256;
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

// Through the Trainer's checkpoints: a run saved at step 6 and resumed ends with the same weights as one run straight
// through, for each selector (its tables, epoch subsets, coverage flags and generator are in the checkpoint); InfoBatch
// prunes its second epoch (step 12 on) from scores saved in epoch 1.
TEST(SelectorsEndToEnd, ResumedRunsAreBitIdenticalOnTheCpu) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  for (const char* sampler :
       {"srs", "random-subset", "online-batch", "infobatch", "selective-backprop", "upper-bound-history"}) {
    TrainOptions o = small_run(sampler, "mlp:32");
    o.selection.batch = 250;                // online-batch: 12 steps an epoch, recomputation at step 12
    o.selection.subset_ratio = 0.3;         // srs / random-subset: 900 = 3 * 250 + 150, epochs of 4 steps
    o.selection.resort_every = 4;
    o.selection.history_refresh = 4;        // upper-bound-history: new distributions at steps 4, 8 and 12
    o.dump_selection = dir.file("dump.csv");  // its per-example counts go through the checkpoint too
    o.iterations = 16;
    o.eval_every = 16;
    Trainer straight(o, small_fashion_mnist(), Device::cpu());
    straight.run([](const EvalRecord&) {});
    TrainOptions first = o;
    first.iterations = 6;
    first.eval_every = 6;
    first.checkpoint = dir.file(std::string(sampler) + ".safetensors");
    Trainer a(first, small_fashion_mnist(), Device::cpu());
    a.run([](const EvalRecord&) {});
    Trainer b(o, small_fashion_mnist(), Device::cpu());
    b.resume(first.checkpoint);
    const EvalRecord last = b.run([](const EvalRecord&) {});
    EXPECT_EQ(last.step, 16);
    const auto expected = straight.model().named_parameters(), got = b.model().named_parameters();
    ASSERT_EQ(expected.size(), got.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_EQ(got[i].second.to_vector<float>(), expected[i].second.to_vector<float>())
          << sampler << " " << expected[i].first;
    EXPECT_EQ(b.selector().stats(), straight.selector().stats()) << sampler;
  }
}

#ifdef SIEVE_TRAIN_BINARY
using Command = testing::CommandResult;
using testing::run_command;

TEST(SieveTrain, RunsTheNewSamplersWithTheirFlags) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  const std::string log = dir.file("log.jsonl");
  const Command c = run_command(std::string(SIEVE_TRAIN_BINARY) +
                                " --device cpu --model mlp:64 --sampler srs,random-subset,online-batch --batch 512"
                                " --srs-ratio 0.2 --selection-pressure 50 --resort-every 5 --recompute-every 2"
                                " --iterations 20 --eval-every 10 --log " + log);
  ASSERT_EQ(c.status, 0) << c.output;  // --batch 512 above the default --presample 256: only IS needs b <= B
  std::ifstream in(log);
  std::string line;
  std::vector<std::string> samplers;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* key : {"step", "time_s", "train_loss", "test_loss", "test_accuracy", "tau", "examples"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    samplers.push_back(j["sampler"].get<std::string>());
  }
  EXPECT_EQ(samplers, (std::vector<std::string>{"srs", "srs", "srs", "random-subset", "random-subset",
                                                "random-subset", "online-batch", "online-batch", "online-batch"}));
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {"--sampler srs --srs-ratio 0", "--srs-ratio"},
           {"--sampler random-subset --srs-ratio 1.5", "(0, 1]"},
           {"--sampler online-batch --selection-pressure 0.5", "--selection-pressure"},
           {"--sampler online-batch --resort-every 0", "--resort-every"}}) {
    const Command bad = run_command(std::string(SIEVE_TRAIN_BINARY) + " " + args + " --iterations 1");
    EXPECT_NE(bad.status, 0) << args;
    EXPECT_NE(bad.output.find(expect), std::string::npos) << args << "\n" << bad.output;
    EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
  }
}

// The new flags from the command line: a run per selector completes, prints the selection share, and writes the dump;
// impossible values give one readable line before any data are loaded.
TEST(SieveTrain, TakesTheNewSelectorsFlags) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  testing::TempDir dir;
  const std::string bin = std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:64 --iterations 40 "
                          "--train-eval-size 500 --test-eval-size 500 --quiet ";
  const testing::CommandResult c = run_command(
      bin + "--sampler infobatch,selective-backprop,upper-bound --score-source history --prune-ratio 0.3 --anneal 0.5 "
            "--sb-history 512 --sb-beta 2 --score-smoothing 0.2 --history-refresh 5 --score-precision bf16 "
            "--dump-selection " + dir.file("dump.csv"));
  ASSERT_EQ(c.status, 0) << c.output;
  for (const char* text : {"infobatch", "selective-backprop", "upper-bound-history", "selection share of time"})
    EXPECT_NE(c.output.find(text), std::string::npos) << text << "\n" << c.output;
  for (const char* name : {"dump-infobatch.csv", "dump-selective-backprop.csv", "dump-upper-bound-history.csv"})
    EXPECT_TRUE(std::ifstream(dir.file(name)).good()) << name;
  const testing::CommandResult stale = run_command(bin + "--sampler selective-backprop --sb-stale");
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
    const testing::CommandResult bad = run_command(bin + k.args);
    EXPECT_NE(bad.status, 0) << k.args;
    EXPECT_NE(bad.output.find("sieve-train: error: "), std::string::npos) << k.args << "\n" << bad.output;
    EXPECT_NE(bad.output.find(k.expect), std::string::npos) << k.args << "\n" << bad.output;
  }
}

TEST(SieveBench, TimesTheSelectorOperations) {
  const Command c = run_command(std::string(SIEVE_BENCH_BINARY) +
                                " --device cpu --repeats 2 --warmup 1 --quick --filter 'N 60000'");
  ASSERT_EQ(c.status, 0) << c.output;
  for (const char* row : {"srs_draw", "random_permutation", "mark_seen", "online_batch resort", "online_batch draw",
                          "scatter_losses"})
    EXPECT_NE(c.output.find(row), std::string::npos) << row << "\n" << c.output;
}
#endif

}  // namespace
}  // namespace sieve

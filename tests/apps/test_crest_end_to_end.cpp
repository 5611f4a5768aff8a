// CREST end to end on the CPU (Debian's dataset-fashion-mnist): the Trainer trains the small CNN with --sampler crest
// and resumes it exactly, and sieve-train takes the CREST flags and writes the records every sampler writes.
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>

#include "apps/trainer.h"
#include "core/autograd.h"
#include "core/ops/softmax.h"
#include "data/batch.h"
#include "sampling/crest.h"
#include "sampling/loss_history.h"
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

// Note [scoring mode] (sampling/importance.h): the small CNN has batch norm, so its output depends on the mode (batch
// statistics in training, running statistics in evaluation). The losses CREST scores and records at its first
// selection are those of the evaluation-mode forward pass of the model as it was, not of a training-mode pass.
TEST(CrestEndToEnd, ScoresInEvaluationMode) {
  const Device cpu = Device::cpu();
  const int64_t n = 200;
  const DataSplits data{testing::random_dataset(n, 1, 28, 28, 21, cpu), testing::random_dataset(40, 1, 28, 28, 22, cpu)};
  TrainOptions o = crest_run();
  o.selection.crest.drop_learned = true;  // CREST keeps the losses it scores in its ring
  Trainer trainer(o, data, cpu), twin(o, data, cpu);  // the same initial model: the twin's gives the training mode
  std::vector<int32_t> all(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  const Tensor idx = Tensor::from_vector(all, {n});
  const Tensor x = gather_batch(data.train, idx), y = gather_labels(data.train, idx);
  std::vector<float> eval_loss, train_loss;
  {
    NoGradGuard no_grad;
    trainer.model().eval();
    eval_loss = cross_entropy(trainer.model().forward(x), y).to_vector<float>();
    trainer.model().train();
    train_loss = cross_entropy(twin.model().forward(x), y).to_vector<float>();
  }
  trainer.step();  // warm-up 0: the first selection scores with the initial model, then the step trains
  EXPECT_TRUE(trainer.model().is_training()) << "the scoring pass restores training mode";
  const auto* crest = dynamic_cast<const CrestSelector*>(&trainer.selector());
  ASSERT_NE(crest, nullptr);
  ASSERT_EQ(crest->selections(), 1);
  const std::vector<float> ring = crest->loss_history()->state()[0].second.to_vector<float>();
  const int window = crest->loss_history()->window();
  // Evaluation mode is per example, so only the order of float sums inside a differently shaped batch can differ.
  const float atol = 1e-5f, rtol = 1e-4f;
  int recorded = 0;
  double mode_gap = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = ring[static_cast<size_t>(i * window)];  // slot 0: CREST's epoch 0
    if (std::isnan(v)) continue;
    ++recorded;
    EXPECT_NEAR(v, eval_loss[i], atol + rtol * eval_loss[i]) << "example " << i;
    mode_gap += std::abs(v - train_loss[i]);
  }
  EXPECT_GE(recorded, 100) << "two subsets of 10 per class, about 20 per class";
  // The training-mode losses are far from the recorded ones: the test can tell the modes apart.
  EXPECT_GT(mode_gap / recorded, 1000.0 * (atol + rtol));
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

// Bring your own data (Note [npz data sets] in data/npz_dataset.cpp): an .npz file trains with sieve-train
// --data npz:FILE, resumes, evaluates with sieve-eval to the training log's numbers, and starts a new run through
// --init-from.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "tests/data/npz_writer.h"
#include "tests/test_util.h"

#ifdef SIEVE_EVAL_BINARY
namespace sieve {
namespace {

using namespace npz_test;
using testing::run_command;
using testing::TempDir;

std::vector<nlohmann::json> records(const std::string& log) {
  std::vector<nlohmann::json> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// sieve-train on `data` with a small MLP on the CPU, evaluating the whole test split (--test-eval-size 0).
std::string train(const std::string& data) {
  return std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:32 --sampler uniform --batch 16 "
         "--test-eval-size 0 --train-eval-size 100 --quiet --data npz:" + data;
}

nlohmann::json evaluate(const std::string& checkpoint, const std::string& data) {
  const testing::CommandResult e =
      run_command(std::string(SIEVE_EVAL_BINARY) + " " + checkpoint + " --data npz:" + data + " --device cpu --json");
  EXPECT_EQ(e.status, 0) << e.output;
  return e.status == 0 ? nlohmann::json::parse(e.output) : nlohmann::json::object();
}

// Trains, checkpoints, evaluates to the log's final numbers, refuses to guess the file, resumes and evaluates again.
TEST(NpzEndToEnd, TrainsResumesAndEvaluates) {
  TempDir dir;
  const std::string data = dir.file("mine.npz"), checkpoint = dir.file("run.safetensors");
  write_synthetic(data, 4, 1);
  const testing::CommandResult first =
      run_command(train(data) + " --iterations 6 --checkpoint " + checkpoint + " --log " + dir.file("first.jsonl"));
  ASSERT_EQ(first.status, 0) << first.output;
  const CheckpointState state = load_checkpoint(checkpoint);
  EXPECT_EQ(state.get_string("data.name"), "npz");
  EXPECT_EQ(state.get_string("data.classes"), "4");
  EXPECT_EQ(state.get_string("data.shape"), "3,8,8");

  const nlohmann::json final_first = records(dir.file("first.jsonl")).back();
  ASSERT_TRUE(final_first.value("final", false));
  nlohmann::json e = evaluate(checkpoint, data);
  EXPECT_EQ(e.value("loss", -1.0), final_first["test_loss"].get<double>());
  EXPECT_EQ(e.value("accuracy", -1.0), final_first["test_accuracy"].get<double>());
  EXPECT_EQ(e.value("examples", int64_t{0}), 80);

  // Without --data, the file cannot be found from the checkpoint: one line says what to give.
  const testing::CommandResult bare =
      run_command(std::string(SIEVE_EVAL_BINARY) + " " + checkpoint + " --device cpu --json");
  EXPECT_EQ(bare.status, 1) << bare.output;
  EXPECT_EQ(std::count(bare.output.begin(), bare.output.end(), '\n'), 1) << bare.output;
  EXPECT_NE(bare.output.find("sieve-eval: error: " + checkpoint + ": a model trained on an .npz file"),
            std::string::npos)
      << bare.output;
  EXPECT_NE(bare.output.find("--data npz:FILE"), std::string::npos) << bare.output;

  const testing::CommandResult resumed = run_command(train(data) + " --iterations 10 --checkpoint " + checkpoint +
                                                     " --resume " + checkpoint + " --log " + dir.file("resumed.jsonl"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_EQ(load_checkpoint(checkpoint).get_int("step"), 10);
  const std::vector<nlohmann::json> after = records(dir.file("resumed.jsonl"));
  ASSERT_FALSE(after.empty());
  EXPECT_GT(after.front()["step"].get<int64_t>(), 6) << "a resumed run continues from its checkpoint's step";
  e = evaluate(checkpoint, data);
  EXPECT_EQ(e.value("loss", -1.0), after.back()["test_loss"].get<double>());
  EXPECT_NE(e.value("loss", -1.0), final_first["test_loss"].get<double>()) << "the resumed steps changed nothing";

  // Other data are refused, by their normalisation and by their class count, for a resume and an evaluation.
  write_synthetic(dir.file("other.npz"), 4, 2);
  write_synthetic(dir.file("three.npz"), 3, 1);
  using Case = std::pair<std::string, std::string>;
  for (const auto& [file, expect] :
       {Case{dir.file("other.npz"), "another version of npz"}, Case{dir.file("three.npz"), "have 3 classes"}}) {
    const testing::CommandResult r = run_command(train(file) + " --iterations 12 --resume " + checkpoint);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find(expect), std::string::npos) << r.output;
    const testing::CommandResult v =
        run_command(std::string(SIEVE_EVAL_BINARY) + " " + checkpoint + " --data npz:" + file + " --device cpu");
    EXPECT_EQ(v.status, 1) << v.output;
    EXPECT_NE(v.output.find(expect), std::string::npos) << v.output;
  }
}

// --init-from starts a new run from an npz-trained checkpoint: its step-0 record evaluates the loaded weights, the
// very numbers sieve-eval gives; with --reset-head it moves to an npz set of another class count.
TEST(NpzEndToEnd, InitFromStartsWhereTheCheckpointEnded) {
  TempDir dir;
  const std::string data = dir.file("mine.npz"), checkpoint = dir.file("run.safetensors");
  write_synthetic(data, 4, 1);
  const testing::CommandResult first = run_command(train(data) + " --iterations 6 --checkpoint " + checkpoint);
  ASSERT_EQ(first.status, 0) << first.output;
  const nlohmann::json e = evaluate(checkpoint, data);

  const testing::CommandResult tuned = run_command(train(data) + " --iterations 2 --seed 5 --init-from " +
                                                   checkpoint + " --log " + dir.file("tuned.jsonl"));
  ASSERT_EQ(tuned.status, 0) << tuned.output;
  const nlohmann::json start = records(dir.file("tuned.jsonl")).front();
  EXPECT_EQ(start["step"].get<int64_t>(), 0);
  EXPECT_EQ(start["test_loss"].get<double>(), e.value("loss", -1.0));

  // A fresh run with the same seed starts elsewhere: the step-0 equality above is the checkpoint's doing.
  const testing::CommandResult fresh =
      run_command(train(data) + " --iterations 2 --seed 5 --log " + dir.file("fresh.jsonl"));
  ASSERT_EQ(fresh.status, 0) << fresh.output;
  EXPECT_NE(records(dir.file("fresh.jsonl")).front()["test_loss"].get<double>(), e.value("loss", -1.0));

  write_synthetic(dir.file("three.npz"), 3, 7);
  const std::string moved_checkpoint = dir.file("three.safetensors");
  const testing::CommandResult moved = run_command(train(dir.file("three.npz")) + " --iterations 2 --init-from " +
                                                   checkpoint + " --reset-head --checkpoint " + moved_checkpoint);
  ASSERT_EQ(moved.status, 0) << moved.output;
  EXPECT_EQ(load_checkpoint(moved_checkpoint).get_string("data.classes"), "3");
}

}  // namespace
}  // namespace sieve
#endif

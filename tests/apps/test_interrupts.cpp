// Long runs on shared machines (Note [interrupts] and Note [run folders] in apps/sieve_train.cpp): a run stopped by
// SIGTERM checkpoints the step it finished and, requeued with the same command (--resume auto), ends with the very
// weights of a run never stopped; --resume auto starts afresh without a checkpoint and refuses another
// configuration's; a multi-sampler run stops after the running sampler; a requeued comparison runs only what is
// missing.
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "apps/trainer.h"
#include "core/checkpoint.h"
#include "tests/data/npz_writer.h"
#include "tests/test_util.h"

#ifdef SIEVE_TRAIN_BINARY
namespace sieve {
namespace {

using testing::CommandResult;
using testing::run_command;
using testing::TempDir;

std::vector<nlohmann::json> log_records(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Starts `command` (its output to `output`), waits until `ready` holds, sends `signal` and returns the exit status
// (minus the number of the signal that killed it, if one did).
int run_and_signal(const std::string& command, const std::string& output, int signal,
                   const std::function<bool()>& ready) {
  const std::string shell = "exec " + command + " > " + output + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", shell.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, signal);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Interrupts : public ::testing::Test {
 protected:
  void SetUp() override { npz_test::write_synthetic(data_, 4, 5); }
  std::string train(const std::string& args) const {
    return std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:32 --data npz:" + data_ +
           " --train-eval-size 50 --test-eval-size 50 --quiet " + args;
  }
  TempDir dir_;
  std::string data_ = dir_.file("data.npz");
};

// SIGTERM in the middle: exit 143, the checkpoint of the last step, an "interrupted" record; the same command again
// continues to the weights, optimizer state and selector state of a run never stopped, and the log goes on.
TEST_F(Interrupts, SignalledRunResumesToTheUninterruptedRun) {
  const std::string args = "--sampler upper-bound --tau-th 1 --tau-ema 0 --augment --batch 8 --presample 16 "
                           "--iterations 20000 --eval-every 500 --resume auto --run-dir ";
  const std::string straight = dir_.file("straight"), stopped = dir_.file("stopped");
  const CommandResult a = run_command(train(args + straight));
  ASSERT_EQ(a.status, 0) << a.output;

  const std::string log = stopped + "/log.jsonl";
  const int status = run_and_signal(train(args + stopped), dir_.file("stopped.txt"), SIGTERM, [&] {
    std::ifstream in(log);
    return std::count(std::istreambuf_iterator<char>(in), {}, '\n') >= 2;  // step 0 and step 500 evaluated
  });
  const std::string said = read_text(dir_.file("stopped.txt"));
  ASSERT_EQ(status, 128 + SIGTERM) << said;
  const std::vector<nlohmann::json> before = log_records(log);
  ASSERT_FALSE(before.empty());
  const nlohmann::json& last = before.back();
  EXPECT_TRUE(last.value("interrupted", false)) << last.dump();
  EXPECT_EQ(last["signal"], "SIGTERM");
  EXPECT_FALSE(last.contains("final"));
  const int64_t step = last["step"];
  ASSERT_GT(step, 500);
  ASSERT_LT(step, 20000) << "the run ended before the signal: make it longer";
  const std::string checkpoint = stopped + "/checkpoints/step-" + std::to_string(step) + ".safetensors";
  EXPECT_TRUE(std::filesystem::exists(checkpoint));
  EXPECT_NE(said.find("sieve-train: SIGTERM after step " + std::to_string(step) + ": checkpoint " + checkpoint +
                      "; continue with --resume auto"),
            std::string::npos)
      << said;

  const CommandResult requeued = run_command(train(args + stopped));
  ASSERT_EQ(requeued.status, 0) << requeued.output;
  const CheckpointState x = load_checkpoint(straight + "/checkpoints/step-20000.safetensors");
  const CheckpointState y = load_checkpoint(stopped + "/checkpoints/step-20000.safetensors");
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    EXPECT_EQ(x.tensors[i].first, y.tensors[i].first);
    const Tensor& t = x.tensors[i].second;
    ASSERT_EQ(t.nbytes(), y.tensors[i].second.nbytes()) << x.tensors[i].first;
    EXPECT_EQ(0, std::memcmp(t.raw_data(), y.tensors[i].second.raw_data(), t.nbytes())) << x.tensors[i].first;
  }
  for (const std::string key : {"step", "examples", "scored", "rng.augment", "selector.generator", "selector.tau"})
    if (x.has(key)) EXPECT_EQ(x.get_string(key), y.get_string(key)) << key;
  // Two checkpoints kept (--keep-checkpoints 2): the last and the one before.
  EXPECT_EQ(list_step_checkpoints(stopped + "/checkpoints").size(), 2u);
  // The log goes on from the checkpoint: steps never go back, and its evaluations are those of the straight run.
  const std::vector<nlohmann::json> after = log_records(log), reference = log_records(straight + "/log.jsonl");
  int64_t previous = -1;
  std::vector<nlohmann::json> evaluations;
  for (const auto& r : after) {
    EXPECT_GE(r["step"].get<int64_t>(), previous) << r.dump();
    previous = r["step"];
    if (!r.value("interrupted", false)) evaluations.push_back(r);
  }
  ASSERT_EQ(evaluations.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i) {
    EXPECT_EQ(evaluations[i]["step"], reference[i]["step"]);
    EXPECT_EQ(evaluations[i]["train_loss"], reference[i]["train_loss"]) << "at step " << reference[i]["step"];
  }
  EXPECT_TRUE(after.back().value("final", false));
  EXPECT_TRUE(std::filesystem::exists(stopped + "/options.json"));
  EXPECT_TRUE(std::filesystem::exists(stopped + "/summary.txt"));
  const nlohmann::json options = nlohmann::json::parse(read_text(stopped + "/options.json"));
  EXPECT_EQ(options["batch"], 8);
  EXPECT_EQ(options["model"], "mlp:32");
  EXPECT_TRUE(options.contains("sieve_commit"));
}

// --resume auto with --checkpoint FILE: a fresh start while FILE is absent, a continuation once it exists, and a
// one-line refusal of a checkpoint of another configuration.
TEST_F(Interrupts, ResumeAutoStartsAfreshContinuesAndRefusesAnotherRun) {
  const std::string checkpoint = dir_.file("run.safetensors"), log = dir_.file("run.jsonl");
  const std::string args = "--sampler uniform --resume auto --checkpoint " + checkpoint + " --log " + log;
  const CommandResult first = run_command(train(args + " --iterations 30"));
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_EQ(log_records(log).front()["step"], 0);
  EXPECT_EQ(load_checkpoint(checkpoint).get_int("step"), 30);
  const CommandResult second = run_command(train(args + " --iterations 60"));
  ASSERT_EQ(second.status, 0) << second.output;
  EXPECT_EQ(load_checkpoint(checkpoint).get_int("step"), 60);
  const std::vector<nlohmann::json> records = log_records(log);
  EXPECT_EQ(records.front()["step"], 0);
  EXPECT_EQ(records.back()["step"], 60);
  const CommandResult other = run_command(train(args + " --iterations 90 --optimizer adam"));
  EXPECT_EQ(other.status, 1) << other.output;
  EXPECT_NE(other.output.find("a checkpoint of optimizer sgd, not of --optimizer adam"), std::string::npos)
      << other.output;
  const CommandResult no_file = run_command(train("--sampler uniform --resume auto --iterations 5"));
  EXPECT_EQ(no_file.status, 1);
  EXPECT_NE(no_file.output.find("--resume auto continues from --checkpoint FILE or --run-dir DIR"), std::string::npos)
      << no_file.output;
}

// SIGUSR1 during the first of two samplers: the second never starts, exit 128 + SIGUSR1, and with no checkpoint
// configured the line says so.
TEST_F(Interrupts, MultiSamplerRunStopsAfterTheRunningSampler) {
  const std::string log = dir_.file("multi.jsonl");
  const int status = run_and_signal(
      train("--sampler uniform,upper-bound --iterations 200000 --eval-every 500 --log " + log), dir_.file("multi.txt"),
      SIGUSR1, [&] {
        std::ifstream in(log);
        return std::count(std::istreambuf_iterator<char>(in), {}, '\n') >= 2;
      });
  const std::string said = read_text(dir_.file("multi.txt"));
  EXPECT_EQ(status, 128 + SIGUSR1) << said;
  EXPECT_NE(said.find("no checkpoint written (give --checkpoint FILE or --run-dir DIR)"), std::string::npos) << said;
  for (const auto& r : log_records(log)) EXPECT_EQ(r["sampler"], "uniform") << r.dump();
  EXPECT_EQ(log_records(log).back()["signal"], "SIGUSR1");
}

#ifdef SIEVE_COMPARE_SAMPLERS
// A comparison run again runs only the runs whose folder holds no final record.
TEST_F(Interrupts, RequeuedComparisonRunsOnlyTheMissingRuns) {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "python3 is not installed";
  const std::string out = dir_.file("sweep");
  const std::string command = std::string("python3 ") + SIEVE_COMPARE_SAMPLERS + " --sieve-train " +
                              SIEVE_TRAIN_BINARY + " --samplers uniform,srs --model mlp:16 --data npz:" + data_ +
                              " --example-budgets 400,800 --seeds 0 --out " + out +
                              " -- --quiet --train-eval-size 50 --test-eval-size 50 --batch 8";
  const CommandResult first = run_command(command);
  ASSERT_EQ(first.status, 0) << first.output;
  // One run lost its final record (stopped before its end), another its whole folder.
  const std::string cut = out + "/runs/srs-b800-s0/log.jsonl";
  std::vector<nlohmann::json> records = log_records(cut);
  ASSERT_TRUE(records.back().value("final", false));
  records.pop_back();
  {
    std::ofstream f(cut, std::ios::trunc);
    for (const auto& r : records) f << r.dump() << "\n";
  }
  std::filesystem::remove_all(out + "/runs/uniform-b400-s0");
  const CommandResult second = run_command(command);
  ASSERT_EQ(second.status, 0) << second.output;
  size_t skipped = 0, started = 0;
  for (size_t at = 0; (at = second.output.find("skip ", at)) != std::string::npos; ++at) ++skipped;
  for (size_t at = 0; (at = second.output.find("+ " SIEVE_TRAIN_BINARY, at)) != std::string::npos; ++at) ++started;
  EXPECT_EQ(skipped, 2u) << second.output;
  EXPECT_EQ(started, 2u) << second.output;
  EXPECT_TRUE(log_records(cut).back().value("final", false));
}
#endif

}  // namespace
}  // namespace sieve
#endif

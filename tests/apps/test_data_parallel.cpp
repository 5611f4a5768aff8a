// Data-parallel training under `mpirun -np 2` on the CPU (Note [data-parallel selection] in apps/trainer.cpp,
// Note [gradient buckets] in optim/distributed.h): two ranks with global selection train as one process with twice
// the batch and pre-sample; every selector runs on two ranks with either selection; checkpoints written by two
// ranks resume on two exactly and on one; a failing or diverging rank ends the run. Each test skips, saying why,
// where mpirun is absent (tests/mpi/run-mpi exits 77).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/distributed.h"
#include "tests/data/npz_writer.h"
#include "tests/test_util.h"

#if defined(SIEVE_TRAIN_BINARY) && defined(SIEVE_RUN_MPI)
namespace sieve {
namespace {

using testing::CommandResult;
using testing::run_command;
using testing::TempDir;

constexpr int kSkipped = 77;  // tests/mpi/run-mpi: mpirun is not installed

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override { npz_test::write_synthetic(data_, 4, 11); }

  // sieve-train on the synthetic data set with a small MLP (no batch norm) on the CPU; `processes` ranks under
  // mpirun, or one plain process for 0.
  CommandResult train(int processes, const std::string& args) {
    if (processes > 0 && !built_with_mpi()) return {kSkipped, "sieve was built without MPI: skipped"};
    const std::string bin = std::string(SIEVE_TRAIN_BINARY) +
                            " --device cpu --model mlp:32 --seed 3 --test-eval-size 0 --train-eval-size 100 "
                            "--quiet --data npz:" + data_ + " " + args;
    return run_command(processes == 0 ? bin : std::string(SIEVE_RUN_MPI) + " " + std::to_string(processes) + " " + bin);
  }

  // The largest difference between the model and optimizer tensors of two checkpoints (the selector's may differ
  // in layout: one selector of batch 2b, or one per rank).
  static double max_difference(const std::string& a, const std::string& b) {
    const CheckpointState x = load_checkpoint(a), y = load_checkpoint(b);
    double worst = 0;
    int compared = 0;
    for (const auto& [name, t] : x.tensors) {
      if (t.dtype() != DType::F32 || name.rfind("selector.", 0) == 0 || name.rfind("rank", 0) == 0) continue;
      const Tensor u = y.find(name);
      EXPECT_TRUE(u.defined()) << name << " is missing from " << b;
      if (!u.defined()) continue;
      const std::vector<float> p = t.to_vector<float>(), q = u.to_vector<float>();
      EXPECT_EQ(p.size(), q.size()) << name;
      for (size_t i = 0; i < std::min(p.size(), q.size()); ++i)
        worst = std::max(worst, static_cast<double>(std::abs(p[i] - q[i])));
      ++compared;
    }
    EXPECT_GE(compared, 4) << "no weights compared";
    return worst;
  }

  static std::vector<nlohmann::json> finals(const std::string& log) {
    std::vector<nlohmann::json> out;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.value("final", false)) out.push_back(j);
    }
    return out;
  }

  TempDir dir_;
  std::string data_ = dir_.file("data.npz");
};

#define SKIP_WITHOUT_MPIRUN(result)                                  \
  if ((result).status == kSkipped) GTEST_SKIP() << (result).output;

// The equivalence: batch b on each of two ranks with global selection is one process with batch 2b and
// pre-sample 2B, up to the order of floating-point sums. Importance sampling is forced on from the second step
// (τ_th 1 and no moving average: τ >= 1 always), so that its gathered scores decide the batches.
TEST_F(DataParallel, TwoRanksWithGlobalSelectionMatchOneProcessWithTwiceTheBatch) {
  for (const std::string sampler : {"uniform", "upper-bound"}) {
    SCOPED_TRACE(sampler);
    const std::string common = "--sampler " + sampler + " --iterations 30 --tau-th 1 --tau-ema 0 --lr 0.1 ";
    const CommandResult two = train(2, common + "--batch 8 --presample 16 --checkpoint " + dir_.file("two.st") +
                                           " --log " + dir_.file("two.jsonl"));
    SKIP_WITHOUT_MPIRUN(two);
    ASSERT_EQ(two.status, 0) << two.output;
    const CommandResult one = train(0, common + "--batch 16 --presample 32 --checkpoint " + dir_.file("one.st") +
                                           " --log " + dir_.file("one.jsonl"));
    ASSERT_EQ(one.status, 0) << one.output;
    EXPECT_LT(max_difference(dir_.file("two.st"), dir_.file("one.st")), 2e-5);
    const auto a = finals(dir_.file("two.jsonl")), b = finals(dir_.file("one.jsonl"));
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(a[0]["examples"], b[0]["examples"]);
    EXPECT_EQ(a[0]["scored"], b[0]["scored"]);
    EXPECT_NEAR(a[0]["train_loss"].get<double>(), b[0]["train_loss"].get<double>(), 1e-4);
    if (sampler == "upper-bound") {
      EXPECT_GT(a[0]["importance_fraction"].get<double>(), 0.5) << "importance sampling never switched on";
      EXPECT_EQ(a[0]["importance_fraction"], b[0]["importance_fraction"]);
    }
  }
}

// Every selector trains on two ranks with either selection, and the log has its final record.
TEST_F(DataParallel, EverySelectorRunsOnTwoRanks) {
  const std::string samplers =
      "uniform,loss,upper-bound,upper-bound-history,gradient-norm,srs,random-subset,online-batch,crest,infobatch,"
      "selective-backprop,selective-backprop-stale";
  for (const std::string selection : {"global", "local"}) {
    SCOPED_TRACE(selection);
    const std::string log = dir_.file(selection + ".jsonl");
    const CommandResult r = train(2, "--sampler " + samplers + " --selection " + selection +
                                         " --iterations 12 --batch 8 --presample 16 --tau-th 1 --tau-ema 0 --log " + log);
    SKIP_WITHOUT_MPIRUN(r);
    ASSERT_EQ(r.status, 0) << r.output;
    const auto records = finals(log);
    EXPECT_EQ(records.size(), 12u) << r.output;
    for (const auto& f : records) {
      EXPECT_EQ(f["step"], 12) << f.dump();
      EXPECT_TRUE(std::isfinite(f["train_loss"].get<double>())) << f.dump();
    }
  }
}

// A checkpoint written by two ranks resumes on two to the very weights of the uninterrupted run, and, with global
// selection, on one process with the same global batch to the same weights up to float sums. A checkpoint of local
// selection is refused on another number of processes, in one line.
TEST_F(DataParallel, CheckpointOfTwoRanksResumesOnTwoExactlyAndOnOne) {
  const std::string common = "--sampler upper-bound --tau-th 1 --tau-ema 0 --augment --lr 0.1 ";
  for (const std::string selection : {"global", "local"}) {
    SCOPED_TRACE(selection);
    const std::string args = common + "--batch 8 --presample 16 --selection " + selection + " ";
    const std::string straight = dir_.file(selection + "-straight.st"), half = dir_.file(selection + "-half.st"),
                      resumed = dir_.file(selection + "-resumed.st");
    const CommandResult a = train(2, args + "--iterations 20 --checkpoint " + straight);
    SKIP_WITHOUT_MPIRUN(a);
    ASSERT_EQ(a.status, 0) << a.output;
    const CommandResult b = train(2, args + "--iterations 10 --checkpoint " + half);
    ASSERT_EQ(b.status, 0) << b.output;
    std::filesystem::copy_file(half, resumed);
    const CommandResult c = train(2, args + "--iterations 20 --resume " + resumed + " --checkpoint " + resumed);
    ASSERT_EQ(c.status, 0) << c.output;
    EXPECT_EQ(max_difference(straight, resumed), 0.0);
    EXPECT_EQ(load_checkpoint(resumed).get_int("step"), 20);

    const std::string single = dir_.file(selection + "-single.st");
    std::filesystem::copy_file(half, single);
    const CommandResult d = train(0, common + "--batch 16 --presample 32 --iterations 20 --resume " + single +
                                         " --checkpoint " + single);
    if (selection == "global") {
      ASSERT_EQ(d.status, 0) << d.output;
      EXPECT_LT(max_difference(straight, single), 2e-5);
    } else {
      EXPECT_EQ(d.status, 1) << d.output;
      EXPECT_NE(d.output.find("a checkpoint of 2 process(es) with --selection local; resume it with 2 process(es)"),
                std::string::npos)
          << d.output;
    }
  }
}

// A rank that fails ends every rank, with its own one-line message; a run that diverges on two ranks stops at the
// same step on both and exits 3, as one process does.
TEST_F(DataParallel, AFailingRankEndsTheRunAndDivergenceExits3) {
  const CommandResult failed = train(2, "--sampler uniform --iterations 5 --log /nonexistent-folder/log.jsonl");
  SKIP_WITHOUT_MPIRUN(failed);
  EXPECT_NE(failed.status, 0) << failed.output;
  EXPECT_NE(failed.output.find("sieve-train: error: rank 0: /nonexistent-folder/log.jsonl: cannot open for writing"),
            std::string::npos)
      << failed.output;

  const CommandResult diverged = train(2, "--sampler uniform --iterations 300 --lr 1000 --batch 8");
  EXPECT_EQ(diverged.status, 3) << diverged.output;
  EXPECT_NE(diverged.output.find("sieve-train: error: uniform diverged at step"), std::string::npos)
      << diverged.output;
}

// A time budget is rank 0's clock, broadcast: both ranks stop after the same step (or the run would hang in a
// collective) and evaluate on the same schedule.
TEST_F(DataParallel, TimeBudgetStopsEveryRankTogether) {
  const std::string log = dir_.file("timed.jsonl");
  const CommandResult r = train(2, "--sampler uniform,infobatch --time-budget 1.5 --lr-schedule time --batch 8 --log " + log);
  SKIP_WITHOUT_MPIRUN(r);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto records = finals(log);
  ASSERT_EQ(records.size(), 2u) << r.output;
  for (const auto& f : records) EXPECT_GE(f["time_s"].get<double>(), 1.5) << f.dump();
}

}  // namespace
}  // namespace sieve
#endif

// Trustworthy runs (Note [divergence], Note [data description], Note [stale temporaries]): a diverged run stops
// and names its first bad step, a checkpoint alone feeds its model again (sieve-eval), and killed or starved
// checkpoint writes lose nothing and leave no litter.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "apps/trainer.h"
#include "core/checkpoint.h"
#include "tests/test_util.h"

extern char** environ;

namespace sieve {
namespace {

namespace fs = std::filesystem;
using testing::have_fashion_mnist;
using testing::run_command;
using testing::TempDir;

bool all_finite(const Module& m) {
  for (const auto& [name, p] : m.named_parameters())
    for (float v : p.to(Device::cpu()).to_vector<float>())
      if (!std::isfinite(v)) return false;
  return true;
}

TrainOptions diverging_run(const std::string& sampler) {
  TrainOptions o;
  o.model = "mlp:64";
  o.sampler = sampler;
  o.sgd.lr = 1000.f;  // the reproduction: NaN within a few dozen steps
  o.iterations = 300;
  o.eval_every = 100;
  o.train_eval_size = 200;
  o.test_eval_size = 200;
  o.selection.batch = 32;
  o.selection.presample = 64;
  o.seed = 4;
  return o;
}

// The run stops at the first step whose training loss is not finite: a twin stepped by hand has finite weights
// before that step and non-finite ones after it, and the final record says so.
class Divergence : public testing::DeviceTest {};

TEST_P(Divergence, StopsAtTheFirstNonFiniteLossAndSaysWhere) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const DataSplits data = testing::fashion_mnist_subset(2000, 200, 1);
  const DataSplits on_device{data.train.to(device()), data.test.to(device())};
  for (const std::string sampler : {"uniform", "upper-bound"}) {
    TempDir dir;
    TrainOptions o = diverging_run(sampler);
    o.checkpoint = dir.file("run.safetensors");
    o.checkpoint_every = 1;  // a checkpoint after every good step, none after the bad one
    Trainer trainer(o, on_device, device());
    std::vector<EvalRecord> records;
    const EvalRecord last = trainer.run([&](const EvalRecord& r) { records.push_back(r); });
    ASSERT_TRUE(last.diverged) << sampler << " did not diverge at lr 1000 in 300 steps";
    EXPECT_TRUE(last.final);
    EXPECT_TRUE(records.back().diverged);
    EXPECT_LT(last.diverged_step, 300) << sampler;
    EXPECT_FALSE(std::isfinite(last.diverged_loss)) << sampler;
    EXPECT_EQ(divergence_message(last), sampler + " diverged at step " + std::to_string(last.diverged_step) +
                                            ": training loss is " + describe_value(last.diverged_loss));
    const nlohmann::json j = nlohmann::json::parse(to_json_line(last));
    EXPECT_TRUE(j["diverged"].get<bool>());
    EXPECT_EQ(j["diverged_step"].get<int64_t>(), last.diverged_step);

    // The last checkpoint is the step before the bad one (the steps after it were never saved).
    const CheckpointState saved = load_checkpoint(o.checkpoint);
    EXPECT_EQ(saved.get_int("step"), last.diverged_step - 1) << sampler;

    // A twin by hand: finite weights after diverged_step - 1 steps, a non-finite loss recorded at the next one.
    Trainer twin(o, on_device, device());
    for (int64_t s = 1; s < last.diverged_step; ++s) twin.step();
    EXPECT_TRUE(all_finite(twin.model())) << sampler;
    EXPECT_FALSE(twin.divergence().has_value()) << sampler;
    twin.step();
    ASSERT_TRUE(twin.divergence().has_value()) << sampler;
    EXPECT_EQ(twin.divergence()->first, last.diverged_step) << sampler;
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(Divergence);

// Note [score diagnostics]: taken every N steps between steps, they leave the run exactly as it would be without them.
TEST(ScoreDiagnostics, EveryNStepsWithoutChangingTheRun) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const DataSplits data = testing::fashion_mnist_subset(1000, 100, 3);
  TrainOptions o;
  o.model = "mlp:16";
  o.sampler = "upper-bound";
  o.selection.batch = 16;
  o.selection.presample = 32;
  o.selection.tau_th = 1.f;
  o.iterations = 12;
  o.eval_every = 12;
  o.train_eval_size = 100;
  o.seed = 8;
  Trainer plain(o, data, Device::cpu());
  const EvalRecord expected = plain.run([](const EvalRecord&) {});
  o.diagnose_scores_every = 5;
  Trainer diagnosed(o, data, Device::cpu());
  std::vector<int64_t> steps;
  const EvalRecord got = diagnosed.run([](const EvalRecord&) {}, [&](int64_t step, double, const ScoreDiagnostics& d) {
    steps.push_back(step);
    EXPECT_EQ(d.presample, 32);
    for (double v : {d.spearman_upper_bound, d.spearman_loss}) EXPECT_TRUE(v >= -1 && v <= 1) << v;
    // The exact norms are the optimal distribution: no larger variance than the other two.
    EXPECT_LE(d.relative_variance_gradient_norm, d.relative_variance_upper_bound * (1 + 1e-9));
    EXPECT_LE(d.relative_variance_gradient_norm, d.relative_variance_loss * (1 + 1e-9));
    const nlohmann::json j = nlohmann::json::parse(diagnostics_json_line("upper-bound", step, 0.5, d));
    EXPECT_EQ(j["score_diagnostics"]["presample"].get<int64_t>(), 32);
    EXPECT_FALSE(j.contains("final"));
  });
  EXPECT_EQ(steps, (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(got.scored, expected.scored) << "the diagnostics' scoring pass is not counted";
  EXPECT_EQ(got.train_loss, expected.train_loss);
  const auto a = plain.model().named_parameters(), b = diagnosed.model().named_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
}

#ifdef SIEVE_TRAIN_BINARY
// Diverged samplers get one line each and the others still run; the summary marks them; the exit status is 3.
TEST(SieveTrain, DivergedRunExitsThreeAndTheOthersStillRun) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  const std::string log = dir.file("log.jsonl");
  const testing::CommandResult c = run_command(
      std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:64 --lr 1000 --iterations 300 --batch 32 "
      "--presample 64 --train-eval-size 200 --test-eval-size 200 --sampler uniform,upper-bound --log " + log);
  EXPECT_EQ(c.status, 3) << c.output;
  std::vector<nlohmann::json> finals;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("final", false)) finals.push_back(j);
  }
  ASSERT_EQ(finals.size(), 2u) << "both samplers ran to a final record";
  for (const auto& f : finals) {
    ASSERT_TRUE(f.value("diverged", false)) << f.dump();
    const std::string line = "sieve-train: error: " + f["sampler"].get<std::string>() + " diverged at step " +
                             std::to_string(f["diverged_step"].get<int64_t>()) + ": training loss is " +
                             f["diverged_loss"].get<std::string>() + "\n";
    EXPECT_NE(c.output.find(line), std::string::npos) << line << c.output;
  }
  EXPECT_NE(c.output.find("diverged                  "), std::string::npos) << c.output;  // the summary's row
  EXPECT_NE(c.output.find("not compared"), std::string::npos) << c.output;
  EXPECT_EQ(c.output.find("nan% higher"), std::string::npos) << c.output;
}

// The exact-norm sampler, the reference's smoothing and the diagnostics from the command line; the log's diagnostics
// records sit between the evaluations and compare-samplers draws them.
TEST(SieveTrain, GradientNormSamplerAndScoreDiagnostics) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  const std::string log = dir.file("log.jsonl");
  const testing::CommandResult c = run_command(
      std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:16 --sampler gradient-norm,upper-bound --batch 8 "
      "--presample 16 --tau-th 1 --presample-smoothing 0.5 --iterations 6 --diagnose-scores 3 --train-eval-size 100 "
      "--test-eval-size 100 --log " + log);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("gradient-norm"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("diagnostics (B 16): spearman upper-bound"), std::string::npos) << c.output;
  int diagnostics = 0, finals = 0;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("score_diagnostics")) {
      ++diagnostics;
      EXPECT_TRUE(j["step"] == 3 || j["step"] == 6) << line;
    }
    finals += j.value("final", false);
  }
  EXPECT_EQ(diagnostics, 4);  // steps 3 and 6 of each sampler
  EXPECT_EQ(finals, 2);
  const testing::CommandResult bad = run_command(std::string(SIEVE_TRAIN_BINARY) + " --diagnose-scores -1");
  EXPECT_NE(bad.status, 0);
}

// A child process running `command` through the shell (exec'd, so that its pid is sieve-train's), its output
// discarded.
pid_t spawn(const std::string& command) {
  const std::string line = "exec " + command + " >/dev/null 2>&1";
  const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return pid;
}

int temporaries_of(const std::string& target) {
  int n = 0;
  const std::string prefix = fs::path(target).filename().string() + ".tmp.";
  for (const auto& e : fs::directory_iterator(fs::path(target).parent_path()))
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

// Killed with SIGKILL at ten random moments while it checkpoints every step: each time the checkpoint loads and
// resumes, and at most one temporary (the killed writer's) is left, since each save removes those of dead writers.
TEST(CrashHygiene, SigkillWhileCheckpointingLosesNothingAndLeavesOneTemporaryAtMost) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  const std::string file = dir.file("run.safetensors");
  const std::string base = std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:64 --sampler uniform "
                           "--train-eval-size 100 --test-eval-size 100 --eval-every 1000000 --quiet --checkpoint " +
                           file + " --checkpoint-every 1 ";
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> delay_ms(400, 1600);  // loading the data takes some of it
  int64_t last_step = 0;
  for (int kill = 0; kill < 10; ++kill) {
    const bool resume = fs::exists(file);
    const pid_t pid = spawn(base + "--iterations 1000000" + (resume ? " --resume " + file : ""));
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "kill " << kill << ": the run ended before it was killed";
    EXPECT_LE(temporaries_of(file), 1) << "kill " << kill;
    if (!fs::exists(file)) continue;  // killed before its first checkpoint
    const CheckpointState state = load_checkpoint(file);  // complete: never a half-written file
    const int64_t step = state.get_int("step");
    EXPECT_GE(step, last_step) << "kill " << kill << ": a resumed run went back";
    last_step = step;
  }
  ASSERT_TRUE(fs::exists(file)) << "no checkpoint in ten runs";
  const testing::CommandResult done = run_command(base + "--iterations " + std::to_string(last_step + 2) +
                                                  " --resume " + file);
  EXPECT_EQ(done.status, 0) << done.output;
  EXPECT_EQ(load_checkpoint(file).get_int("step"), last_step + 2);
  EXPECT_EQ(temporaries_of(file), 0) << "the last save removed the killed writers' temporaries";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// A write beyond a file-size limit (as on a full disk) fails in one line and leaves the previous checkpoint as it was.
TEST(CrashHygiene, AFileSizeLimitLeavesThePreviousCheckpointIntact) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  const std::string file = dir.file("run.safetensors");
  const std::string base = std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:64 --sampler uniform "
                           "--train-eval-size 100 --test-eval-size 100 --quiet --checkpoint " + file;
  const testing::CommandResult first = run_command(base + " --iterations 2");
  ASSERT_EQ(first.status, 0) << first.output;
  const std::string before = read_bytes(file);
  ASSERT_GT(before.size(), 100u * 1024u);
  // ulimit -f counts 1024-byte blocks: 64 KiB, below the checkpoint's size.
  const testing::CommandResult limited =
      run_command("ulimit -f 64 && " + base + " --iterations 4 --resume " + file);
  EXPECT_EQ(limited.status, 1) << limited.output;
  EXPECT_EQ(std::count(limited.output.begin(), limited.output.end(), '\n'), 1) << limited.output;
  EXPECT_NE(limited.output.find("sieve-train: error: cannot write " + file), std::string::npos) << limited.output;
  EXPECT_NE(limited.output.find("File too large"), std::string::npos) << limited.output;
  EXPECT_EQ(read_bytes(file), before);
  EXPECT_EQ(temporaries_of(file), 0);
}
#endif

#ifdef SIEVE_EVAL_BINARY
// An uncompressed IDX file: magic 0x000008DD, big-endian sizes, then the bytes.
void write_idx(const std::string& path, const std::vector<uint32_t>& dims, const uint8_t* bytes, size_t n) {
  std::ofstream out(path, std::ios::binary);
  const char magic[4] = {0, 0, 8, static_cast<char>(dims.size())};
  out.write(magic, 4);
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.put(static_cast<char>((d >> shift) & 0xFF));
  out.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  ASSERT_TRUE(out.good()) << path;
}

// A Fashion-MNIST subset written as IDX files in `dir`: a data set sieve-train and sieve-eval load by --data.
void write_subset(const std::string& dir, int64_t train, int64_t test) {
  const DataSplits s = testing::fashion_mnist_subset(train, test, 2);
  for (const auto& [prefix, d] : {std::pair<std::string, const Dataset*>{"train", &s.train}, {"t10k", &s.test}}) {
    const std::vector<uint8_t> images = d->images.to_vector<uint8_t>();
    std::vector<uint8_t> labels;
    for (int32_t y : d->labels.to_vector<int32_t>()) labels.push_back(static_cast<uint8_t>(y));
    const uint32_t n = static_cast<uint32_t>(d->size());
    write_idx(dir + "/" + prefix + "-images-idx3-ubyte", {n, 28, 28}, images.data(), images.size());
    write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", {n}, labels.data(), labels.size());
  }
}

// sieve-eval's loss and accuracy equal the training log's final record for the same weights (the whole test split),
// for images and for a permuted pixel sequence, whose order and normalisation come from the checkpoint alone.
TEST(SieveEval, EqualsTheTrainingLogsFinalRecord) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  fs::create_directories(dir.file("data"));
  write_subset(dir.file("data"), 600, 300);
  const std::string data = " --data fashion-mnist:" + dir.file("data");
  for (const std::string args :
       {"--model mlp:32 --sampler upper-bound --presample 64 --iterations 12",
        "--model lstm:4 --sequence pixels --permute --seed 3 --sampler uniform --iterations 2"}) {
    const std::string file = dir.file("run.safetensors"), log = dir.file("log.jsonl");
    const testing::CommandResult train = run_command(std::string(SIEVE_TRAIN_BINARY) + " --device cpu --batch 16 " +
                                                     args + data + " --test-eval-size 0 --quiet --checkpoint " +
                                                     file + " --log " + log);
    ASSERT_EQ(train.status, 0) << train.output;
    nlohmann::json final_record;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) final_record = nlohmann::json::parse(line);
    ASSERT_TRUE(final_record.value("final", false));

    const std::string predictions = dir.file("predictions.csv");
    const testing::CommandResult eval = run_command(std::string(SIEVE_EVAL_BINARY) + " " + file + data +
                                                    " --device cpu --json --predictions " + predictions);
    ASSERT_EQ(eval.status, 0) << eval.output;
    const nlohmann::json e = nlohmann::json::parse(eval.output);
    EXPECT_EQ(e["loss"].get<double>(), final_record["test_loss"].get<double>()) << args;
    EXPECT_EQ(e["accuracy"].get<double>(), final_record["test_accuracy"].get<double>()) << args;
    EXPECT_EQ(e["examples"].get<int64_t>(), 300);
    // The confusion matrix counts every example once, its diagonal the correct ones.
    int64_t total = 0, diagonal = 0;
    for (size_t k = 0; k < e["confusion"].size(); ++k)
      for (size_t j = 0; j < e["confusion"][k].size(); ++j) {
        total += e["confusion"][k][j].get<int64_t>();
        if (j == k) diagonal += e["confusion"][k][j].get<int64_t>();
      }
    EXPECT_EQ(total, 300);
    EXPECT_DOUBLE_EQ(static_cast<double>(diagonal) / 300.0, e["accuracy"].get<double>());
    std::ifstream csv(predictions);
    std::string header;
    std::getline(csv, header);
    EXPECT_EQ(header, "example,label,predicted,loss");
    int rows = 0;
    for (std::string line; std::getline(csv, line);) ++rows;
    EXPECT_EQ(rows, 300);

    // The human-readable report has the per-class rows and the matrix; the train split evaluates too.
    const testing::CommandResult report =
        run_command(std::string(SIEVE_EVAL_BINARY) + " " + file + data + " --device cpu --split train");
    ASSERT_EQ(report.status, 0) << report.output;
    for (const char* text : {"per-class accuracy", "class   9", "confusion matrix", "train split, 600 examples"})
      EXPECT_NE(report.output.find(text), std::string::npos) << text << "\n" << report.output;

    // --resume without --model, --sampler or --optimizer takes them (and the sequence view) from the checkpoint.
    const testing::CommandResult resumed = run_command(std::string(SIEVE_TRAIN_BINARY) + " --device cpu --batch 16 "
                                                       "--presample 64 --iterations 14 --seed 3" + data +
                                                       " --test-eval-size 50 --resume " + file);
    EXPECT_EQ(resumed.status, 0) << resumed.output;
  }
}

// A checkpoint that lacks or lies about its data description, or data that are not the ones described, is refused
// in one line.
TEST(SieveEval, RefusesWhatItCannotTrust) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  TempDir dir;
  fs::create_directories(dir.file("data"));
  write_subset(dir.file("data"), 200, 100);
  const std::string data = " --data fashion-mnist:" + dir.file("data");
  const std::string file = dir.file("run.safetensors");
  const testing::CommandResult train = run_command(std::string(SIEVE_TRAIN_BINARY) + " --device cpu --model mlp:8 "
                                                   "--sampler uniform --batch 16 --iterations 2 --quiet" + data +
                                                   " --checkpoint " + file);
  ASSERT_EQ(train.status, 0) << train.output;
  const CheckpointState good = load_checkpoint(file);
  auto altered = [&](const std::string& key, const std::string* value) {
    CheckpointState s = good;
    if (value) s.metadata[key] = *value;
    else s.metadata.erase(key);
    const std::string path = dir.file("altered.safetensors");
    save_checkpoint(path, s);
    return path;
  };
  struct Case {
    std::string key;
    std::optional<std::string> value;
    std::string expect;
  };
  for (const Case& k : std::vector<Case>{
           {"data.name", std::nullopt, "does not describe its data"},
           {"data.mean", std::nullopt, "data.mean is missing"},
           {"data.classes", "ten", "data.classes is not a comma-separated list"},
           {"data.classes", "7", "7 classes"},
           {"data.shape", "1,28", "expected C,H,W"},
           {"data.shape", "1,32,32", "1x32x32"},
           {"data.std", "0.35,0.35", "2 standard deviations for 1 channels"},
           {"data.std", "-1", "positive std"},
           {"data.mean", "0.5", "another version of fashion-mnist"},
           {"data.sequence", "columns", "expected none or pixels"},
           {"data.name", "mnist", "a model trained on mnist, not on fashion-mnist"},
       }) {
    const std::string path = altered(k.key, k.value ? &*k.value : nullptr);
    const testing::CommandResult c = run_command(std::string(SIEVE_EVAL_BINARY) + " " + path + data +
                                                 " --device cpu");
    EXPECT_EQ(c.status, 1) << k.key << "\n" << c.output;
    EXPECT_EQ(std::count(c.output.begin(), c.output.end(), '\n'), 1) << k.key << "\n" << c.output;
    EXPECT_NE(c.output.find("sieve-eval: error: "), std::string::npos) << c.output;
    EXPECT_NE(c.output.find(k.expect), std::string::npos) << k.key << ": expected '" << k.expect << "'\n" << c.output;
  }
  // A resume refuses a checkpoint of other data just as plainly.
  const testing::CommandResult resumed = run_command(std::string(SIEVE_TRAIN_BINARY) + " --device cpu --batch 16 "
                                                     "--iterations 3 --quiet" + data + " --resume " +
                                                     altered("data.mean", nullptr));
  EXPECT_EQ(resumed.status, 1) << resumed.output;
  EXPECT_NE(resumed.output.find("data.mean is missing"), std::string::npos) << resumed.output;
}
#endif

}  // namespace
}  // namespace sieve

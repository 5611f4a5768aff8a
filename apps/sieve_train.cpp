// sieve-train: trains a model with one or more selection methods at equal budget and compares them.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/trainer.h"
#include "core/device.h"
#include "core/error.h"
#include "layers/models.h"
#include "sampling/importance.h"

namespace {

using namespace sieve;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string format_tau(const EvalRecord& r) {
  if (!r.tau) return "    -";
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << std::setw(5) << *r.tau;
  return os.str();
}

void print_progress(const EvalRecord& r, double budget_s, int64_t iterations) {
  std::ostringstream os;
  os << std::left << std::setw(12) << r.sampler << std::right << " step " << std::setw(6) << r.step << "  "
     << std::fixed << std::setprecision(1) << std::setw(6) << r.time_s;
  if (budget_s > 0) os << "/" << std::setprecision(0) << budget_s << "s";
  else os << "s (" << r.step * 100 / std::max<int64_t>(1, iterations) << "%)";
  os << std::setprecision(4) << "  train loss " << r.train_loss << "  test loss " << r.test_loss
     << std::setprecision(2) << "  test acc " << 100 * r.test_accuracy << "%  tau " << format_tau(r)
     << (r.tau ? (r.importance_on ? "  IS on" : "  IS off") : "") << (r.final ? "  (final)" : "");
  std::cout << os.str() << std::endl;
}

void print_summary(const std::vector<EvalRecord>& results) {
  std::cout << "\n" << std::left << std::setw(26) << "final results";
  for (const auto& r : results) std::cout << std::right << std::setw(14) << r.sampler;
  std::cout << "\n";
  auto row = [&](const char* name, auto&& value) {
    std::cout << std::left << std::setw(26) << name;
    for (const auto& r : results) std::cout << std::right << std::setw(14) << value(r);
    std::cout << "\n";
  };
  auto fixed = [](double v, int p) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(p) << v;
    return os.str();
  };
  row("training time (s)", [&](const EvalRecord& r) { return fixed(r.time_s, 1); });
  row("steps", [](const EvalRecord& r) { return std::to_string(r.step); });
  row("examples trained", [](const EvalRecord& r) { return std::to_string(r.examples); });
  row("examples scored", [](const EvalRecord& r) { return std::to_string(r.scored); });
  row("train loss (10k subset)", [&](const EvalRecord& r) { return fixed(r.train_loss, 4); });
  row("test loss", [&](const EvalRecord& r) { return fixed(r.test_loss, 4); });
  row("test accuracy (%)", [&](const EvalRecord& r) { return fixed(100 * r.test_accuracy, 2); });
  row("importance sampling on", [&](const EvalRecord& r) {
    return r.tau ? fixed(100 * r.importance_fraction, 0) + "% steps" : std::string("-");
  });
  if (results.size() >= 2) {
    const EvalRecord& base = results.front();
    for (size_t i = 1; i < results.size(); ++i) {
      const double rel = (results[i].train_loss - base.train_loss) / base.train_loss;
      std::cout << "\n" << results[i].sampler << " vs " << base.sampler << ": training loss " << fixed(100 * std::abs(rel), 1)
                << "% " << (rel < 0 ? "lower" : "higher") << ", test error " << fixed(100 * (1 - results[i].test_accuracy), 2)
                << "% vs " << fixed(100 * (1 - base.test_accuracy), 2) << "%, at equal training time\n";
    }
  }
}

int run(int argc, char** argv) {
  CLI::App app{
      "sieve-train: train a network choosing which samples each step computes on.\n"
      "With no options it trains an MLP on Fashion-MNIST twice, with uniform sampling and with upper-bound\n"
      "importance sampling (Katharopoulos & Fleuret 2018, Algorithm 1), for the same wall-clock budget, and\n"
      "prints both results side by side."};
  app.get_formatter()->column_width(34);

  std::string data_spec = "fashion-mnist", samplers = "uniform,upper-bound", device_name = "auto", log_path;
  TrainOptions o;
  o.time_budget_s = 60;
  o.selection.presample = 256;  // B = 2b: measured best of 2b, 3b, 5b for the MLP on a 2-core CPU (README)
  float tau_th = 0;
  bool quiet = false;
  app.add_option("--data", data_spec,
                 "fashion-mnist|mnist[:DIR] (default: where Debian's package installs it), cifar10:DIR, cifar100:DIR")
      ->capture_default_str();
  app.add_option("--model", o.model, "mlp[:H1,H2,...] (mlp = mlp:512,256), cnn, wrn-D-K (e.g. wrn-28-2), resnet18|34|50")
      ->capture_default_str();
  app.add_flag("--augment", o.augment, "random crop (4-pixel padding) and horizontal flip of training images");
  bool no_tf32 = false;
  app.add_flag("--no-tf32", no_tf32, "full float32 convolutions on the GPU (TF32 tensor cores are on by default)");
  app.add_option("--mixed-precision", o.mixed_precision,
                 "none|bf16: bf16 multiplies inputs of convolutions and matrix products rounded to bfloat16, "
                 "accumulating in float32; weights, gradients and optimizer state stay float32 (default none)")
      ->check(CLI::IsMember({"none", "bf16"}));
  app.add_option("--sampler", samplers,
                 "uniform|loss|upper-bound, or a comma-separated list run one after the other at equal budget")
      ->capture_default_str();
  app.add_option("--batch", o.selection.batch, "b: examples trained on per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--presample", o.selection.presample, "B: examples scored per importance-sampling step (B >= b)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--tau-th", tau_th, "τ_th: importance sampling starts when τ exceeds it (default (B + 3b) / 3b)");
  app.add_option("--tau-ema", o.selection.tau_ema, "a_τ: moving-average factor of τ, in [0, 1)")->capture_default_str();
  app.add_option("--lr", o.sgd.lr, "base learning rate")->capture_default_str();
  app.add_option("--lr-schedule", o.schedule,
                 "constant|step|time|cosine: step and time multiply by gamma at milestones (step counts, budget fractions)")
      ->capture_default_str();
  app.add_option("--lr-milestones", o.milestones,
                 "budget fractions (time) or step counts (step), comma-separated (default 50% and 80% of the run)")
      ->delimiter(',');
  app.add_option("--lr-gamma", o.gamma, "factor applied at each milestone")->capture_default_str();
  app.add_option("--momentum", o.sgd.momentum, "SGD momentum")->capture_default_str();
  app.add_flag("--nesterov", o.sgd.nesterov, "Nesterov momentum");
  app.add_option("--weight-decay", o.sgd.weight_decay, "L2 weight decay")->capture_default_str();
  auto* iterations = app.add_option("--iterations", o.iterations, "stop after N steps (each sampler)");
  auto* budget = app.add_option("--time-budget", o.time_budget_s,
                                "seconds of training per sampler (evaluation not counted)")
                     ->capture_default_str();
  app.add_option("--device", device_name, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of initialisation, sampling and the evaluation subset")->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "evaluate every N steps (default: ten times per run)");
  app.add_option("--log", log_path, "write JSON lines, one per evaluation, the last with \"final\": true");
  app.add_flag("--quiet", quiet, "print only the final summary");
  app.add_option("--checkpoint", o.checkpoint, "write a checkpoint (safetensors) here at the end of the run");
  app.add_option("--checkpoint-every", o.checkpoint_every, "also every N steps")->check(CLI::NonNegativeNumber);
  app.add_option("--resume", o.resume, "continue the run saved in this checkpoint (same model and sampler)");
  app.add_option("--init-from", o.init_from, "start from this checkpoint's weights (fine-tuning)");
  app.add_flag("--reset-head", o.reset_head, "with --init-from: a new classifier for this data set's classes");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (iterations->count() > 0 && budget->count() == 0) o.time_budget_s = 0;  // --iterations alone: no time limit
  // Milestones by default: the reference's 50% and 80% of the run, in the schedule's unit.
  if (app.get_option("--lr-milestones")->count() == 0) {
    if (o.schedule == "time") o.milestones = {0.5, 0.8};
    if (o.schedule == "step" && o.iterations >= 5)
      o.milestones = {static_cast<double>(o.iterations / 2), static_cast<double>(o.iterations * 4 / 5)};
  }
  if (tau_th > 0) o.selection.tau_th = tau_th;
  o.tf32 = !no_tf32;
  SIEVE_CHECK(!o.reset_head || !o.init_from.empty(), "--reset-head needs --init-from CHECKPOINT");
  SIEVE_CHECK(o.init_from.empty() || o.resume.empty(), "--init-from starts a new run and --resume continues one: "
              "give one of them");
  SIEVE_CHECK(o.checkpoint_every == 0 || !o.checkpoint.empty(), "--checkpoint-every needs --checkpoint FILE");
  SIEVE_CHECK(o.selection.batch <= o.selection.presample, "--batch ", o.selection.batch, " exceeds --presample ",
              o.selection.presample, ": importance sampling draws b of B pre-sampled examples");

  const Device device = parse_device(device_name);
  const std::vector<std::string> names = split(samplers, ',');
  SIEVE_CHECK(!names.empty(), "--sampler: no sampler given");
  SIEVE_CHECK(names.size() == 1 || (o.checkpoint.empty() && o.resume.empty()),
              "--checkpoint and --resume take a single --sampler (", names.size(), " given)");
  // Reject bad names before the data are loaded.
  for (const auto& name : names) make_selector(name, o.selection);
  parse_model_spec(o.model);

  std::ofstream log;
  if (!log_path.empty()) {
    log.open(log_path);
    SIEVE_CHECK(log.good(), log_path, ": cannot open for writing");
  }

  DataSplits data = load_dataset(parse_data_spec(data_spec));
  data.train = data.train.to(device);
  data.test = data.test.to(device);
  if (!quiet) {
    std::cout << "data: " << data.train.name << ", " << data.train.size() << " training and " << data.test.size()
              << " test examples, on " << to_string(device) << "\n";
  }

  std::vector<EvalRecord> finals;
  for (const auto& name : names) {
    TrainOptions run_options = o;
    run_options.sampler = name;
    Trainer trainer(run_options, data, device);
    if (!o.init_from.empty()) trainer.init_from(o.init_from, o.reset_head);
    if (!o.resume.empty()) {
      trainer.resume(o.resume);
      if (!quiet) std::cout << "resumed " << o.resume << " at step " << trainer.steps() << "\n";
    }
    if (!quiet && finals.empty()) {
      std::cout << "model: " << o.model << " (" << trainer.model().parameter_count() << " parameters); b = "
                << o.selection.batch << ", B = " << o.selection.presample << ", tau_th = "
                << (o.selection.tau_th ? *o.selection.tau_th : default_tau_th(o.selection.presample, o.selection.batch))
                << "; budget ";
      if (o.time_budget_s > 0) std::cout << o.time_budget_s << " s";
      if (o.iterations > 0) std::cout << (o.time_budget_s > 0 ? " or " : "") << o.iterations << " steps";
      std::cout << " per sampler\n";
    }
    finals.push_back(trainer.run([&](const EvalRecord& r) {
      if (log.is_open()) log << to_json_line(r) << "\n" << std::flush;
      if (!quiet) print_progress(r, o.time_budget_s, o.iterations);
    }));
  }
  print_summary(finals);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const sieve::Error& e) {
    std::fprintf(stderr, "sieve-train: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sieve-train: error: %s\n", e.what());
  }
  return 1;
}

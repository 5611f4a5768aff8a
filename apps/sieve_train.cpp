// sieve-train: trains a model with one or more selection methods at equal budget and compares them.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "apps/blas_kernels.h"
#include "apps/text_file.h"
#include "apps/trainer.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/distributed.h"
#include "core/error.h"
#include "core/ops/linear.h"
#include "data/description.h"
#include "data/sequence.h"
#include "layers/models.h"
#include "sampling/importance.h"

namespace {

using namespace sieve;

// The exit status when any run diverged (Note [divergence]); 1 is any other error.
constexpr int kExitDiverged = 3;

// Note [interrupts]: clusters stop jobs with SIGTERM (or SIGUSR1 shortly before), people with Ctrl-C (SIGINT). The
// handler only records the signal; the training loop asks after every step (Trainer::set_interrupt, a read of this
// flag: no synchronisation with the device), so the step under way completes, never an update half done. The run then
// writes its checkpoint (--checkpoint, or --run-dir's), appends a record marked "interrupted" with the signal's name
// and no losses (evaluating could outlast a preemption's grace period), says in one line where the checkpoint is, and
// exits with 128 + the signal's number, as a shell reports a process the signal killed; a multi-sampler invocation runs
// no further sampler. A second SIGINT ends the process at once. `--resume auto` continues from the checkpoint when it
// exists and starts afresh otherwise, so a requeued job runs the same command; its log is continued from the
// checkpoint's step. The handler runs on an alternate stack (sigaltstack, SA_ONSTACK): pushed onto the stack of the
// code it interrupted, its signal frame corrupted the heap in 4 of 68 signalled runs of the interrupt tests' kind on a
// loaded machine (glibc's "corrupted size vs. prev_size", inside or after oneDNN's sgemm, on one thread or two; the
// tests failed that way now and then), presumably by overwriting data some JIT code kept below its stack pointer; with
// the alternate stack, 150 such runs ran clean.
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_signal != 0 && signal == SIGINT) {  // the second Ctrl-C: now
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_signal = signal;
}

void install_stop_handlers() {
  // On a stack of its own (Note [interrupts]): the main thread's, which the kernel picks for a signal sent to the
  // process while it does not block it.
  static char handler_stack[size_t{1} << 16];
  stack_t alt{};
  alt.ss_sp = handler_stack;
  alt.ss_size = sizeof handler_stack;
  sigaltstack(&alt, nullptr);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_ONSTACK;
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) sigaction(signal, &action, nullptr);
}

// Drops the records of a log after `step` (evaluations of a stopped run past its checkpoint), keeping the others as
// they were; lines that are not JSON records are kept.
void keep_records_until(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() > step)
      continue;
    kept.push_back(line);
  }
  in.close();
  write_text_file(path, "log", [&](std::ostream& out) {
    for (const std::string& line : kept) out << line << "\n";
  });
}

// This process's place in a data-parallel run (Note [launch by mpirun] in core/distributed.h) and, once made, its
// communicator: main() ends every rank with it when one rank fails.
DistributedEnvironment g_env;
std::shared_ptr<Communicator> g_comm;

// The device of this rank: with a launcher, `auto` and `cuda` mean cuda:(local rank), one GPU per process.
Device rank_device(const std::string& name, const DistributedEnvironment& env) {
  if (env.launched && (name == "auto" || name == "cuda")) {
    const int gpus = cuda_device_count();
    if (gpus == 0) return parse_device(name);  // auto: the CPU; cuda: its one-line error
    SIEVE_CHECK(env.local_rank < gpus, "rank ", env.rank, " is process ", env.local_rank, " on its host, which has ",
                gpus, " GPU(s): start at most one process per GPU, or give --device cpu");
    return Device::cuda(env.local_rank);
  }
  return parse_device(name);
}

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

void print_progress(const EvalRecord& r, const TrainOptions& o) {
  const double budget_s = o.time_budget_s;
  std::ostringstream os;
  os << std::left << std::setw(12) << r.sampler << std::right << " step " << std::setw(6) << r.step << "  "
     << std::fixed << std::setprecision(1) << std::setw(6) << r.time_s;
  if (budget_s > 0) os << "/" << std::setprecision(0) << budget_s << "s";
  else if (o.iterations > 0) os << "s (" << r.step * 100 / o.iterations << "%)";
  else os << "s (" << r.examples * 100 / std::max<int64_t>(1, o.example_budget) << "% of examples)";
  os << std::setprecision(4) << "  train loss " << r.train_loss << "  test loss " << r.test_loss
     << std::setprecision(2) << "  test acc " << 100 * r.test_accuracy << "%";
  if (r.tau) {
    os << "  tau " << format_tau(r) << (r.importance_on ? "  IS on" : "  IS off");
  } else {
    // Other selectors' own statistics (SRS coverage, CREST's T1 and active set, ...), the first few of them.
    int shown = 0;
    for (const auto& [key, value] : r.selector_stats) {
      if (shown++ == 4) break;
      os << "  " << key << " " << std::defaultfloat << std::setprecision(4) << value;
    }
  }
  os << (r.diverged ? "  (diverged)" : r.final ? "  (final)" : "");
  std::cout << os.str() << std::endl;
}

void print_diagnostics(const std::string& sampler, int64_t step, const ScoreDiagnostics& d) {
  std::ostringstream os;
  os << std::left << std::setw(12) << sampler << std::right << " step " << std::setw(6) << step << std::fixed
     << std::setprecision(3) << "  diagnostics (B " << d.presample << "): spearman upper-bound "
     << d.spearman_upper_bound << ", loss " << d.spearman_loss << "; variance vs uniform: loss " << d.relative_variance_loss << ", upper-bound "
     << d.relative_variance_upper_bound << ", exact " << d.relative_variance_gradient_norm;
  std::cout << os.str() << std::endl;
}

void print_summary(std::ostream& out, const std::vector<EvalRecord>& results, const TrainOptions& o) {
  // Columns wide enough for the longest sampler name ("selective-backprop-stale"), so that none run together.
  int width = 14;
  for (const auto& r : results) width = std::max(width, static_cast<int>(r.sampler.size()) + 2);
  out << "\n" << std::left << std::setw(26) << "final results";
  for (const auto& r : results) out << std::right << std::setw(width) << r.sampler;
  out << "\n";
  auto row = [&](const char* name, auto&& value) {
    out << std::left << std::setw(26) << name;
    for (const auto& r : results) out << std::right << std::setw(width) << value(r);
    out << "\n";
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
  row("epochs (examples / N)", [&](const EvalRecord& r) { return fixed(r.epochs, 2); });
  row("train loss (eval subset)", [&](const EvalRecord& r) { return fixed(r.train_loss, 4); });
  row("test loss", [&](const EvalRecord& r) { return fixed(r.test_loss, 4); });
  row("test accuracy (%)", [&](const EvalRecord& r) { return fixed(100 * r.test_accuracy, 2); });
  row("importance sampling on", [&](const EvalRecord& r) {
    return r.tau ? fixed(100 * r.importance_fraction, 0) + "% steps" : std::string("-");
  });
  row("selection time (s)", [&](const EvalRecord& r) { return fixed(r.selection_s, 1); });
  row("selection share of time", [&](const EvalRecord& r) {
    return r.time_s > 0 ? fixed(100 * r.selection_s / r.time_s, 1) + "%" : std::string("-");
  });
  if (std::any_of(results.begin(), results.end(), [](const EvalRecord& r) { return r.diverged; }))
    row("diverged", [](const EvalRecord& r) {
      return r.diverged ? "at step " + std::to_string(r.diverged_step) : std::string("no");
    });
  if (results.size() >= 2) {
    // The budget that ended the runs: the first one given of time, steps and examples.
    const char* budget = o.time_budget_s > 0 ? "training time" : o.iterations > 0 ? "steps" : "examples trained";
    const EvalRecord& base = results.front();
    for (size_t i = 1; i < results.size(); ++i) {
      if (results[i].diverged || base.diverged) {
        out << "\n" << results[i].sampler << " vs " << base.sampler << ": not compared, "
                  << (base.diverged ? base.sampler : results[i].sampler) << " diverged\n";
        continue;
      }
      const double rel = (results[i].train_loss - base.train_loss) / base.train_loss;
      out << "\n" << results[i].sampler << " vs " << base.sampler << ": training loss " << fixed(100 * std::abs(rel), 1)
                << "% " << (rel < 0 ? "lower" : "higher") << ", test error " << fixed(100 * (1 - results[i].test_accuracy), 2)
                << "% vs " << fixed(100 * (1 - base.test_accuracy), 2) << "%, at equal " << budget << "\n";
    }
  }
}

// Everything the command line sets: the trainer's options and what only the program itself uses.
struct CommandLine {
  std::string data_spec = "fashion-mnist", samplers = "uniform,upper-bound", device_name = "auto", log_path;
  TrainOptions o;
  float tau_th = 0, lr = 0, weight_decay = 0;  // 0: not given (their defaults depend on other flags)
  bool quiet = false, no_tf32 = false, no_winograd = false;
  double bucket_mb = 25;
  std::string run_dir;
  bool resuming_auto = false;  // --resume auto found a checkpoint to continue
  std::optional<CheckpointState> resumed;  // --resume's checkpoint, read once
  CommandLine() {
    o.time_budget_s = 60;
    o.selection.presample = 256;  // B = 2b: measured best of 2b, 3b, 5b for the MLP on a 2-core CPU (README)
  }
};

// Every flag, bound to the fields of `cl`.
void register_options(CLI::App& app, CommandLine& cl) {
  app.get_formatter()->column_width(34);
  TrainOptions& o = cl.o;
  std::string &data_spec = cl.data_spec, &samplers = cl.samplers, &device_name = cl.device_name,
              &log_path = cl.log_path;
  float &tau_th = cl.tau_th, &lr = cl.lr, &weight_decay = cl.weight_decay;
  bool &quiet = cl.quiet, &no_tf32 = cl.no_tf32, &no_winograd = cl.no_winograd;
  app.add_option("--data", data_spec,
                 "fashion-mnist|mnist[:DIR] (default DIR: $SIEVE_DATA_DIR/NAME, else /usr/share/datasets/NAME), cifar10:DIR, "
                 "cifar100:DIR, npz:FILE (x_train, y_train, x_test, y_test: README, Bring your own data)")
      ->capture_default_str();
  app.add_option("--model", o.model, "mlp[:H1,H2,...] (mlp = mlp:512,256), cnn, wrn-D-K (e.g. wrn-28-2), resnet18|34|50, "
                 "lstm:H[,L] (L layers of H units reading one pixel per step; single-channel data)")
      ->capture_default_str();
  app.add_flag("--augment", o.augment, "random crop (4-pixel padding) and horizontal flip of training images");
  app.add_flag("--no-tf32", no_tf32, "full float32 convolutions on the GPU (TF32 tensor cores are on by default)");
  app.add_flag("--no-winograd", no_winograd, "CPU: direct convolutions only, as PyTorch's (oneDNN may choose Winograd "
               "for 3x3 stride-1 convolutions by default)");
  app.add_flag("--cudnn-benchmark", o.cudnn_benchmark,
               "GPU: time cuDNN's convolution algorithms once per shape and use the fastest (PyTorch's "
               "cudnn.benchmark; may be non-deterministic) instead of its heuristics' choice");
  app.add_flag("--cuda-graphs", o.cuda_graphs,
               "GPU: capture each step's training pass (gather, forward, backward, update) and the samplers' "
               "scoring pass as CUDA graphs on the second pass of each batch size and replay them, one launch each; "
               "the sampler's own choice runs as before. Same results bit for bit; needs --optimizer sgd, one "
               "process and no dropout");
  app.add_option("--mixed-precision", o.mixed_precision,
                 "none|bf16: bf16 multiplies inputs of convolutions and matrix products rounded to bfloat16, "
                 "accumulating in float32; weights, gradients and optimizer state stay float32 (default none)")
      ->check(CLI::IsMember({"none", "bf16"}));
  app.add_option("--sampler", samplers,
                 "uniform|loss|upper-bound|gradient-norm|loss-history|upper-bound-history|srs|random-subset|\n"
                 "online-batch|crest|infobatch|selective-backprop|selective-backprop-stale, or a comma-separated list\n"
                 "run one after the other at equal budget (gradient-norm: the exact per-example gradient norm, the\n"
                 "paper's expensive baseline: B one-example backward passes per step)")
      ->capture_default_str();
  app.add_option("--batch", o.selection.batch, "b: examples trained on per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--presample", o.selection.presample, "B: examples scored per importance-sampling step (B >= b)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--tau-th", tau_th, "τ_th: importance sampling starts when τ exceeds it (default (B + 3b) / 3b)");
  app.add_option("--tau-ema", o.selection.tau_ema, "a_τ: moving-average factor of τ, in [0, 1)")->capture_default_str();
  app.add_option("--srs-ratio", o.selection.subset_ratio,
                 "srs, random-subset: r, each epoch trains on round(r N) examples (srs draws them with replacement, "
                 "random-subset without, r <= 1)")
      ->capture_default_str();
  app.add_option("--selection-pressure", o.selection.selection_pressure,
                 "online-batch: s >= 1, how much likelier the highest-loss example is drawn than the lowest-loss one")
      ->capture_default_str();
  app.add_option("--resort-every", o.selection.resort_every, "online-batch: steps between re-rankings by loss")
      ->capture_default_str();
  app.add_option("--recompute-every", o.selection.recompute_every,
                 "online-batch: epochs between recomputing every example's loss without gradients (0: never)")
      ->capture_default_str();
  app.add_option("--score-source", o.selection.score_source,
                 "upper-bound, loss: presample (score B examples each step) or history (each example's score from its "
                 "last training pass, no extra forward; as the -history samplers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"presample", "history"}));
  app.add_option("--presample-smoothing", o.selection.presample_smoothing,
                 "upper-bound, loss, gradient-norm with pre-sampled scores: draw with p_i proportional to s_i + C "
                 "(the reference's additive smoothing; its scripts use 1)")
      ->capture_default_str();
  app.add_option("--diagnose-scores", o.diagnose_scores_every,
                 "every N steps, on a fresh pre-sample of --presample examples, log the Spearman correlation of the "
                 "upper-bound and loss scores with the exact gradient norms and the variance of sampling by each "
                 "relative to uniform (off the training clock; costs B one-example backward passes)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--score-smoothing", o.selection.score_smoothing,
                 "history scores: draw with p_i proportional to s_i + smoothing x mean(s)")
      ->capture_default_str();
  app.add_option("--history-refresh", o.selection.history_refresh,
                 "history scores: steps between rebuilding the sampling distribution from the score table")
      ->capture_default_str();
  app.add_option("--score-precision", o.score_precision,
                 "f32|bf16: precision of the selectors' no-gradient scoring passes (bf16: tensor cores on the GPU; "
                 "emulated and no faster on the CPU)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--prune-ratio", o.selection.prune_ratio,
                 "infobatch: r, the share of well-learned examples (score below the mean) pruned each epoch")
      ->capture_default_str();
  app.add_option("--anneal", o.selection.anneal,
                 "infobatch: delta, the share of the budget after which epochs train on the full data")
      ->capture_default_str();
  app.add_option("--sb-history", o.selection.sb_history,
                 "selective-backprop: R, the recent losses a candidate's percentile is taken among")
      ->capture_default_str();
  app.add_option("--sb-beta", o.selection.sb_beta, "selective-backprop: keep with probability percentile^beta")
      ->capture_default_str();
  app.add_flag("--sb-stale", o.selection.sb_stale,
               "selective-backprop: losses of each example's last training pass instead of a fresh forward pass");
  // CREST (sampling/crest.h; defaults are the reference's, Note [crest defaults]).
  CrestOptions& crest = o.selection.crest;
  app.add_option("--crest-subsets", crest.subsets, "CREST: P, random subsets (mini-batch coresets) at the first selection")
      ->capture_default_str();
  app.add_option("--crest-subset-size", crest.subset_size, "CREST: r, examples per random subset (0: max(1% of N, 4b))")
      ->capture_default_str();
  app.add_option("--crest-check-interval", crest.check_interval, "CREST: T1 until the curvature adapts it")
      ->capture_default_str();
  app.add_option("--crest-tau", crest.tau, "CREST: select again when |L - F| > tau L")->capture_default_str();
  app.add_option("--crest-interval-mul", crest.interval_mul, "CREST: h in T1 = ceil(h |H_0| / |H_t|)")
      ->capture_default_str();
  app.add_option("--crest-subsets-mul", crest.subsets_mul, "CREST: b in P = min(ceil(b T1), E), E its epoch")
      ->capture_default_str();
  app.add_option("--crest-beta1", crest.beta1, "CREST: moving-average factor of the gradient")->capture_default_str();
  app.add_option("--crest-beta2", crest.beta2, "CREST: moving-average factor of the squared Hessian diagonal")
      ->capture_default_str();
  app.add_option("--crest-train-frac", crest.train_frac,
                 "CREST: its epoch E is ceil(floor(f N) / b) steps, the unit of the warm-up, the cap on P and the "
                 "drops (the reference's --train_frac)")
      ->capture_default_str();
  app.add_option("--crest-warmup-epochs", crest.warmup_epochs,
                 "CREST: uniform batches for this many epochs E before the first selection (the reference: 1)")
      ->capture_default_str();
  app.add_flag("--drop-learned", crest.drop_learned, "CREST: drop learned examples (by --drop-rule)");
  app.add_option("--drop-rule", crest.drop_rule,
                 "CREST: reference (at least one recorded loss and none above alpha, all-or-nothing guards) or window "
                 "(the last --drop-window losses all below alpha, guards that drop up to their limits)")
      ->capture_default_str()
      ->check(CLI::IsMember({"reference", "window"}));
  app.add_option("--drop-alpha", crest.drop_alpha, "CREST: alpha, the loss below which an example is learned")
      ->capture_default_str();
  app.add_option("--drop-window", crest.drop_window,
                 "CREST: loss slots per example (reference: one per epoch E; window: the losses that must all be "
                 "below alpha)")
      ->capture_default_str();
  app.add_option("--drop-interval", crest.drop_interval, "CREST: steps between drops (0: 20 epochs E)")
      ->capture_default_str();
  app.add_option("--min-active", crest.min_active, "CREST: never fewer active examples (0: 80% of N)")
      ->capture_default_str();
  app.add_option("--lr", lr, "base learning rate (default 0.05 with SGD, 0.001 with Adam and AdamW)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lr-schedule", o.schedule,
                 "constant|step|time|cosine: step and time multiply by gamma at milestones (step counts, budget fractions)")
      ->capture_default_str();
  app.add_option("--lr-milestones", o.milestones,
                 "budget fractions (time) or step counts (step), comma-separated (default 50% and 80% of the run)")
      ->delimiter(',');
  app.add_option("--lr-gamma", o.gamma, "factor applied at each milestone")->capture_default_str();
  app.add_option("--optimizer", o.optimizer,
                 "sgd|adam|adamw: SGD with momentum, Adam (L2 weight decay) or AdamW (decoupled weight decay)")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  app.add_option("--momentum", o.sgd.momentum, "SGD momentum")->capture_default_str();
  app.add_flag("--nesterov", o.sgd.nesterov, "Nesterov momentum (SGD)");
  app.add_option("--weight-decay", weight_decay,
                 "weight decay: L2 for SGD and Adam, decoupled for AdamW (default 0, 0.01 with AdamW)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--adam-beta1", o.adam.beta1, "Adam/AdamW: decay of the gradient's moving average")
      ->capture_default_str();
  app.add_option("--adam-beta2", o.adam.beta2, "Adam/AdamW: decay of the squared gradient's moving average")
      ->capture_default_str();
  app.add_option("--adam-eps", o.adam.eps, "Adam/AdamW: added to the root of the second moment")->capture_default_str();
  app.add_option("--clip-grad-norm", o.clip_grad_norm,
                 "clip the gradients' total 2-norm to this before each step (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sequence", o.sequence,
                 "pixels: train on each image as a sequence of its H*W pixels, one value per step (MNIST, "
                 "Fashion-MNIST; models read it as [1, H*W, 1])");
  app.add_flag("--permute", o.permute, "with --sequence pixels: in a fixed random order derived from --seed");
  app.add_option("--iterations", o.iterations, "stop after N steps (each sampler)");
  app.add_option("--time-budget", o.time_budget_s,
                                "seconds of training per sampler (selection counted, evaluation not)")
                     ->capture_default_str();
  app.add_option("--example-budget", o.example_budget,
                     "stop after N backpropagated examples per sampler (an equal-data budget, e.g. 10 epochs = 10 N)")
          ->check(CLI::NonNegativeNumber);
  app.add_option("--device", device_name,
                 "auto|cpu|cuda|cuda:N (under mpirun, auto and cuda take the GPU of the process's local rank)")
      ->capture_default_str();
  app.add_option("--selection", o.selection_mode,
                 "under mpirun -np P: global (one selection of P b examples, split over the processes: as one "
                 "process with batch P b and pre-sample P B) or local (each process selects b of its own shard)")
      ->capture_default_str()
      ->check(CLI::IsMember({"global", "local"}));
  app.add_option("--bucket-mb", cl.bucket_mb,
                 "under mpirun: MiB per gradient bucket reduced while the backward pass runs (the first 1 MiB)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "seed of initialisation, sampling and the evaluation subset")->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "evaluate every N steps (default: ten times per run)");
  app.add_option("--train-eval-size", o.train_eval_size,
                 "training loss is reported on a fixed random subset of this many training examples")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--test-eval-size", o.test_eval_size,
                 "evaluate on the first N test examples (default: all); for slow models on a CPU")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log", log_path, "write JSON lines, one per evaluation, the last with \"final\": true");
  app.add_flag("--quiet", quiet, "print only the final summary");
  app.add_option("--checkpoint", o.checkpoint, "write a checkpoint (safetensors) here at the end of the run");
  app.add_option("--checkpoint-every", o.checkpoint_every, "also every N steps")->check(CLI::NonNegativeNumber);
  app.add_option("--dump-selection", o.dump_selection,
                 "at the end of the run write per-example statistics (times trained, last weight, last score, "
                 "pruned/dropped) as CSV; with several samplers FILE gets each sampler's name before its extension");
  app.add_option("--resume", o.resume,
                 "continue the run saved in this checkpoint; model, sampler, optimizer and sequence view are "
                 "taken from it unless given. auto: continue from --checkpoint FILE (or the newest checkpoint of "
                 "--run-dir) when it exists, else start afresh: the same command for the first start and every "
                 "requeue");
  app.add_option("--run-dir", cl.run_dir,
                 "one folder per run: options.json (every option, resolved), log.jsonl, checkpoints/step-N"
                 ".safetensors and summary.txt; one --sampler")
      ->check(CLI::NonexistentPath | CLI::ExistingDirectory);
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "with --run-dir: keep the newest K checkpoints")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--init-from", o.init_from, "start from this checkpoint's weights (fine-tuning)");
  app.add_flag("--reset-head", o.reset_head, "with --init-from: a new classifier for this data set's classes");
}

// After parsing: the defaults that depend on other flags, on the checkpoint being resumed or on the device, and the
// checks that span several flags.
void resolve_defaults(const CLI::App& app, CommandLine& cl, Device device) {
  TrainOptions& o = cl.o;
  std::string& samplers = cl.samplers;
  const float tau_th = cl.tau_th, lr = cl.lr, weight_decay = cl.weight_decay;
  auto given = [&](const char* flag) { return app.get_option(flag)->count() > 0; };
  if (!cl.run_dir.empty()) {  // Note [run folders]
    SIEVE_CHECK(!given("--log") && !given("--checkpoint"), "--run-dir DIR writes its log and checkpoints in DIR: "
                "give no --log or --checkpoint with it");
    SIEVE_CHECK(split(samplers, ',').size() == 1, "--run-dir holds one run: give one --sampler");
    cl.log_path = cl.run_dir + "/log.jsonl";
    o.checkpoint_dir = cl.run_dir + "/checkpoints";
  }
  if (o.resume == "auto") {  // Note [interrupts]: the same command starts a run and continues it
    std::string latest;
    if (!cl.run_dir.empty()) {
      const auto saved = list_step_checkpoints(o.checkpoint_dir);
      if (!saved.empty()) latest = saved.back().second.string();
    } else {
      SIEVE_CHECK(!o.checkpoint.empty(), "--resume auto continues from --checkpoint FILE or --run-dir DIR: give one");
      if (std::filesystem::exists(o.checkpoint)) latest = o.checkpoint;
    }
    o.resume = latest;
    cl.resuming_auto = !latest.empty();
    // The command is the one that wrote the checkpoint: its options (defaults included) must match the checkpoint's,
    // nothing is taken from it.
    if (cl.resuming_auto) cl.resumed.emplace(load_checkpoint(o.resume));
  } else if (!o.resume.empty()) {
    // A resume continues a run: what the checkpoint names (Note [checkpoint contents]) is taken from it unless given,
    // and a value given that differs is refused when the checkpoint is loaded.
    const CheckpointState& saved = cl.resumed.emplace(load_checkpoint(o.resume));
    if (!given("--model")) o.model = saved.get_string("model");
    if (!given("--sampler")) samplers = saved.get_string("sampler");
    if (!given("--optimizer") && saved.has("optimizer")) o.optimizer = saved.get_string("optimizer");
    if (!given("--sequence") && DataDescription::in_checkpoint(saved)) {
      const DataDescription data = DataDescription::from_checkpoint(saved, o.resume);
      if (data.sequence == "pixels") {
        o.sequence = "pixels";
        o.permute = !data.pixel_order.empty();
      }
    }
  }
  // --iterations or --example-budget alone: no time limit.
  if ((given("--iterations") || given("--example-budget")) && !given("--time-budget")) o.time_budget_s = 0;
  // Milestones by default: the reference's 50% and 80% of the run, in the schedule's unit.
  if (!given("--lr-milestones")) {
    if (o.schedule == "time") o.milestones = {0.5, 0.8};
    if (o.schedule == "step" && o.iterations >= 5)
      o.milestones = {static_cast<double>(o.iterations / 2), static_cast<double>(o.iterations * 4 / 5)};
  }
  if (tau_th > 0) o.selection.tau_th = tau_th;
  // Note [lstm defaults]: recurrent models train with Adam and gradient-norm clipping at 1 unless told otherwise:
  // SGD at the MLP's rate 0.05 with momentum 0.9 made no progress on 784-step sequences in a minute (loss 2.27 after
  // 36 steps, up and down), Adam at 0.001 with clipping brought it from 2.31 to 1.42 in two minutes (README).
  const bool recurrent = parse_model_spec(o.model).kind == "lstm";
  if (recurrent && !given("--optimizer")) o.optimizer = "adam";
  if (recurrent && !given("--clip-grad-norm")) o.clip_grad_norm = 1.f;
  // Defaults that depend on the optimizer: PyTorch's for Adam (lr 1e-3) and AdamW (weight decay 0.01).
  const bool lr_given = given("--lr");
  const bool decay_given = given("--weight-decay");
  if (o.optimizer == "sgd") {
    if (lr_given) o.sgd.lr = lr;
    if (decay_given) o.sgd.weight_decay = weight_decay;
    for (const char* flag : {"--adam-beta1", "--adam-beta2", "--adam-eps"})
      SIEVE_CHECK(!given(flag), flag, " applies to --optimizer adam or adamw, not sgd");
  } else {
    o.adam.lr = lr_given ? lr : AdamOptions{}.lr;
    o.adam.weight_decay = decay_given ? weight_decay : o.optimizer == "adamw" ? 0.01f : 0.f;
    for (const char* flag : {"--momentum", "--nesterov"})
      SIEVE_CHECK(!given(flag), flag, " applies to --optimizer sgd, not ", o.optimizer);
  }
  SIEVE_CHECK(!o.permute || parse_sequence_view(o.sequence) != SequenceView::None,
              "--permute reorders a sequence view: give --sequence pixels with it");
  SIEVE_CHECK(!o.augment || parse_sequence_view(o.sequence) == SequenceView::None,
              "--augment crops and flips images; it does not apply to --sequence ", o.sequence);
  o.tf32 = !cl.no_tf32;
  o.winograd = !cl.no_winograd;
  o.buckets.bucket_bytes = static_cast<int64_t>(cl.bucket_mb * (1 << 20));
  SIEVE_CHECK(!o.reset_head || !o.init_from.empty(), "--reset-head needs --init-from CHECKPOINT");
  SIEVE_CHECK(o.init_from.empty() || o.resume.empty(), "--init-from starts a new run and --resume continues one: "
              "give one of them");
  SIEVE_CHECK(o.checkpoint_every == 0 || !o.checkpoint.empty() || !cl.run_dir.empty(),
              "--checkpoint-every needs --checkpoint FILE or --run-dir DIR");

  // Note [lstm defaults], continued: on a CPU, evaluating 10 000 sequences of 784 steps takes minutes; recurrent
  // models are evaluated on 1 000 training and 1 000 test examples there unless the sizes are given.
  if (recurrent && device.is_cpu()) {
    if (!given("--train-eval-size")) o.train_eval_size = 1000;
    if (!given("--test-eval-size")) o.test_eval_size = 1000;
  }
}

// run.csv -> run-upper-bound.csv: one selection dump per sampler, under the name its records carry.
std::string dump_path_for(const std::string& dump, const std::string& tag) {
  const size_t slash = dump.find_last_of('/');
  const size_t dot = dump.find_last_of('.');
  const bool has_extension = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return has_extension ? dump.substr(0, dot) + "-" + tag + dump.substr(dot) : dump + "-" + tag;
}

// The lines before the first run: the model, the selection, the optimizer, the evaluation and the budget.
void print_banner(const CommandLine& cl, const std::vector<std::string>& names, const Trainer& trainer,
                  const DataSplits& data) {
  const TrainOptions& o = cl.o;
  std::cout << "model: " << o.model << " (" << trainer.model().parameter_count() << " parameters); b = "
            << o.selection.batch;
  // B and τ_th mean something to the importance samplers only.
  if (o.selection.score_source == "presample" &&
      std::any_of(names.begin(), names.end(),
                  [](const std::string& n) { return n == "loss" || n == "upper-bound" || n == "gradient-norm"; }))
    std::cout << ", B = " << o.selection.presample << ", tau_th = "
              << (o.selection.tau_th ? *o.selection.tau_th : default_tau_th(o.selection.presample, o.selection.batch));
  std::cout << "; " << o.optimizer << " lr " << (o.optimizer == "sgd" ? o.sgd.lr : o.adam.lr);
  if (o.clip_grad_norm > 0) std::cout << ", gradient norm clipped to " << o.clip_grad_norm;
  if (!o.sequence.empty()) std::cout << "; sequence " << o.sequence << (o.permute ? " (permuted)" : "");
  std::cout << "; evaluated on " << std::min(o.train_eval_size, data.train.size()) << " training and "
            << (o.test_eval_size > 0 ? std::min(o.test_eval_size, data.test.size()) : data.test.size())
            << " test examples";
  std::cout << "; budget ";
  if (o.time_budget_s > 0) std::cout << o.time_budget_s << " s";
  if (o.iterations > 0) std::cout << (o.time_budget_s > 0 ? " or " : "") << o.iterations << " steps";
  if (o.example_budget > 0)
    std::cout << (o.time_budget_s > 0 || o.iterations > 0 ? " or " : "") << o.example_budget << " examples";
  std::cout << " per sampler\n";
  if (trainer.data().train.device().is_cpu() && !cpu_blas_advice().empty())
    std::cout << "note: " << cpu_blas_advice() << "\n";
}

// Note [run folders]: `--run-dir DIR` keeps one run in one folder: options.json (below: every option as resolved,
// defaults included, with sieve's version and commit), log.jsonl, checkpoints/step-N.safetensors (the newest
// --keep-checkpoints of them; `--resume auto` takes the newest) and summary.txt (the final table). apps/compare-samplers
// gives each sampler, budget and seed such a folder and skips the folders whose log holds a final record.
nlohmann::json options_json(const CommandLine& cl, const std::vector<std::string>& names, const Communicator& comm) {
  const TrainOptions& o = cl.o;
  const SelectorOptions& s = o.selection;
  const CrestOptions& c = s.crest;
  // A float as the shortest decimal that reads back as it (0.9, not 0.8999999761581421).
  auto f = [](float v) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    return std::strtod(std::string(text, end).c_str(), nullptr);
  };
  nlohmann::json j = {
      {"sieve_version", SIEVE_VERSION}, {"sieve_commit", SIEVE_COMMIT}, {"data", cl.data_spec},
      {"device", cl.device_name}, {"processes", comm.size()}, {"selection", o.selection_mode},
      {"bucket_mb", cl.bucket_mb}, {"model", o.model}, {"sampler", names}, {"seed", o.seed},
      {"batch", s.batch}, {"presample", s.presample}, {"tau_th", s.tau_th ? nlohmann::json(f(*s.tau_th)) : nullptr},
      {"tau_ema", f(s.tau_ema)}, {"srs_ratio", s.subset_ratio}, {"selection_pressure", s.selection_pressure},
      {"resort_every", s.resort_every}, {"recompute_every", s.recompute_every}, {"score_source", s.score_source},
      {"score_smoothing", f(s.score_smoothing)}, {"presample_smoothing", f(s.presample_smoothing)},
      {"history_refresh", s.history_refresh}, {"prune_ratio", s.prune_ratio}, {"anneal", s.anneal},
      {"sb_history", s.sb_history}, {"sb_beta", f(s.sb_beta)}, {"sb_stale", s.sb_stale},
      {"crest", {{"subsets", c.subsets}, {"subset_size", c.subset_size}, {"check_interval", c.check_interval},
                 {"tau", f(c.tau)}, {"interval_mul", f(c.interval_mul)}, {"subsets_mul", f(c.subsets_mul)},
                 {"beta1", f(c.beta1)}, {"beta2", f(c.beta2)}, {"train_frac", f(c.train_frac)},
                 {"warmup_epochs", f(c.warmup_epochs)}, {"drop_learned", c.drop_learned}, {"drop_rule", c.drop_rule},
                 {"drop_alpha", f(c.drop_alpha)}, {"drop_window", c.drop_window}, {"drop_interval", c.drop_interval},
                 {"min_active", c.min_active}}},
      {"optimizer", o.optimizer}, {"lr", f(o.optimizer == "sgd" ? o.sgd.lr : o.adam.lr)},
      {"momentum", f(o.sgd.momentum)}, {"nesterov", o.sgd.nesterov},
      {"weight_decay", f(o.optimizer == "sgd" ? o.sgd.weight_decay : o.adam.weight_decay)},
      {"adam_beta1", f(o.adam.beta1)}, {"adam_beta2", f(o.adam.beta2)}, {"adam_eps", f(o.adam.eps)},
      {"clip_grad_norm", f(o.clip_grad_norm)}, {"lr_schedule", o.schedule}, {"lr_milestones", o.milestones},
      {"lr_gamma", f(o.gamma)}, {"iterations", o.iterations}, {"time_budget_s", o.time_budget_s},
      {"example_budget", o.example_budget}, {"eval_every", o.eval_every}, {"train_eval_size", o.train_eval_size},
      {"test_eval_size", o.test_eval_size}, {"augment", o.augment}, {"tf32", o.tf32}, {"winograd", o.winograd},
      {"cudnn_benchmark", o.cudnn_benchmark},
      {"cuda_graphs", o.cuda_graphs},
      {"mixed_precision", o.mixed_precision.empty() ? "none" : o.mixed_precision},
      {"score_precision", o.score_precision.empty() ? "f32" : o.score_precision}, {"sequence", o.sequence},
      {"permute", o.permute}, {"checkpoint_every", o.checkpoint_every}, {"keep_checkpoints", o.keep_checkpoints},
      {"resume", o.resume}, {"init_from", o.init_from}, {"reset_head", o.reset_head},
      {"diagnose_scores", o.diagnose_scores_every}, {"dump_selection", o.dump_selection}};
  return j;
}

int run(int argc, char** argv) {
  CLI::App app{
      "sieve-train: train a network choosing which samples each step computes on.\n"
      "With no options it trains an MLP on Fashion-MNIST twice, with uniform sampling and with upper-bound\n"
      "importance sampling (Katharopoulos & Fleuret 2018, Algorithm 1), for the same wall-clock budget, and\n"
      "prints both results side by side."};
  CommandLine cl;
  register_options(app, cl);
  install_stop_handlers();  // Note [interrupts]
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (g_env.rank == 0) return app.exit(e);
    std::ostringstream ignored;  // every rank parses the same command line: one of them speaks
    return app.exit(e, ignored, ignored);
  }
  const Device device = rank_device(cl.device_name, g_env);
  resolve_defaults(app, cl, device);
  g_comm = make_communicator(g_env, device);
  Communicator& comm = *g_comm;
  const TrainOptions& o = cl.o;
  // Rank 0 prints, logs and writes the dumps (the trainer writes its checkpoints, Note [data-parallel checkpoints]).
  const bool quiet = cl.quiet || !comm.is_root();
  const bool root = comm.is_root();
  const std::string log_path = root ? cl.log_path : std::string();
  const std::vector<std::string> names = split(cl.samplers, ',');
  SIEVE_CHECK(!names.empty(), "--sampler: no sampler given");
  SIEVE_CHECK(names.size() == 1 || (o.checkpoint.empty() && o.resume.empty()),
              "--checkpoint and --resume take a single --sampler (", names.size(), " given)");
  // Reject bad names before the data are loaded.
  for (const auto& name : names) make_selector(name, o.selection);
  parse_model_spec(o.model);
  parse_sequence_view(o.sequence);

  // Refused now rather than after the runs: the dump is written (to a temporary file, then renamed) in its folder.
  if (!o.dump_selection.empty() && root) check_writable_folder("--dump-selection", o.dump_selection);
  if (!cl.run_dir.empty() && root) {  // Note [run folders]
    std::filesystem::create_directories(o.checkpoint_dir);
    write_text_file(cl.run_dir + "/options.json", "options",
                    [&](std::ostream& out) { out << options_json(cl, names, comm).dump(2) << "\n"; });
  }
  std::ofstream log;
  if (!log_path.empty()) {
    // A resumed run continues its log: the records after the checkpoint's step (evaluated before the run was
    // stopped, but no longer part of it) are dropped, and the new ones appended.
    const bool resumed = cl.resumed.has_value() && std::filesystem::exists(log_path);
    if (resumed) keep_records_until(log_path, cl.resumed->get_int("step"));
    log.open(log_path, resumed ? std::ios::app : std::ios::trunc);
    SIEVE_CHECK(log.good(), log_path, ": cannot open for writing");
  }

  DataSplits data = load_dataset(parse_data_spec(cl.data_spec));
  data.train = data.train.to(device);
  data.test = data.test.to(device);
  if (!quiet) {
    std::cout << "data: " << data.train.name << ", " << data.train.size() << " training and " << data.test.size()
              << " test examples, on " << to_string(device);
    if (comm.backend() != "local")
      std::cout << "; " << comm.size() << " process" << (comm.size() > 1 ? "es" : "") << " (" << comm.backend()
                << "), --selection " << o.selection_mode
                << ", " << o.selection.batch * comm.size() << " examples per step";
    std::cout << "\n";
  }

  std::vector<EvalRecord> finals;
  for (const auto& name : names) {
    TrainOptions run_options = o;
    run_options.sampler = name;
    if (!o.dump_selection.empty() && names.size() > 1)
      run_options.dump_selection = dump_path_for(o.dump_selection, make_selector(name, o.selection)->name());
    Trainer trainer(run_options, data, device, g_comm);
    trainer.set_interrupt([] { return static_cast<int>(g_signal); });
    if (!o.init_from.empty()) trainer.init_from(o.init_from, o.reset_head);
    if (!o.resume.empty()) {
      trainer.resume(*cl.resumed, o.resume);
      if (!quiet) std::cout << "resumed " << o.resume << " at step " << trainer.steps() << "\n";
    }
    if (!quiet && finals.empty()) print_banner(cl, names, trainer, data);
    auto write_log = [&](const std::string& line) {
      if (!log.is_open()) return;
      log << line << "\n" << std::flush;
      SIEVE_CHECK(log.good(), log_path, ": writing the log failed (disk full, or a file-size limit?)");
    };
    const std::string sampler_name = trainer.selector().name();
    finals.push_back(trainer.run(
        [&](const EvalRecord& r) {
          write_log(to_json_line(r));
          if (!quiet) print_progress(r, o);
        },
        [&](int64_t step, double time_s, const ScoreDiagnostics& d) {
          write_log(diagnostics_json_line(sampler_name, step, time_s, d));
          if (!quiet) print_diagnostics(sampler_name, step, d);
        }));
    // One line for the diverged run, and the next sampler runs (Note [divergence]).
    if (finals.back().diverged && root)
      std::fprintf(stderr, "sieve-train: error: %s\n", divergence_message(finals.back()).c_str());
    if (finals.back().interrupted) {  // Note [interrupts]: no further sampler
      const EvalRecord& r = finals.back();
      const std::string saved = trainer.checkpoint_path();
      if (root)
        std::fprintf(stderr, "sieve-train: %s after step %lld: %s\n", r.signal.c_str(),
                     static_cast<long long>(r.step),
                     saved.empty() ? "no checkpoint written (give --checkpoint FILE or --run-dir DIR)"
                                   : ("checkpoint " + saved + "; continue with --resume " +
                                      (cl.run_dir.empty() ? saved : std::string("auto"))).c_str());
      return 128 + r.signal_number;
    }
  }
  if (root) print_summary(std::cout, finals, o);
  if (root && !cl.run_dir.empty())
    write_text_file(cl.run_dir + "/summary.txt", "summary", [&](std::ostream& out) { print_summary(out, finals, o); });
  const bool diverged = std::any_of(finals.begin(), finals.end(), [](const EvalRecord& r) { return r.diverged; });
  return diverged ? kExitDiverged : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) then fails a write with EFBIG, which the checkpoint and log writers report in one
  // line, leaving the previous checkpoint intact (Note [atomic save]); by default SIGXFSZ would kill the process.
  use_better_blas_kernels(argv);  // Note [openblas kernels]
  std::signal(SIGXFSZ, SIG_IGN);
  std::string message;
  try {
    g_env = DistributedEnvironment::detect();
    return run(argc, argv);
  } catch (const std::exception& e) {  // sieve::Error among them
    message = e.what();
  }
  if (g_env.size > 1) {
    // One rank failed: it says why, naming itself, and ends every rank (the others may wait in a collective).
    std::fprintf(stderr, "sieve-train: error: rank %d: %s\n", g_env.rank, message.c_str());
    std::fflush(stderr);
    if (g_comm) g_comm->abort(1);
    return 1;
  }
  std::fprintf(stderr, "sieve-train: error: %s\n", message.c_str());
  return 1;
}

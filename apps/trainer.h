// The training loop of sieve-train, sieve-bench and the end-to-end tests: one model, one selector, an optimizer, and
// evaluation on a fixed footing (docs/ARCHITECTURE.md, "One training step").
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/distributed.h"
#include "core/ops/precision.h"
#include "core/random.h"
#include "data/dataset.h"
#include "data/description.h"
#include "layers/module.h"
#include "optim/adam.h"
#include "optim/distributed.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "sampling/make_selector.h"
#include "sampling/score_diagnostics.h"

namespace sieve {

struct TrainOptions {
  std::string model = "mlp";
  std::string sampler = "upper-bound";
  SelectorOptions selection;  // batch b, presample B, tau_th, tau_ema (its seed is derived from `seed`)
  std::string optimizer = "sgd";  // "sgd", "adam" (L2 weight decay) or "adamw" (decoupled weight decay)
  SgdOptions sgd{0.05f, 0.9f, 0.f, false};  // with "sgd"; sgd.lr is the schedule's base rate
  AdamOptions adam;                  // with "adam" and "adamw" (decoupled is set from the name); adam.lr the base rate
  float clip_grad_norm = 0;          // > 0: clip the gradients' total 2-norm to this before each step (optim/clip.h)
  std::string sequence;              // "" or "pixels": train on the pixel-sequence view (data/sequence.h)
  bool permute = false;              // with "pixels": in a fixed permutation derived from `seed`
  // Note [constant default]: samplers are compared at a constant learning rate by default. A decaying rate also
  // shrinks gradient noise, the very thing importance sampling reduces, and confounds the comparison; the
  // reference's time schedule is one flag away (--lr-schedule time). README "Measured" has both.
  std::string schedule = "constant";  // see optim/schedule.h
  std::vector<double> milestones;
  float gamma = 0.2f;
  int64_t iterations = 0;    // stop after this many steps (0: no step limit)
  double time_budget_s = 0;  // stop after this much training time (0: no time limit)
  // Stop once this many examples have been backpropagated (0: no limit): the budget of the coreset and subset papers,
  // where methods are compared at an equal fraction of the examples full training computes gradients on.
  int64_t example_budget = 0;
  int64_t eval_every = 0;    // evaluate every N steps; 0: ten times per run
  int64_t train_eval_size = 10000;  // the fixed training subset on which the training loss is reported
  int64_t test_eval_size = 0;       // evaluate on the first N test examples (0: all); for slow models on a CPU
  uint64_t seed = 0;
  bool augment = false;        // random crop (4-pixel padding) and horizontal flip of training batches
  bool tf32 = true;            // TF32 tensor cores for convolutions (core/ops/conv2d.h, Note [conv tf32])
  bool winograd = true;        // oneDNN may run CPU convolutions as Winograd (core/ops/conv2d.h, Note [conv winograd])
  bool cudnn_benchmark = false;  // convolution algorithms timed by cuDNN once per shape (set_conv_benchmark)
  bool cuda_graphs = false;  // the training pass captured once per batch size and replayed (Note [captured steps])
  std::string mixed_precision;  // "" or "none": float32 products; "bf16" (core/ops/precision.h, Note [bf16 products])
  // "" or "f32": selectors' no-gradient scoring passes at the training precision; "bf16": those passes multiply in
  // bf16 (Note [bf16 products]; tensor cores on the GPU, emulated and no faster on the CPU). Training is unaffected.
  std::string score_precision;
  std::string dump_selection;  // at the end of the run, write per-example selection statistics here (CSV)
  std::string checkpoint;      // write a checkpoint here every `checkpoint_every` steps and at the end
  int64_t checkpoint_every = 0;
  // With a run folder (sieve-train --run-dir): checkpoints go to checkpoint_dir/step-N.safetensors instead, and only
  // the newest keep_checkpoints of them are kept (Note [run folders] in apps/sieve_train.cpp).
  std::string checkpoint_dir;
  int64_t keep_checkpoints = 2;
  std::string resume;          // continue the run saved in this checkpoint
  std::string init_from;       // start from this checkpoint's weights (a new run: fresh optimizer and selector)
  bool reset_head = false;     // with init_from: keep the new model's freshly initialised classifier
  // Every N steps (0: never), score diagnostics on a fresh uniform pre-sample of selection.presample examples
  // (sampling/score_diagnostics.h), outside the training clock (Note [score diagnostics] in apps/trainer.cpp).
  int64_t diagnose_scores_every = 0;
  // Data parallelism (a Communicator of more than one process): "global" or "local" selection, Note [data-parallel
  // selection] in apps/trainer.cpp; selection.batch and selection.presample are then each process's b and B.
  std::string selection_mode = "global";
  BucketOptions buckets;  // gradient buckets (Note [gradient buckets] in optim/distributed.h)
};

// One evaluation, as written to the JSON log.
struct EvalRecord {
  std::string sampler;
  int64_t step = 0;
  double time_s = 0;         // training time so far (evaluation excluded)
  double train_loss = 0;     // mean cross-entropy on the fixed training subset, evaluation mode
  double test_loss = 0;
  double test_accuracy = 0;  // in [0, 1]
  std::optional<double> tau; // the selector's τ, if it keeps one
  bool importance_on = false;
  double importance_fraction = 0;
  double lr = 0;
  int64_t examples = 0;      // examples trained on (forward and backward), b per step
  int64_t scored = 0;        // examples scored without gradients by the selector
  double selection_s = 0;    // training seconds spent inside the selector (select and observe), host clock
  double epochs = 0;         // examples / training-set size
  std::vector<std::pair<std::string, double>> selector_stats;  // Selector::stats(), e.g. SRS coverage, CREST's T1
  bool final = false;
  // The run stopped because its training loss was NaN or infinite at step diverged_step (counted from 1, as
  // `step`), with the value diverged_loss (Note [divergence]). Such a record is the run's final one.
  bool diverged = false;
  int64_t diverged_step = 0;
  double diverged_loss = 0;
  // The run stopped on a signal (Note [interrupts]) after step `step`: not final, no losses (written as null); the
  // checkpoint, if any, holds that step.
  bool interrupted = false;
  std::string signal;  // "SIGTERM", "SIGINT", "SIGUSR1"
  int signal_number = 0;
};
std::string to_json_line(const EvalRecord& r);
// "nan", "inf" or "-inf" for a non-finite value, else the number as the JSON log writes it.
std::string describe_value(double v);
// "<sampler> diverged at step N: training loss is nan", the one line sieve-train prints for a diverged record.
std::string divergence_message(const EvalRecord& r);
// "SIGTERM", "SIGINT", "SIGUSR1", ... for a signal number (the interrupted record's "signal").
std::string signal_name(int signal);
// The step-N.safetensors checkpoints of a run folder's checkpoint folder, by step, oldest first; none if it is absent.
std::vector<std::pair<int64_t, std::filesystem::path>> list_step_checkpoints(const std::string& folder);
// The log's record of --diagnose-scores: {"sampler", "step", "time_s", "score_diagnostics": {...}} (the fields of
// to_json(ScoreDiagnostics)); it has no "final" and no losses, and readers of evaluations skip it by its key.
std::string diagnostics_json_line(const std::string& sampler, int64_t step, double time_s, const ScoreDiagnostics& d);

// Note [fair clock]: a time budget counts the work the device ran, not only the work the host queued. After each step
// the clock records an event and waits for the one recorded after the step before, so at most one step is queued
// beyond the time it reads, for every selector alike, whether the selector waits on the device itself (importance
// sampling and CREST read values) or never does (uniform, SRS, online batch, InfoBatch); the synchronisation before an
// evaluation or a checkpoint then counts the last step. On the CPU every step has run when it returns.
class StepClock {
 public:
  explicit StepClock(Device device) : device_(device) {}
  void start(double seconds_so_far);  // the clock runs from here, continuing from seconds_so_far
  double after_step();                // call after queuing a step: waits for the step before, returns the seconds
  double synchronized();              // waits for all queued work, returns the seconds

 private:
  using Clock = std::chrono::steady_clock;
  Device device_;
  Clock::time_point start_;
  double offset_s_ = 0;
  DeviceEvent events_[2];
  int next_ = 0;
};

class Trainer {
 public:
  // `data` already on `device` (the Trainer keeps shallow copies; with options.sequence it builds the view of
  // both splits once, on the device). Throws sieve::Error on invalid options. With a communicator of several
  // processes (core/distributed.h) the trainer is one rank of a data-parallel run: every rank constructs it with
  // the same options and data, and calls the same methods in the same order (each may run collectives).
  Trainer(const TrainOptions& options, const DataSplits& data, Device device,
          std::shared_ptr<Communicator> comm = nullptr);
  // Where the diagnostics of options.diagnose_scores_every go, with the step after which they were taken.
  using DiagnosticsSink = std::function<void(int64_t step, double time_s, const ScoreDiagnostics&)>;
  ~Trainer();

  // One training step: select, gather, forward, weighted loss, backward (gradients averaged across the ranks of a
  // data-parallel run), gradient clipping, optimizer update.
  void step();
  // The selectors' scoring pass (ScoringContext::logits): logits [n, classes] of training examples `indices` (int32 on
  // the device) in evaluation mode, without gradients, at options.score_precision; counted as scored.
  Tensor scoring_logits(const Tensor& indices);
  // Losses and accuracy in evaluation mode without gradients.
  EvalRecord evaluate();
  // Trains until the step or time limit, evaluating on the way; on_record sees every record, the final one last.
  // With options.dump_selection, the per-example statistics are written at the end (write_selection_dump).
  // A run whose training loss turns NaN or infinite stops there (Note [divergence]): the final record has
  // `diverged` set, and no checkpoint is written after the bad step.
  EvalRecord run(const std::function<void(const EvalRecord&)>& on_record,
                 const DiagnosticsSink& on_diagnostics = nullptr);
  // Where run() asks, after every step, whether to stop: a function returning 0 to go on or the number of the
  // signal that asks it to stop (Note [interrupts]). It must be cheap and never wait (sieve-train reads a flag that
  // its signal handler sets). The run then ends after that step with a record marked `interrupted`, having written
  // its checkpoint when one is configured. Every rank of a data-parallel run stops after the same step.
  void set_interrupt(std::function<int()> pending_signal) { interrupt_ = std::move(pending_signal); }
  // The checkpoint the next save writes: options.checkpoint, or with options.checkpoint_dir the file of this step.
  std::string checkpoint_path() const;
  // Score diagnostics (sampling/score_diagnostics.h) on a fresh uniform pre-sample of selection.presample examples at
  // the current parameters; leaves the training state (model, selector, generators, counters) untouched.
  ScoreDiagnostics diagnose_scores();

  Module& model() { return *model_; }
  const Module& model() const { return *model_; }
  Selector& selector() { return *selector_; }
  Optimizer& optimizer() { return *optimizer_; }
  // The data trained and evaluated on: the given splits, or their sequence view.
  const DataSplits& data() const { return data_; }
  int64_t steps() const { return steps_; }
  // With --cuda-graphs: how many training and scoring passes are captured, one per size (Note [captured steps]).
  size_t captured_graphs() const { return training_graphs_.graphs.size() + scoring_graphs_.graphs.size(); }
  // Everything needed to continue exactly: model, optimizer, selector, generators, counters, training time.
  // In a data-parallel run every rank calls it and rank 0 writes the file (Note [data-parallel checkpoints]).
  void save_checkpoint(const std::string& path);
  void resume(const std::string& path);
  // The same from a checkpoint already read from `path` (named in messages).
  void resume(const CheckpointState& state, const std::string& path);
  // Copies a checkpoint's weights into the model; with reset_head the final classifier keeps its fresh values.
  void init_from(const std::string& path, bool reset_head);
  double training_seconds() const { return training_s_; }
  Communicator& communicator() { return *comm_; }
  // The examples one step trains on across all ranks: b times the number of processes.
  int64_t global_batch() const { return options_.selection.batch * world_; }
  // The first step whose training loss was not finite, and that loss, once it happened (reads the device's flag,
  // Note [divergence flag] in core/ops/nonfinite.h; waits for the queued steps on a GPU).
  std::optional<std::pair<int64_t, float>> divergence();
  // The share of the run's budget used so far (ScoringContext::progress).
  double budget_fraction() const;
  // CSV, one row per training example: example, label, times_trained, last_weight (of its last training step; empty
  // if never trained), then the selector's example_columns(). Needs options.dump_selection set before the run (the
  // counts are kept from the first step). Written to a temporary file and renamed.
  void write_selection_dump(const std::string& path);

 private:
  // The part of a step after the selection (Note [captured steps]): gather (augmented by `augment` when given),
  // forward, weighted loss, backward, clipping, update at the optimizer's rate; returns what the selector observes.
  struct PassOutputs {
    Tensor logits, labels, losses, loss;  // detached
  };
  PassOutputs training_pass(const Tensor& indices, const Tensor& weights, Generator* augment);
  struct CapturedPass;
  struct CapturedPasses {  // of one kind (training or scoring), by batch size, and the sizes met so far
    std::map<int64_t, std::unique_ptr<CapturedPass>> graphs;
    std::map<int64_t, int64_t> seen;
  };
  // The graph of `record` (which fills a CapturedPass's outputs from its inputs) for batches of n examples, captured
  // on the second pass of that size; null where passes of that size run uncaptured (the first, and sizes beyond
  // kMaxCapturedSizes).
  CapturedPass* captured_pass(CapturedPasses& passes, int64_t n, const std::function<void(CapturedPass&)>& record,
                              const char* what);
  CapturedPass* captured_training_pass(int64_t n);  // training_pass with the rate and augmentation cells
  void drop_captured_passes();  // before anything replaces the tensors the graphs use (resume, init_from)
  Progress progress() const;
  // The run's length in steps where it is set by --iterations or --example-budget (b examples a step); 0 otherwise.
  int64_t planned_steps() const;
  double evaluate_loss(const Dataset& d, double* accuracy);
  // Data parallelism (Note [data-parallel selection]).
  Tensor global_logits(const Tensor& indices);  // scored in parts by the ranks, gathered
  LossGradient global_loss_gradient(const Tensor& indices, const Tensor& weights);
  LossGradient loss_gradient(const Tensor& indices, const Tensor& weights);  // on this rank alone
  // Every rank's part (part_of) of n rows, gathered in rank order; `mine` begins with this rank's part (rows after
  // it, such as the weight-0 stand-in of an empty part, are left out).
  Tensor gather_parts(const Tensor& mine, int64_t n);
  void sync_buffers();                                // every module buffer from rank 0
  double agreed_time(double seconds);                 // rank 0's clock, with a time budget
  EvalRecord diverged_record();  // the final record of a diverged run
  EvalRecord record();           // a record of the counters and the selector's stats, without evaluating
  int agreed_signal();           // interrupt_'s answer, the same on every rank
  void save_and_rotate();        // the run's checkpoint (checkpoint_path), older ones beyond keep_checkpoints removed
  // The trainer's own part of a checkpoint, listed once for save_checkpoint and resume (`path` for messages).
  void archive_state(StateArchive& ar, const std::string& path);

  TrainOptions options_;
  DataSplits data_;
  Device device_;
  Dataset train_subset_;
  Dataset test_eval_;  // the test set, or its first test_eval_size examples
  DataDescription description_;  // what checkpoints record about the data (Note [data description])
  std::shared_ptr<Module> model_;
  std::unique_ptr<Selector> selector_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  ScoringContext context_;
  Generator augment_gen_;
  Generator diagnostics_gen_;  // the pre-samples of diagnose_scores(): a stream of its own
  int64_t steps_ = 0;
  int64_t examples_ = 0;
  int64_t scored_ = 0;
  double training_s_ = 0;
  double selection_s_ = 0;
  MatmulPrecision score_precision_ = MatmulPrecision::F32;
  Tensor trained_counts_;  // int32 [N], with dump_selection: how often each example was trained on
  Tensor last_weights_;    // float32 [N], with dump_selection: its weight at its last training step (NaN: never)
  Tensor diverged_step_;   // int64 [1] on the device: the first step with a non-finite loss, -1 while there is none
  Tensor diverged_loss_;   // float32 [1] on the device: that loss
  std::optional<std::pair<int64_t, float>> divergence_;  // read from the two above once set
  std::shared_ptr<Communicator> comm_;  // never null: local_communicator() in one process
  int rank_ = 0;
  int world_ = 1;
  bool distributed_ = false;      // a communicator other than the local one, even of one process
  bool local_selection_ = false;  // --selection local on such a communicator
  Tensor shard_;  // with local selection: int32 [N_r], this rank's training examples (i = rank mod processes)
  std::unique_ptr<GradientAverager> averager_;  // with more than one process
  std::function<int()> interrupt_;
  // --cuda-graphs (Note [captured steps]): the captured training and scoring passes, and the device cells the
  // captured kernels read: the learning rate and the augmentation stream's offset at the step's start.
  Tensor lr_cell_;       // float32 []
  Tensor augment_cell_;  // int64 [] (read as uint64)
  CapturedPasses training_graphs_, scoring_graphs_;  // after the cells they read: destroyed before them
};

}  // namespace sieve

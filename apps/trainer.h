// The training loop of sieve-train, sieve-bench and the end-to-end tests: one model, one selector, SGD, and
// evaluation on a fixed footing (DESIGN.md, "A training step").
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"
#include "layers/module.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "sampling/make_selector.h"

namespace sieve {

struct TrainOptions {
  std::string model = "mlp";
  std::string sampler = "upper-bound";
  SelectorOptions selection;  // batch b, presample B, tau_th, tau_ema (its seed is derived from `seed`)
  SgdOptions sgd{0.05f, 0.9f, 0.f, false};
  // Note [constant default]: samplers are compared at a constant learning rate by default. A decaying rate also
  // shrinks gradient noise, the very thing importance sampling reduces, and confounds the comparison; the
  // reference's time schedule is one flag away (--lr-schedule time). README "Measured" has both.
  std::string schedule = "constant";  // see optim/schedule.h
  std::vector<double> milestones;
  float gamma = 0.2f;
  int64_t iterations = 0;    // stop after this many steps (0: no step limit)
  double time_budget_s = 0;  // stop after this much training time (0: no time limit)
  int64_t eval_every = 0;    // evaluate every N steps; 0: ten times per run
  int64_t train_eval_size = 10000;  // the fixed training subset on which the training loss is reported
  uint64_t seed = 0;
  bool augment = false;        // random crop (4-pixel padding) and horizontal flip of training batches
  bool tf32 = true;            // TF32 tensor cores for convolutions (core/ops/conv2d.h, Note [conv tf32])
  std::string mixed_precision;  // "" or "none": float32 products; "bf16" (core/ops/precision.h, Note [bf16 products])
  std::string checkpoint;      // write a checkpoint here every `checkpoint_every` steps and at the end
  int64_t checkpoint_every = 0;
  std::string resume;          // continue the run saved in this checkpoint
  std::string init_from;       // start from this checkpoint's weights (a new run: fresh optimizer and selector)
  bool reset_head = false;     // with init_from: keep the new model's freshly initialised classifier
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
  bool final = false;
};
std::string to_json_line(const EvalRecord& r);

class Trainer {
 public:
  // `data` already on `device`. Throws sieve::Error on invalid options.
  Trainer(const TrainOptions& options, const DataSplits& data, Device device);
  ~Trainer();

  // One training step: select, gather, forward, weighted loss, backward, SGD update.
  void step();
  // Losses and accuracy in evaluation mode without gradients.
  EvalRecord evaluate();
  // Trains until the step or time limit, evaluating on the way; on_record sees every record, the final one last.
  EvalRecord run(const std::function<void(const EvalRecord&)>& on_record);

  Module& model() { return *model_; }
  Selector& selector() { return *selector_; }
  int64_t steps() const { return steps_; }
  // Everything needed to continue exactly: model, optimizer, selector, generators, counters, training time.
  void save_checkpoint(const std::string& path);
  void resume(const std::string& path);
  // Copies a checkpoint's weights into the model; with reset_head the final classifier keeps its fresh values.
  void init_from(const std::string& path, bool reset_head);
  double training_seconds() const { return training_s_; }

 private:
  Progress progress() const;
  double evaluate_loss(const Dataset& d, double* accuracy);

  TrainOptions options_;
  const DataSplits& data_;
  Device device_;
  Dataset train_subset_;
  Tensor eval_arange_;  // int32 0, 1, ..., kEvalChunk - 1 on the device
  std::shared_ptr<Module> model_;
  std::unique_ptr<Selector> selector_;
  std::unique_ptr<Sgd> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  ScoringContext context_;
  Generator augment_gen_;
  int64_t steps_ = 0;
  int64_t examples_ = 0;
  int64_t scored_ = 0;
  double training_s_ = 0;
};

}  // namespace sieve

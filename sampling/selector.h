// The Selector: the one seam where the selection methods differ (docs/ARCHITECTURE.md, "One training step").
//
// Each step the training loop asks the selector for a batch (example indices and per-example loss weights),
// trains on it, and shows the selector what the training forward pass saw. A selector never reaches into
// the model: to score candidates it calls ScoringContext::logits, a no-gradient forward pass.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "core/hvp.h"
#include "core/tensor.h"

namespace sieve {

struct ScoringContext {
  // Logits [n, classes] for int32 example indices [n] on the training device: no gradients, evaluation mode
  // (Note [scoring mode] in sampling/importance.h).
  std::function<Tensor(const Tensor& indices)> logits;
  Tensor labels;  // int32 [N] on the training device
  int64_t dataset_size = 0;
  Device device;
  // The share of the run's budget used so far, in [0, 1]: the largest of steps / --iterations, training seconds /
  // --time-budget and examples / --example-budget among the budgets set. The training loop updates it before each
  // select(); InfoBatch anneals to the full data set by it.
  double progress = 0;
  // In a data-parallel run with --selection local (Note [data-parallel selection] in apps/trainer.cpp), the mean over
  // the ranks of a host value that every rank computes at the same point: importance sampling's τ, CREST's check of
  // its quadratic model, so that all ranks switch together. Unset in one process and with --selection global, where
  // every rank computes the same value already; use rank_mean().
  std::function<double(double)> mean_over_ranks;
  double rank_mean(double value) const { return mean_over_ranks ? mean_over_ranks(value) : value; }

  // What CREST (sampling/crest.h) needs from the engine; other selectors leave them alone.
  // The model's parameters (float32, on the training device), in a fixed order.
  std::vector<Tensor> parameters;
  // The weighted mean cross-entropy Σ_i w_i ℓ_i / n (core's weighted_mean, as a training step) of examples
  // `indices` (int32 [n]) with weights (float32 [n]), and its gradient with respect to `parameters`, at their
  // current values: evaluation mode (Note [scoring mode]), un-augmented images. Returns fresh gradient tensors and
  // leaves every parameter's .grad dropped (zero_grad), so a selector may call it between training steps.
  // hessian_vector_product (core/hvp.h) calls it at perturbed parameters.
  std::function<LossGradient(const Tensor& indices, const Tensor& weights)> loss_gradient;
};

struct Selection {
  Tensor indices;  // int32 [b] on the training device
  Tensor weights;  // float32 [b]: the loss of example i is multiplied by weights[i]
};

class Selector {
 public:
  virtual ~Selector() = default;
  virtual std::string name() const = 0;
  virtual Selection select(const ScoringContext& ctx) = 0;
  // The training forward pass of `selection`: detached logits [b, classes], labels [b], per-example losses [b].
  virtual void observe(const Selection& selection, const Tensor& logits, const Tensor& labels, const Tensor& losses) {}
  // Named scalars for logs and progress lines, e.g. {"tau", 1.7}, {"importance_on", 1}.
  virtual std::vector<std::pair<std::string, double>> stats() const { return {}; }
  // Per-example columns for --dump-selection (apps/trainer.h): name and float32 [N] values on any device, e.g.
  // {"last_score", ...}, {"pruned", 0 or 1}. Called once at the end of a run; it may synchronise with the device.
  virtual std::vector<std::pair<std::string, Tensor>> example_columns() const { return {}; }
  // Checkpoints: everything a selector needs to continue exactly (generator positions, running estimates), as
  // metadata keys and tensors whose names start with `prefix` (core/checkpoint.h). Both run archive().
  void save_state(CheckpointState& state, const std::string& prefix) {
    StateArchive ar = StateArchive::writer(state, prefix);
    archive(ar);
  }
  void load_state(const CheckpointState& state, const std::string& prefix) {
    StateArchive ar = StateArchive::reader(state, prefix);
    archive(ar);
  }
  // Lists that state once, saving or loading it by the archive's mode (Note [state archive] in core/checkpoint.h);
  // after loading, checks that the values fit the selector's options.
  virtual void archive(StateArchive& ar) = 0;
};

}  // namespace sieve

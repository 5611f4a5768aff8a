// Evaluation of a classifier on a whole split, shared by the training loop's records and sieve-eval so that both
// report the same numbers for the same weights.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "layers/module.h"

namespace sieve {

struct ClassifierEvaluation {
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // in [0, 1]
  int64_t examples = 0;
  // With details only:
  int num_classes = 0;
  std::vector<int64_t> confusion;   // [true label][predicted class], row-major, num_classes x num_classes
  std::vector<int32_t> predictions; // the predicted class of each example, in order
  std::vector<float> losses;        // each example's cross-entropy
};

// Forwards `d` (on the model's device) in chunks of 500 examples without gradients, in the model's current mode
// (callers set evaluation mode). The mean loss is summed on the device and the accuracy counted exactly; with
// `details` the predictions, per-example losses and confusion matrix come back to the host as well, and loss and
// accuracy are the same numbers as without.
ClassifierEvaluation evaluate_classifier(Module& model, const Dataset& d, bool details = false);

}  // namespace sieve

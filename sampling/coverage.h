// Which examples a selector has served so far, kept on the training device: the coverage of the data set that Soft
// Random Sampling's analysis predicts (1 - e^(-r k) after k epochs of r N draws with replacement).
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace sieve {

class StateArchive;

class Coverage {
 public:
  // Marks `indices` (int32, on `device`) as seen out of `dataset_size` examples: one small kernel, no host read.
  // The flags are allocated on the first call (and moved to `device` after a load_state).
  void mark(const Tensor& indices, int64_t dataset_size, Device device);
  // Distinct examples seen so far; reads one count from the device (synchronises): for logs, not for every step.
  int64_t distinct() const;
  double fraction() const;  // distinct / N; 0 before the first mark
  int64_t dataset_size() const { return seen_.defined() ? seen_.numel() : 0; }

  // Its part of a selector's state (Note [state archive] in core/checkpoint.h).
  void archive(StateArchive& ar);

 private:
  Tensor seen_;      // int32 [N]: 1 where seen
  Tensor distinct_;  // int32, 0-d: the number of ones in seen_
};

}  // namespace sieve

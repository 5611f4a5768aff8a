// An optimizer's state (momentum, Adam's moments and step counts) in a checkpoint (core/checkpoint.h), under
// "optimizer." by default.
//
//   add_optimizer_state(s, sgd);            // Optimizer::state() under "optimizer."
//   sgd.load_state(optimizer_state(s));     // the same entries, prefix removed
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "optim/optimizer.h"

namespace sieve {

inline constexpr const char* kOptimizerPrefix = "optimizer.";

// Optimizer::state() under `prefix`, e.g. "optimizer.momentum.3".
void add_optimizer_state(CheckpointState& state, const Optimizer& optimizer,
                         const std::string& prefix = kOptimizerPrefix);

// The optimizer's entries with the prefix removed: what Optimizer::load_state takes.
inline std::vector<std::pair<std::string, Tensor>> optimizer_state(const CheckpointState& state,
                                                                   const std::string& prefix = kOptimizerPrefix) {
  return state.with_prefix(prefix);
}

}  // namespace sieve

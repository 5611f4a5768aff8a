// A module's parameters and buffers in a checkpoint (core/checkpoint.h), under their hierarchical names
// ("1.weight", as torch's state_dict names them), so that a Python user finds the weights where torch would.
//
//   CheckpointState s;
//   add_module_state(s, model);
//   save_checkpoint(path, s);
//   ...
//   load_module_state(load_checkpoint(path), model);
#pragma once

#include <string>

#include "core/checkpoint.h"
#include "layers/module.h"

namespace sieve {

// The module's parameters, then its buffers, under their hierarchical names with `prefix` before each.
void add_module_state(CheckpointState& state, const Module& module, const std::string& prefix = "");

// Copies the checkpoint's "<prefix><name>" into each of the module's parameters and buffers (any device). Every
// name must be present with the module's shape and dtype; all are checked before anything is copied, so on an error
// (which names the first mismatch) the module is untouched. Entries the module does not name (the optimizer's,
// a trainer's own) are left for others.
void load_module_state(const CheckpointState& state, Module& module, const std::string& prefix = "");

}  // namespace sieve

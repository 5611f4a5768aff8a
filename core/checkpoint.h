// Training checkpoints: a safetensors file (core/safetensors.h) holding named tensors and the scalars of a run
// (step, time, τ, generator positions) as metadata strings. What goes in is up to the layers above: a model's
// parameters and buffers under their module names (layers/module_state.h: "1.weight", as torch's state_dict names
// them), the optimizer's state under "optimizer." (optim/optimizer_state.h), a selector's tables and a trainer's
// counters. A user opens one from Python with safetensors.torch.load_file; sieve refuses a safetensors file that is
// not one of its checkpoints. core knows none of the layers above it.
//
//   CheckpointState s;
//   add_module_state(s, model);          // layers/module_state.h
//   add_optimizer_state(s, sgd);         // optim/optimizer_state.h
//   s.set_int("step", step);
//   s.set_generator("rng.sampler", gen);
//   save_checkpoint(path, s);
//   ...
//   CheckpointState r = load_checkpoint(path);
//   load_module_state(r, model);
//   sgd.load_state(optimizer_state(r));
//   step = r.get_int("step");
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace sieve {

// Note [checkpoint tag]: the metadata keys that mark a safetensors file as a sieve checkpoint, and its version.
// A reader refuses other versions rather than guess at their meaning; a new version is needed only when an existing
// name changes meaning (new names and metadata keys can be added within a version).
inline constexpr const char* kCheckpointFormatKey = "format";
inline constexpr const char* kCheckpointFormat = "sieve-checkpoint";
inline constexpr const char* kCheckpointVersionKey = "version";
inline constexpr const char* kCheckpointVersion = "1";

struct CheckpointState {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  // Appends `named` with each name prefixed; a name already present throws (the file could not hold both).
  void add_tensors(const std::vector<std::pair<std::string, Tensor>>& named, const std::string& prefix = "");
  // The tensor named `name`, or an undefined Tensor.
  Tensor find(const std::string& name) const;
  // The tensor named `name` as a fresh one-dimensional copy (a selector's per-example table, say), after checking
  // that it exists and has `dtype`; throws a sieve::Error naming it otherwise.
  Tensor get_vector(const std::string& name, DType dtype) const;
  // The tensors whose names start with `prefix`, with the prefix removed, in order.
  std::vector<std::pair<std::string, Tensor>> with_prefix(const std::string& prefix) const;

  // Scalars as metadata strings that read back exactly (doubles in shortest round-trip form). The getters throw
  // a sieve::Error naming the key when it is missing or does not parse.
  void set_string(const std::string& key, const std::string& value) { metadata[key] = value; }
  void set_int(const std::string& key, int64_t value);
  void set_double(const std::string& key, double value);
  void set_generator(const std::string& key, const Generator& gen);  // JSON: {"seed": S, "offset": O}
  bool has(const std::string& key) const { return metadata.count(key) != 0; }
  const std::string& get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  Generator get_generator(const std::string& key) const;
};

// Writes `state` atomically with the format tag added (Note [checkpoint tag]); metadata may not set the tag's
// keys to other values.
void save_checkpoint(const std::string& path, const CheckpointState& state);
// Reads a checkpoint written by save_checkpoint (tensors on the CPU); refuses any other safetensors file.
CheckpointState load_checkpoint(const std::string& path);

}  // namespace sieve

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

// Note [state archive]: a selector or the trainer lists its checkpointed state once, in one function over a
// StateArchive that either writes each value into a CheckpointState (saving) or reads it back into the same variable
// (loading), so that what is saved and what is loaded cannot drift apart. Keys, names and encodings are those of
// CheckpointState's setters, so checkpoints written before the archive load as they did. A part saved only when
// present is guarded by flag(); a key added after some checkpoints were written is read under has() and keeps its
// default without it. The checks a load makes beyond presence and dtype (sizes against the options and the data
// set, ranges) follow the listing, under `if (ar.loading())`.
//
//   void MySelector::archive(StateArchive& ar) {
//     ar.generator("generator", gen_);
//     ar.scalar("steps", steps_);
//     if (ar.loading()) table_ = Tensor();
//     if (ar.flag("has_table", table_.defined())) ar.vector("table", table_, DType::F32);
//     if (ar.loading() && table_.defined()) SIEVE_CHECK(table_.numel() == n_, "...");
//   }
class StateArchive {
 public:
  // An archive that writes into `state`, or one that reads from it; every key and tensor name is `prefix` + name.
  // It refers to `state`, which must outlive it (hence no archive over a temporary).
  static StateArchive writer(CheckpointState& state, std::string prefix = "");
  static StateArchive reader(const CheckpointState& state, std::string prefix = "");
  static StateArchive reader(CheckpointState&& state, std::string prefix = "") = delete;

  bool saving() const { return writing_ != nullptr; }
  bool loading() const { return writing_ == nullptr; }
  const std::string& prefix() const { return prefix_; }

  // Scalars as metadata strings: integers and bools (0 or 1) as set_int writes them, doubles as set_double does
  // (shortest round-trip form), floats as the double they widen to (so they read back exactly). Loading throws a
  // sieve::Error naming the key when it is missing or does not parse; a bool reads any non-zero integer as true.
  void scalar(const std::string& key, int64_t& value);
  void scalar(const std::string& key, bool& value);
  void scalar(const std::string& key, double& value);
  void scalar(const std::string& key, float& value);
  void generator(const std::string& key, Generator& gen);  // set_generator's {"seed": S, "offset": O}

  // Whether an optional part is present, kept as a 0/1 scalar under `key`: saving writes `present` and returns it,
  // loading returns what was written (`present` is then ignored).
  bool flag(const std::string& key, bool present);
  // Saving: true. Loading: whether the checkpoint holds a metadata key or a tensor named `key`.
  bool has(const std::string& key) const;

  // A tensor of `dtype`. Saving writes a copy of `t` (the state does not follow later changes to t). Loading checks
  // that the tensor exists and has `dtype` and sets `t` to a fresh copy of it, on the device the state holds it on
  // (the CPU, from a file): its owner moves it to the training device when it needs it there.
  void tensor(const std::string& name, Tensor& t, DType dtype);
  // As tensor(), loaded as a one-dimensional copy (CheckpointState::get_vector).
  void vector(const std::string& name, Tensor& t, DType dtype);
  // A component's own named tensors under `group` (CREST's Hutchinson estimator: "hutchinson.m.0", ...). Saving
  // writes copies of `named`; loading replaces `named` with the stored tensors whose names start with the group,
  // the group removed, in order (CheckpointState::with_prefix), for the component to check and copy as it loads.
  void tensors(const std::string& group, std::vector<std::pair<std::string, Tensor>>& named);

 private:
  StateArchive(CheckpointState* writing, const CheckpointState* reading, std::string prefix)
      : writing_(writing), reading_(reading), prefix_(std::move(prefix)) {}

  CheckpointState* writing_;        // saving
  const CheckpointState* reading_;  // loading
  std::string prefix_;
};

// Writes `state` atomically with the format tag added (Note [checkpoint tag]); metadata may not set the tag's
// keys to other values.
void save_checkpoint(const std::string& path, const CheckpointState& state);
// Reads a checkpoint written by save_checkpoint (tensors on the CPU); refuses any other safetensors file.
CheckpointState load_checkpoint(const std::string& path);

// A state as bytes and back (Note [state bytes] in core/checkpoint.cpp), tensors on the CPU: what one rank of a
// data-parallel run sends to the rank writing the checkpoint.
std::string encode_state(const CheckpointState& state);
CheckpointState decode_state(const std::string& bytes);

}  // namespace sieve

// Module: a differentiable function with named parameters, train/eval mode, and children.
//
// Parameters and buffers are Tensor members of the concrete layer, registered by address, so that moving a
// module to another device (or loading a checkpoint) replaces them in place. Names follow the hierarchy:
// a Sequential's second child's weight is "1.weight".
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sieve {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  // One line describing the module, e.g. "Linear(784 -> 512)".
  virtual std::string describe() const = 0;

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  // State that is saved but not trained (e.g. batch-norm running statistics).
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  int64_t parameter_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer to `device` (parameters keep requiring gradients).
  void to(Device device);
  Device device() const;

 protected:
  void register_parameter(std::string name, Tensor* slot);
  void register_buffer(std::string name, Tensor* slot);
  void register_module(std::string name, std::shared_ptr<Module> child);
  // Swaps the registered child `name` for another (e.g. a new classifier head); throws if there is none.
  void replace_module(const std::string& name, std::shared_ptr<Module> child);

 private:
  void collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out) const;
  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Evaluation mode for a scope: the module's mode before it comes back on every way out, exceptions included
// (scoring passes, evaluations and the selectors' loss probes run in evaluation mode between training steps).
class EvalModeScope {
 public:
  explicit EvalModeScope(Module& module) : module_(module), was_training_(module.is_training()) { module.eval(); }
  ~EvalModeScope() { module_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

}  // namespace sieve

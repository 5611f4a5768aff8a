#include "layers/module_state.h"

#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace sieve {
namespace {

// The module's tensors that a checkpoint holds: parameters, then the buffers that exist.
std::vector<std::pair<std::string, Tensor>> module_tensors(const Module& module) {
  std::vector<std::pair<std::string, Tensor>> out = module.named_parameters();
  for (auto& [name, t] : module.named_buffers())
    if (t.defined()) out.emplace_back(name, t);
  return out;
}

}  // namespace

void add_module_state(CheckpointState& state, const Module& module, const std::string& prefix) {
  state.add_tensors(module_tensors(module), prefix);
}

void load_module_state(const CheckpointState& state, Module& module, const std::string& prefix) {
  std::unordered_map<std::string, Tensor> saved;
  for (const auto& [name, t] : state.tensors) saved.emplace(name, t);
  const std::vector<std::pair<std::string, Tensor>> targets = module_tensors(module);
  std::vector<Tensor> sources;
  // All checks first: a failed load leaves the module as it was, not half overwritten.
  for (const auto& [name, target] : targets) {
    const auto it = saved.find(prefix + name);
    SIEVE_CHECK(it != saved.end(), "checkpoint: no tensor '", prefix + name, "' for the model's ", target.description(),
                " (a checkpoint of another model?)");
    const Tensor& src = it->second;
    SIEVE_CHECK(src.shape() == target.shape() && src.dtype() == target.dtype(), "checkpoint: tensor '", prefix + name,
                "' is ", to_string(src.dtype()), shape_string(src.shape()), ", the model's is ",
                to_string(target.dtype()), shape_string(target.shape()), " (a checkpoint of another model?)");
    sources.push_back(src);
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    Tensor target = targets[i].second;  // shares storage with the module's own tensor
    target.copy_(sources[i]);
  }
}

}  // namespace sieve

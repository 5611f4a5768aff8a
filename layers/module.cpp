#include "layers/module.h"

namespace sieve {

void Module::register_parameter(std::string name, Tensor* slot) {
  SIEVE_CHECK(slot && slot->defined(), "register_parameter: '", name, "' is undefined");
  slot->set_requires_grad(true);
  params_.emplace_back(std::move(name), slot);
}

void Module::register_buffer(std::string name, Tensor* slot) { buffers_.emplace_back(std::move(name), slot); }

void Module::register_module(std::string name, std::shared_ptr<Module> child) {
  SIEVE_CHECK(child != nullptr, "register_module: '", name, "' is null");
  children_.emplace_back(std::move(name), std::move(child));
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> child) {
  SIEVE_CHECK(child != nullptr, "replace_module: '", name, "' is null");
  for (auto& [n, c] : children_) {
    if (n == name) {
      c = std::move(child);
      c->train(training_);
      return;
    }
  }
  SIEVE_FAIL("replace_module: no child named '", name, "'");
}

void Module::collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [name, slot] : buffers ? buffers_ : params_) out.emplace_back(prefix + name, slot);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, slot] : slots) out.emplace_back(name, *slot);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, slot] : slots) out.emplace_back(name, *slot);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, slots);
  for (auto& [name, slot] : slots) {
    if (slot->device() == device) continue;
    *slot = slot->detach().to(device);
    slot->set_requires_grad(true);
  }
  slots.clear();
  collect("", true, slots);
  for (auto& [name, slot] : slots)
    if (slot->defined()) *slot = slot->to(device);
}

Device Module::device() const {
  auto params = named_parameters();
  return params.empty() ? Device::cpu() : params.front().second.device();
}

}  // namespace sieve

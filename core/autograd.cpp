#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/ops/elementwise.h"

namespace sieve {
namespace {
thread_local bool t_grad_enabled = true;

// Adds g into the gradient slot, reusing the slot's memory when it already holds one.
void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g.detach();
  } else {
    if (slot.same_storage(g)) slot = slot.clone();  // never alias two gradients
    add_(slot, g);
  }
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& output, const char* name, std::vector<Tensor> inputs, Node::BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  output.set_grad_fn(std::move(node));
}

void Tensor::backward() const { backward(Tensor()); }

void Tensor::backward(const Tensor& grad_output) const {
  SIEVE_CHECK(requires_grad(), "backward(): the tensor does not require a gradient (no parameter reaches it)");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    SIEVE_CHECK(numel() == 1, "backward(): a gradient must be given for non-scalar ", description());
    seed = Tensor::ones(shape(), DType::F32, device());
  }
  check_same_shape(*this, seed, "backward gradient");

  NoGradGuard no_grad;  // backward functions do not record history
  if (!grad_fn()) {     // a leaf
    Tensor self = *this;
    Tensor g = self.grad();
    accumulate(g, seed);
    self.set_grad(g);
    if (meta_->grad_ready) meta_->grad_ready();  // Note [gradient hooks]
    return;
  }

  // Topological order of nodes reachable from the root (iterative DFS, post-order).
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack{{grad_fn().get(), 0}};
  visited.insert(grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      Node* child = node->inputs[next++].grad_fn().get();
      if (child && visited.insert(child).second) stack.emplace_back(child, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  // A leaf's gradient is complete after the node processed last among those taking it as an input, the one earliest
  // in `order` (Note [gradient hooks]).
  std::vector<std::vector<AutogradMeta*>> ready_after;
  {
    std::unordered_set<AutogradMeta*> seen;
    for (size_t k = 0; k < order.size(); ++k)
      for (const Tensor& input : order[k]->inputs) {
        AutogradMeta* meta = input.meta_.get();
        if (!meta || !meta->grad_ready || meta->grad_fn || !seen.insert(meta).second) continue;
        if (ready_after.empty()) ready_after.resize(order.size());
        ready_after[k].push_back(meta);
      }
  }
  auto run_hooks = [&](size_t k) {
    if (ready_after.empty()) return;
    for (AutogradMeta* meta : ready_after[k]) meta->grad_ready();
  };

  std::unordered_map<Node*, Tensor> grads;
  grads[grad_fn().get()] = seed;
  for (size_t k = order.size(); k-- > 0;) {
    Node* node = order[k];
    auto found = grads.find(node);
    if (found == grads.end()) {
      run_hooks(k);
      continue;
    }
    Tensor g = found->second;
    grads.erase(found);
    std::vector<Tensor> input_grads = node->backward(g);
    SIEVE_CHECK(input_grads.size() == node->inputs.size(), "autograd: node '", node->name, "' returned ",
                input_grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < input_grads.size(); ++i) {
      Tensor& input = node->inputs[i];
      if (!input_grads[i].defined() || !input.requires_grad()) continue;
      check_same_shape(input, input_grads[i], node->name.c_str());
      if (Node* child = input.grad_fn().get()) {
        accumulate(grads[child], input_grads[i]);
      } else {
        Tensor slot = input.grad();
        accumulate(slot, input_grads[i]);
        input.set_grad(slot);
      }
    }
    run_hooks(k);
  }
}

void Tensor::set_grad_ready_hook(std::function<void()> hook) {
  SIEVE_CHECK(!grad_fn(), "set_grad_ready_hook: ", description(), " is not a leaf");
  meta().grad_ready = std::move(hook);
}

}  // namespace sieve

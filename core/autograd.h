// Reverse-mode autograd.
//
// Note [autograd]: a dynamic tape. Each differentiable op records a Node on its result: the inputs it needs
// gradients for and a backward function mapping the gradient of the result to gradients of the inputs (only when
// needs_grad: recording is on and an input requires a gradient). Tensor::backward() orders the nodes reachable from
// the root topologically and walks them in reverse, accumulating into leaves' grad(). Backward functions run
// without recording (no double backward: core/hvp.h differentiates by finite differences instead). Gradients never
// alias: accumulation adds in place into the first gradient a slot received, so a backward function returns a
// distinct tensor for each input (add returns g and a clone of g), and a slot handed the tensor it already holds
// is cloned first.
//
// Note [saved tensors]: a backward function must capture tensors with `.detach()` (or raw data it computes
// from), never the op's own result with its history: that would make the result own the node that owns it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sieve {

struct Node {
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
  std::string name;
  std::vector<Tensor> inputs;  // one gradient per input is returned by backward (undefined = none)
  BackwardFn backward;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::function<void()> grad_ready;  // Note [gradient hooks]
};

// Note [gradient hooks]: a leaf's hook (Tensor::set_grad_ready_hook) runs during every backward pass whose graph
// takes the leaf as an input, right after the last node that takes it has added its part: the leaf's gradient for
// this pass is then complete (on a GPU: queued). Hooks run in the order the pass completes the leaves, which is the
// same in every process running the same graph; a leaf outside the graph gets no call. Data-parallel training
// starts reducing a bucket of gradients from here while the rest of the backward pass runs (optim/distributed.h).

// Whether ops record history on this thread (true unless a NoGradGuard is alive).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when recording is on and some input needs a gradient.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Records `fn` as the way back from `output` to `inputs` (only when needs_grad of the inputs).
void record(Tensor& output, const char* name, std::vector<Tensor> inputs, Node::BackwardFn fn);

}  // namespace sieve

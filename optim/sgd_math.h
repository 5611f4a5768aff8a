// The per-element update of SGD, shared by the CPU loop and the CUDA kernel (Note [one meaning]).
#pragma once

#include "core/host_device.h"
#include "optim/sgd.h"

namespace sieve {

struct SgdElement {
  float param;
  float momentum;  // the new buffer value (unchanged when step.momentum is 0)
};

// torch.optim.SGD with dampening 0, in PyTorch's order of operations:
// g <- g + lambda p; v <- first ? g : mu v + g; g <- nesterov ? g + mu v : v; p <- p - lr g.
SIEVE_HD SgdElement sgd_element(float p, float g, float v, const SgdStep& s) {
  if (s.weight_decay != 0.f) g = g + s.weight_decay * p;
  if (s.momentum != 0.f) {
    v = s.first ? g : s.momentum * v + g;
    g = s.nesterov ? g + s.momentum * v : v;
  }
  return {p - s.lr * g, v};
}

}  // namespace sieve

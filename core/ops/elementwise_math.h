// Per-element arithmetic shared by the CPU and CUDA backends of elementwise ops (Note [one meaning]).
#pragma once

#include "core/host_device.h"
#include "core/ops/elementwise.h"

namespace sieve {

SIEVE_HD float apply_binary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
  }
  return 0.f;
}

SIEVE_HD float relu_value(float x) { return x > 0.f ? x : 0.f; }
// The subgradient at 0 is taken as 0, as in PyTorch.
SIEVE_HD float relu_grad(float y, float grad_y) { return y > 0.f ? grad_y : 0.f; }

}  // namespace sieve

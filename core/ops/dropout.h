// Inverted dropout (Srivastava et al. 2014) with masks drawn from the Philox stream of a Generator, so that the
// same generator state gives the same mask on the CPU and on every GPU.
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "core/philox.h"
#include "core/random.h"
#include "core/tensor.h"

namespace sieve {

// training and p > 0: y_i = x_i mask_i / (1 - p), mask_i = [philox_uniform(seed, offset, i) >= p], where
// offset = gen.advance(x.numel()) reserves this call's counters. Otherwise (evaluation, or p = 0) x itself is
// returned and the generator does not move. p must be in [0, 1). Differentiable in x (the same mask).
Tensor dropout(const Tensor& x, float p, Generator& gen, bool training);

// Note [dropout mask]: backward recomputes the mask from the saved (seed, offset) instead of storing it. A stored
// uint8 mask would cost a quarter of the activation's memory for every dropout layer until backward; recomputing
// costs one Philox block (ten rounds of integer multiplies) per element in a kernel that is bound by memory
// traffic anyway, and the recomputed mask is bit-for-bit the forward one. Backward is then the forward
// function applied to the gradient: dx_i = dy_i mask_i / (1 - p).

// out_i = in_i mask_i scale, the per-element rule shared by both backends (Note [one meaning]).
SIEVE_HD float dropout_element(float in, uint64_t seed, uint64_t offset, uint64_t i, float p, float scale) {
  return philox_uniform(seed, offset, i) >= p ? in * scale : 0.f;
}

// Backends: out = in · mask · scale over n elements, with the mask of (c, p). Used for both passes.
namespace cpu {
void dropout_apply(const float* in, float* out, int64_t n, PhiloxCounter c, float p, float scale);
}  // namespace cpu
namespace cuda {
void dropout_apply(const float* in, float* out, int64_t n, PhiloxCounter c, float p, float scale);
}  // namespace cuda

}  // namespace sieve

// Gradient-norm clipping: torch.nn.utils.clip_grad_norm_ with the 2-norm, computed on the parameters' device
// without a host round trip.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace sieve {

// The total 2-norm of the gradients of `parameters` (those without a gradient are skipped), as a float32 0-d
// tensor on their device; when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by that factor, in
// place (torch.nn.utils.clip_grad_norm_, norm_type 2, error_if_nonfinite False: a non-finite norm makes the
// gradients non-finite too). Nothing is read back to the host: the norm accumulates in device memory and the
// scaling kernels read it there, so a caller reads the returned norm (Tensor::item) only when it wants it.
// Gradients must be float32 on one device; max_norm finite and > 0. With no gradient at all the norm is 0.
Tensor clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm);

// Each gradient's sum of squares is left as kNormPartials partial sums, so that the total is reduced in a fixed
// order (the same norm every run, unlike atomics).
inline constexpr int64_t kNormPartials = 256;

namespace cpu {
// partials: (kNormPartials) values whose sum is sum_i x[i]^2 over x: (n).
void sum_squares_partials(const float* x, int64_t n, float* partials);
// norm = sqrt(sum of partials: (count)); scale = max_norm / (norm + 1e-6). One value each.
void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm, float* scale);
// x: (n) *= *scale when the scale calls for clipping (clip_applies in optim/clip_math.h).
void scale_if_clipping(float* x, int64_t n, const float* scale);
}  // namespace cpu

namespace cuda {
void sum_squares_partials(const float* x, int64_t n, float* partials);
void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm, float* scale);
void scale_if_clipping(float* x, int64_t n, const float* scale);
}  // namespace cuda

}  // namespace sieve

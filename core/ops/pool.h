// Spatial pooling of [N, C, H, W] float32 activations: max and average over square windows, and the global
// average that ends a convolutional network.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// Output [N, C, OH, OW] with OH = floor((H + 2 padding - kernel) / stride) + 1 (likewise OW), as PyTorch with
// ceil_mode = false. Requires kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2.
// Max: padded positions never win; a NaN in a window wins (it propagates); ties go to the first in row-major
// order. Backward routes each output's gradient to the input position that won (Note [max-pool indices]).
Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding = 0);
// Average with count_include_pad = true (PyTorch's default): every window is divided by kernel^2, padded
// zeros included.
Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding = 0);
// [N, C, H, W] -> [N, C]: the mean over H·W.
Tensor global_avg_pool(const Tensor& x);

// Sizes of one pooling, passed by value to the kernels. Planes are the N·C images of one channel.
struct PoolGeometry {
  int64_t planes = 0, h = 0, w = 0, out_h = 0, out_w = 0;
  int kernel = 1, stride = 1, padding = 0;
};

// Note [max-pool indices]: the forward pass stores, per output, the int32 index y·W + x of the winning input
// within its plane; backward gathers, per input, the gradients of the outputs whose windows contain it and
// whose index is its own. Storing (4 bytes per output) instead of recomputing keeps one rule for ties and
// NaNs, and the gather (rather than a scatter with atomics) is deterministic on the GPU. The CPU scatters each
// output's gradient to its index in output order, which adds the same terms in the same order: bit-identical.
namespace cpu {
void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g);  // indices may be null
void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g);
void avg_pool2d_fwd(const float* x, float* y, PoolGeometry g);
void avg_pool2d_bwd(const float* grad_y, float* grad_x, PoolGeometry g);
void global_avg_pool_fwd(const float* x, float* y, int64_t planes, int64_t hw);
void global_avg_pool_bwd(const float* grad_y, float* grad_x, int64_t planes, int64_t hw);
}  // namespace cpu

namespace cuda {
void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g);
void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g);
void avg_pool2d_fwd(const float* x, float* y, PoolGeometry g);
void avg_pool2d_bwd(const float* grad_y, float* grad_x, PoolGeometry g);
void global_avg_pool_fwd(const float* x, float* y, int64_t planes, int64_t hw);
void global_avg_pool_bwd(const float* grad_y, float* grad_x, int64_t planes, int64_t hw);
}  // namespace cuda

}  // namespace sieve

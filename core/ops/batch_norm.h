// Batch normalisation over the channels of [N, C, H, W] float32 activations (Ioffe & Szegedy 2015), with
// PyTorch's conventions for the running statistics.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

// y = gamma (x - mean_c) / sqrt(var_c + eps) + beta for x [N, C, H, W], gamma and beta [C].
// training: mean and (biased) var of the batch over (N, H, W); running_mean and running_var [C] are updated
//   in place: running = (1 - momentum) running + momentum batch, with the unbiased batch variance for
//   running_var (Note [batch-norm running statistics]). Needs more than one value per channel.
// evaluation: mean = running_mean, var = running_var; nothing is updated.
// Differentiable in x, gamma and beta; in training mode the gradient flows through the batch statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// Note [batch-norm statistics]: the per-channel mean and variance are computed in two passes, first the mean,
// then the mean of (x - mean)^2. The one-pass E[x^2] - E[x]^2 cancels catastrophically when |mean| >> std
// (activations after a ReLU), and Welford's update needs a three-value merge in the block reduction for no
// gain in accuracy here; the second pass re-reads a channel that is still in L2. The CPU reference
// accumulates in double, the CUDA kernels in float per thread and then a tree (error ~ eps log M, M = N H W).
//
// Backends. x, grad_y, grad_x are [n, c, hw]; every other array is [c]. mean and invstd = 1/sqrt(var + eps)
// are what backward needs in both modes (in evaluation mode they come from the running statistics).
namespace cpu {
// Training statistics of x, and the running statistics updated in place.
void batch_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, float momentum, float eps, float* mean,
                      float* invstd, float* running_mean, float* running_var);
void batch_norm_invstd(const float* var, float* invstd, int64_t c, float eps);
void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* gamma, const float* beta,
                      float* y, int64_t n, int64_t c, int64_t hw);
// sum_dy = sum of grad_y and sum_dy_xhat = sum of grad_y x_hat per channel: the gradients of beta and gamma.
void batch_norm_bwd_reduce(const float* grad_y, const float* x, const float* mean, const float* invstd, int64_t n,
                           int64_t c, int64_t hw, float* sum_dy, float* sum_dy_xhat);
void batch_norm_bwd_apply(const float* grad_y, const float* x, const float* mean, const float* invstd,
                          const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* grad_x, int64_t n,
                          int64_t c, int64_t hw, bool training);
}  // namespace cpu

namespace cuda {
void batch_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, float momentum, float eps, float* mean,
                      float* invstd, float* running_mean, float* running_var);
void batch_norm_invstd(const float* var, float* invstd, int64_t c, float eps);
void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* gamma, const float* beta,
                      float* y, int64_t n, int64_t c, int64_t hw);
void batch_norm_bwd_reduce(const float* grad_y, const float* x, const float* mean, const float* invstd, int64_t n,
                           int64_t c, int64_t hw, float* sum_dy, float* sum_dy_xhat);
void batch_norm_bwd_apply(const float* grad_y, const float* x, const float* mean, const float* invstd,
                          const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* grad_x, int64_t n,
                          int64_t c, int64_t hw, bool training);
}  // namespace cuda

}  // namespace sieve

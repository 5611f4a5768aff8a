// Softmax, log-softmax and per-sample cross-entropy over the last dimension of [n, c] float32 logits.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
// loss_i = logsumexp(z_i) - z_i[y_i], labels int32 in [0, c): one fused kernel forward and backward.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

namespace cpu {
void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols, bool log);
void softmax_bwd(const float* y, const float* grad_y, float* grad_x, int64_t rows, int64_t cols, bool log);
void cross_entropy_fwd(const float* logits, const int32_t* labels, float* loss, int64_t rows, int64_t cols);
// grad_logits = grad_loss_i * (softmax(z_i) - onehot(y_i))
void cross_entropy_bwd(const float* logits, const int32_t* labels, const float* grad_loss, float* grad_logits,
                       int64_t rows, int64_t cols);
}  // namespace cpu

namespace cuda {
void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols, bool log);
void softmax_bwd(const float* y, const float* grad_y, float* grad_x, int64_t rows, int64_t cols, bool log);
void cross_entropy_fwd(const float* logits, const int32_t* labels, float* loss, int64_t rows, int64_t cols);
void cross_entropy_bwd(const float* logits, const int32_t* labels, const float* grad_loss, float* grad_logits,
                       int64_t rows, int64_t cols);
}  // namespace cuda

}  // namespace sieve

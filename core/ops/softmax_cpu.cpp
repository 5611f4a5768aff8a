#include "core/ops/softmax.h"
#include "core/ops/softmax_math.h"

namespace sieve::cpu {

void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * cols, y + r * cols, cols, log);
}

void softmax_bwd(const float* y, const float* grad_y, float* grad_x, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r)
    softmax_row_backward(y + r * cols, grad_y + r * cols, grad_x + r * cols, cols, log);
}

void cross_entropy_fwd(const float* logits, const int32_t* labels, float* loss, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) loss[r] = cross_entropy_row(logits + r * cols, labels[r], cols);
}

void cross_entropy_bwd(const float* logits, const int32_t* labels, const float* grad_loss, float* grad_logits,
                       int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    cross_entropy_row_backward(logits + r * cols, labels[r], grad_loss[r], grad_logits + r * cols, cols);
}

}  // namespace sieve::cpu

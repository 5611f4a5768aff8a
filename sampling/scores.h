// Per-example importance scores computed from logits and labels.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace sieve {

// GradientNorm is the exact per-example gradient norm (sampling/gradient_norm.h): it needs the model's gradients, not
// logits, so compute_scores and parse_score_kind, which deal in scores of logits, do not take it; the importance
// sampler computes it itself and make_selector chooses it by the name "gradient-norm".
enum class ScoreKind { UpperBound, Loss, GradientNorm };
ScoreKind parse_score_kind(const std::string& name);  // the scores of logits: "upper-bound" | "loss"
std::string to_string(ScoreKind kind);                // "upper-bound" | "loss" | "gradient-norm"

// ||softmax(z_i) - onehot(y_i)||_2: the gradient norm of cross-entropy with respect to the logits, the
// closed-form part of the upper bound G^_i of eq. 20 (Katharopoulos & Fleuret 2018). One fused kernel.
// logits float32 [n, c], labels int32 [n] -> float32 [n]. Never recorded by autograd. Labels are checked against
// [0, c) on the CPU; on the GPU they are trusted and an out-of-range label gives a NaN score.
Tensor upper_bound_scores(const Tensor& logits, const Tensor& labels);
// Per-example cross-entropy, the `loss` score: core's cross_entropy under NoGradGuard.
Tensor loss_scores(const Tensor& logits, const Tensor& labels);
// The score of `kind`, on the device of the logits; throws sieve::Error for GradientNorm.
Tensor compute_scores(ScoreKind kind, const Tensor& logits, const Tensor& labels);

namespace cpu {
void upper_bound_scores(const float* logits, const int32_t* labels, float* scores, int64_t rows, int64_t cols);
}  // namespace cpu
namespace cuda {
void upper_bound_scores(const float* logits, const int32_t* labels, float* scores, int64_t rows, int64_t cols);
}  // namespace cuda

}  // namespace sieve

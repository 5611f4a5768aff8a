#include "sampling/scores.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/ops/softmax.h"

namespace sieve {

ScoreKind parse_score_kind(const std::string& name) {
  if (name == "upper-bound") return ScoreKind::UpperBound;
  if (name == "loss") return ScoreKind::Loss;
  SIEVE_FAIL("unknown score '", name, "': expected one of upper-bound, loss");
}

std::string to_string(ScoreKind kind) {
  switch (kind) {
    case ScoreKind::UpperBound: return "upper-bound";
    case ScoreKind::Loss: return "loss";
    case ScoreKind::GradientNorm: return "gradient-norm";
  }
  return "?";
}

Tensor upper_bound_scores(const Tensor& logits, const Tensor& labels) {
  check_dtype(logits, DType::F32, "upper_bound_scores logits");
  check_dim(logits, 2, "upper_bound_scores logits");
  check_dtype(labels, DType::I32, "upper_bound_scores labels");
  check_dim(labels, 1, "upper_bound_scores labels");
  check_same_device(logits, labels, "upper_bound_scores");
  const int64_t rows = logits.size(0), cols = logits.size(1);
  SIEVE_CHECK(labels.size(0) == rows, "upper_bound_scores: ", rows, " rows of logits but ", labels.size(0),
              " labels");
  SIEVE_CHECK(cols >= 1 || rows == 0, "upper_bound_scores: logits ", logits.description(), " have no classes");
  Tensor scores = Tensor::empty({rows}, DType::F32, logits.device());
  if (rows == 0) return scores;
  SIEVE_DISPATCH(logits.device(), upper_bound_scores, logits.data<float>(), labels.data<int32_t>(),
                 scores.data<float>(), rows, cols);
  return scores;
}

Tensor loss_scores(const Tensor& logits, const Tensor& labels) {
  NoGradGuard no_grad;
  return cross_entropy(logits.detach(), labels);
}

Tensor compute_scores(ScoreKind kind, const Tensor& logits, const Tensor& labels) {
  switch (kind) {
    case ScoreKind::UpperBound: return upper_bound_scores(logits, labels);
    case ScoreKind::Loss: return loss_scores(logits, labels);
    case ScoreKind::GradientNorm:
      SIEVE_FAIL("compute_scores: the gradient-norm score needs the model's per-example gradients "
                 "(per_example_gradient_norms in sampling/gradient_norm.h), not logits");
  }
  SIEVE_FAIL("compute_scores: unknown score kind");
}

}  // namespace sieve

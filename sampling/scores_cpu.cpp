// CPU reference of the score bound: the per-row arithmetic of sampling/score_math.h in a plain loop.
#include "sampling/score_math.h"
#include "sampling/scores.h"

namespace sieve::cpu {

void upper_bound_scores(const float* logits, const int32_t* labels, float* scores, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    SIEVE_CHECK(labels[i] >= 0 && labels[i] < cols, "upper_bound_scores: label ", labels[i], " of row ", i,
                " is outside [0, ", cols, ")");
    scores[i] = upper_bound_score_row(logits + i * cols, cols, labels[i]);  // logits (rows, cols)
  }
}

}  // namespace sieve::cpu

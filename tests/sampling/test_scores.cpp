// The score bound of eq. 20 against autograd and a double-precision reference, on both devices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "sampling/scores.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::random_labels;
using testing::random_tensor;

// ||softmax(z_i) - onehot(y_i)||_2 in double from the definition, with the label's term 1 - p_y written as
// sum_{j != y} p_j so that the reference itself does not cancel for confident rows.
std::vector<float> reference_scores(const Tensor& logits, const Tensor& labels) {
  const std::vector<float> z = logits.to_vector<float>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  const int64_t rows = logits.size(0), cols = logits.size(1);
  std::vector<float> out(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = z.data() + i * cols;
    double m = row[0];
    for (int64_t j = 1; j < cols; ++j) m = std::max(m, static_cast<double>(row[j]));
    double s = 0.0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(row[j] - m);
    double others = 0.0, d2 = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      if (j == y[i]) continue;
      const double p = std::exp(row[j] - m) / s;
      others += p;
      d2 += p * p;
    }
    out[i] = static_cast<float>(std::sqrt(d2 + others * others));
  }
  return out;
}

class UpperBoundScore : public testing::DeviceTest {};

// The score is the norm of d CE / d logits, which core's autograd computes independently (softmax - onehot).
// Float arithmetic on values <= 1 is accurate to a few 1e-8 absolute (the autograd path rounds p_y - 1 near 1),
// so atol 1e-6 with rtol 1e-5 leaves a wide margin while still catching any formula slip.
TEST_P(UpperBoundScore, MatchesGradientNormOfLogits) {
  const int64_t n = 64, c = 10;
  Tensor logits = random_tensor({n, c}, 11, device(), -4.f, 4.f);
  const Tensor labels = random_labels(n, static_cast<int>(c), 12, device());
  logits.set_requires_grad(true);
  sum(cross_entropy(logits, labels)).backward();
  const std::vector<float> grad = logits.grad().to_vector<float>();
  std::vector<float> grad_norms(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < c; ++j) s += static_cast<double>(grad[i * c + j]) * grad[i * c + j];
    grad_norms[i] = static_cast<float>(std::sqrt(s));
  }
  const Tensor scores = upper_bound_scores(logits.detach(), labels);
  EXPECT_EQ(scores.shape(), Shape({n}));
  EXPECT_EQ(scores.device(), device());
  EXPECT_FALSE(scores.requires_grad());
  EXPECT_TRUE(all_close(scores.to_vector<float>(), grad_norms, 1e-6f, 1e-5f));
  EXPECT_TRUE(all_close(scores.to_vector<float>(), reference_scores(logits.detach(), labels), 1e-6f, 1e-5f));

  // Logits of +-80: exp of the differences underflows, never overflows, thanks to the max shift.
  std::vector<float> signs = random_tensor({n, c}, 13).to_vector<float>();
  for (float& v : signs) v = v < 0.f ? -80.f : 80.f;
  const Tensor extreme = Tensor::from_vector(signs, {n, c}, device());
  const std::vector<float> extreme_scores = upper_bound_scores(extreme, labels).to_vector<float>();
  for (float s : extreme_scores) EXPECT_TRUE(std::isfinite(s) && s >= 0.f) << s;
  EXPECT_TRUE(all_close(extreme_scores, reference_scores(extreme, labels), 1e-6f, 1e-5f));
}

// A confidently right example has 1 - p_y ~ 1e-8, below the float spacing at 1: computing p_y - 1 would give a
// score of exactly 0, which sampling by score could never draw. The bound must keep its small positive value.
TEST_P(UpperBoundScore, WellClassifiedExamplesKeepAPositiveScore) {
  const int64_t n = 16, c = 10;
  std::vector<float> z = random_tensor({n, c}, 21, Device::cpu(), -1.f, 1.f).to_vector<float>();
  const Tensor labels = random_labels(n, static_cast<int>(c), 22, device());
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  for (int64_t i = 0; i < n; ++i) z[i * c + y[i]] = 20.f + static_cast<float>(i);  // margins of 19 to 36
  const Tensor logits = Tensor::from_vector(z, {n, c}, device());
  const std::vector<float> scores = upper_bound_scores(logits, labels).to_vector<float>();
  for (float s : scores) EXPECT_GT(s, 0.f);
  EXPECT_TRUE(all_close(scores, reference_scores(logits, labels), 0.f, 1e-5f));
}

TEST_P(UpperBoundScore, LossScoreIsPerExampleCrossEntropyWithoutHistory) {
  Tensor logits = random_tensor({32, 7}, 31, device(), -3.f, 3.f);
  const Tensor labels = random_labels(32, 7, 32, device());
  logits.set_requires_grad(true);
  const Tensor scores = compute_scores(ScoreKind::Loss, logits, labels);
  EXPECT_FALSE(scores.requires_grad());
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = cross_entropy(logits.detach(), labels);
  }
  EXPECT_TRUE(all_close(scores, expected, 0.f, 0.f));
  EXPECT_TRUE(all_close(compute_scores(ScoreKind::UpperBound, logits, labels),
                        upper_bound_scores(logits.detach(), labels), 0.f, 0.f));
}

TEST_P(UpperBoundScore, RejectsMismatchedInputs) {
  const Tensor logits = random_tensor({8, 4}, 41, device());
  EXPECT_THROW(upper_bound_scores(logits, random_labels(7, 4, 42, device())), Error);
  EXPECT_THROW(upper_bound_scores(logits.reshape({32}), random_labels(32, 4, 42, device())), Error);
  EXPECT_THROW(upper_bound_scores(logits, random_tensor({8}, 43, device())), Error);
  if (device().is_cpu()) {
    EXPECT_THROW(upper_bound_scores(logits, Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 0, 1, 2}, {8})), Error);
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(UpperBoundScore);

TEST(ScoreKind, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_score_kind("upper-bound"), ScoreKind::UpperBound);
  EXPECT_EQ(parse_score_kind("loss"), ScoreKind::Loss);
  EXPECT_EQ(to_string(ScoreKind::UpperBound), "upper-bound");
  EXPECT_EQ(to_string(ScoreKind::Loss), "loss");
  try {
    parse_score_kind("gradient-norm");
    FAIL() << "expected sieve::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("upper-bound, loss"), std::string::npos) << e.what();
  }
}

class UpperBoundScoreGpu : public testing::GpuTest {};

// Same row arithmetic on both devices; only expf may differ, by 2 ulp on the device, hence rtol 1e-5. Rows up to 191
// wide go through shared-memory tiles of 64 rows (Note [score tiles]): full and partial tiles, widths on both sides.
TEST_F(UpperBoundScoreGpu, MatchesCpu) {
  for (int64_t c : {2, 10, 64, 100, 191, 192, 300})
    for (int64_t n : {1, 63, 1000}) {
      const Tensor logits = random_tensor({n, c}, 51 + c + n, Device::cpu(), -10.f, 10.f);
      const Tensor labels = random_labels(n, static_cast<int>(c), 52 + c + n);
      const Tensor cpu_scores = upper_bound_scores(logits, labels);
      const Tensor gpu_scores = upper_bound_scores(logits.to(Device::cuda()), labels.to(Device::cuda()));
      EXPECT_TRUE(all_close(gpu_scores, cpu_scores, 1e-7f, 1e-5f)) << "classes " << c << ", rows " << n;
    }
}

}  // namespace
}  // namespace sieve

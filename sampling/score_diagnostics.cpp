#include "sampling/score_diagnostics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/ops/gather.h"
#include "sampling/gradient_norm.h"
#include "sampling/scores.h"

namespace sieve {

std::vector<double> average_ranks(const std::vector<double>& values) {
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i)
    SIEVE_CHECK(!std::isnan(values[i]), "average_ranks: value ", i, " is NaN");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n);
  for (size_t start = 0; start < n;) {
    size_t end = start + 1;
    while (end < n && values[order[end]] == values[order[start]]) ++end;
    const double rank = 0.5 * static_cast<double>(start + 1 + end);  // mean of the ranks start + 1 .. end
    for (size_t k = start; k < end; ++k) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b) {
  SIEVE_CHECK(a.size() == b.size(), "spearman_correlation: ", a.size(), " values against ", b.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const size_t n = a.size();
  if (n < 2) return nan;
  for (size_t i = 0; i < n; ++i)
    if (std::isnan(a[i]) || std::isnan(b[i])) return nan;
  const std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
  const double mean = 0.5 * static_cast<double>(n + 1);  // of either set of ranks, ties or not
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    const double da = ra[i] - mean, db = rb[i] - mean;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa == 0 || sbb == 0) return nan;
  return sab / std::sqrt(saa * sbb);
}

double sampled_gradient_variance(const std::vector<double>& squared_norms, const std::vector<double>& scores,
                                 double mean_gradient_squared_norm) {
  SIEVE_CHECK(squared_norms.size() == scores.size() && !scores.empty(), "sampled_gradient_variance: ",
              squared_norms.size(), " squared norms and ", scores.size(), " scores; expected as many, at least one");
  double total = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    SIEVE_CHECK(std::isfinite(scores[i]) && scores[i] >= 0, "sampled_gradient_variance: score ", i, " is ", scores[i],
                ", expected finite and >= 0");
    total += scores[i];
  }
  const double b = static_cast<double>(scores.size());
  double second_moment = 0;  // (1/B²) Σ ‖g_i‖² / p_i (Note [sampled-gradient variance])
  for (size_t i = 0; i < scores.size(); ++i) {
    const double p = total > 0 ? scores[i] / total : 1.0 / b;  // all zero: drawn uniformly, as in sample.h
    if (squared_norms[i] == 0) continue;  // contributes nothing, whatever its probability
    if (p == 0) return std::numeric_limits<double>::infinity();
    second_moment += squared_norms[i] / p;
  }
  const double variance = second_moment / (b * b) - mean_gradient_squared_norm;
  return variance < 0 ? 0.0 : variance;  // rounding below 0; a NaN stays NaN
}

ScoreDiagnostics diagnose_scores(const ScoringContext& ctx, const Tensor& indices) {
  SIEVE_CHECK(static_cast<bool>(ctx.logits), "score diagnostics: the ScoringContext has no logits function");
  SIEVE_CHECK(static_cast<bool>(ctx.loss_gradient),
              "score diagnostics: the ScoringContext has no loss_gradient function");
  SIEVE_CHECK(ctx.labels.defined(), "score diagnostics: the ScoringContext has no labels");
  check_dtype(indices, DType::I32, "score diagnostics indices");
  check_dim(indices, 1, "score diagnostics indices");
  const int64_t n = indices.size(0);
  SIEVE_CHECK(n >= 2, "score diagnostics need a pre-sample of at least 2 examples, found ", n);

  auto host = [](const Tensor& t) {
    const std::vector<float> v = t.to(Device::cpu()).to_vector<float>();
    return std::vector<double>(v.begin(), v.end());
  };
  std::vector<double> upper_bound, loss;
  {
    NoGradGuard no_grad;
    const Tensor logits = ctx.logits(indices);  // evaluation mode (Note [scoring mode] in sampling/importance.h)
    SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == n, "score diagnostics: logits returned ",
                logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ", n,
                " examples");
    const Tensor labels = index_select(ctx.labels, indices);
    upper_bound = host(upper_bound_scores(logits.detach(), labels));
    loss = host(loss_scores(logits.detach(), labels));
  }
  const PerExampleGradients gradients = per_example_gradient_summary(ctx, indices);
  const std::vector<double>& squared_norms = gradients.squared_norms;
  const double mean_squared = gradients.mean_gradient_squared_norm;  // ‖ḡ‖²

  std::vector<double> norms(squared_norms.size());
  for (size_t i = 0; i < norms.size(); ++i) norms[i] = std::sqrt(squared_norms[i]);
  const std::vector<double> uniform(norms.size(), 1.0);

  ScoreDiagnostics d;
  d.presample = n;
  d.spearman_upper_bound = spearman_correlation(upper_bound, norms);
  d.spearman_loss = spearman_correlation(loss, norms);
  d.mean_gradient_norm = std::sqrt(mean_squared);
  d.variance_uniform = sampled_gradient_variance(squared_norms, uniform, mean_squared);
  // A diverged model (non-finite logits or gradients) gives NaN numbers, not an error: the diagnostic reports, the
  // training loop decides.
  auto relative = [&](const std::vector<double>& scores) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (double s : scores)
      if (!(std::isfinite(s) && s >= 0)) return nan;
    if (!(d.variance_uniform > 0)) return nan;
    return sampled_gradient_variance(squared_norms, scores, mean_squared) / d.variance_uniform;
  };
  d.relative_variance_loss = relative(loss);
  d.relative_variance_upper_bound = relative(upper_bound);
  d.relative_variance_gradient_norm = relative(norms);
  return d;
}

void to_json(nlohmann::json& j, const ScoreDiagnostics& d) {
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  j = nlohmann::json{{"presample", d.presample},
                     {"spearman_upper_bound", number(d.spearman_upper_bound)},
                     {"spearman_loss", number(d.spearman_loss)},
                     {"mean_gradient_norm", number(d.mean_gradient_norm)},
                     {"variance_uniform", number(d.variance_uniform)},
                     {"relative_variance_loss", number(d.relative_variance_loss)},
                     {"relative_variance_upper_bound", number(d.relative_variance_upper_bound)},
                     {"relative_variance_gradient_norm", number(d.relative_variance_gradient_norm)}};
}

}  // namespace sieve

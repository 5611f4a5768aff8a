#include "sampling/importance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops/elementwise.h"
#include "core/ops/gather.h"
#include "sampling/gradient_norm.h"
#include "sampling/sample.h"
#include "sampling/score_math.h"
#include "sampling/selectors.h"
#include "sampling/uniform.h"

namespace sieve {

float default_tau_th(int64_t presample, int64_t batch) {
  SIEVE_CHECK(presample >= 1 && batch >= 1, "default_tau_th: B and b must be positive, found B = ", presample,
              ", b = ", batch);
  return static_cast<float>(static_cast<double>(presample + 3 * batch) / (3.0 * static_cast<double>(batch)));
}

ScoreSource parse_score_source(const std::string& name) {
  if (name == "presample") return ScoreSource::Presample;
  if (name == "history") return ScoreSource::History;
  SIEVE_FAIL("unknown --score-source '", name, "': expected presample or history");
}

namespace {
ImportanceOptions checked(const ImportanceOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  if (o.source == ScoreSource::Presample) {
    SIEVE_CHECK(o.presample >= 1, "--presample must be positive, found ", o.presample);
    SIEVE_CHECK(o.batch <= o.presample, "--batch ", o.batch, " exceeds --presample ", o.presample,
                ": importance sampling draws the batch from the pre-sample");
  }
  SIEVE_CHECK(std::isfinite(o.smoothing) && o.smoothing >= 0.f, "--score-smoothing must be finite and >= 0, found ",
              o.smoothing);
  SIEVE_CHECK(std::isfinite(o.presample_smoothing) && o.presample_smoothing >= 0.f,
              "--presample-smoothing must be finite and >= 0, found ", o.presample_smoothing);
  if (o.source == ScoreSource::History) {
    SIEVE_CHECK(o.score != ScoreKind::GradientNorm, "gradient-norm has no history variant: a training pass computes "
                "no per-example gradients (use --score-source presample)");
    SIEVE_CHECK(o.presample_smoothing == 0.f, "--presample-smoothing applies to pre-sampled scores; history scores "
                "are smoothed by --score-smoothing");
  }
  SIEVE_CHECK(o.refresh_every >= 1, "--history-refresh must be >= 1 step, found ", o.refresh_every);
  SIEVE_CHECK(o.tau_ema >= 0.f && o.tau_ema < 1.f, "--tau-ema must be in [0, 1), found ", o.tau_ema);
  SIEVE_CHECK(!o.tau_th || std::isfinite(*o.tau_th), "--tau-th must be finite, found ", o.tau_th.value_or(0.f));
  return o;
}
}  // namespace

ImportanceSampler::ImportanceSampler(const ImportanceOptions& options)
    : options_(checked(options)),
      tau_th_(options.tau_th.value_or(options.source == ScoreSource::History
                                          ? 1.f
                                          : default_tau_th(options.presample, options.batch))),
      gen_(options.seed) {}

std::string ImportanceSampler::name() const {
  return to_string(options_.score) + (options_.source == ScoreSource::History ? "-history" : "");
}

void ImportanceSampler::capture_tau(const Tensor& scores) {
  tau_new_.capture(tau_estimate(scores));  // queued behind the τ kernel; read at the next select()
  tau_pending_ = true;
  tau_step_ = steps_;
  if (scores.device().is_cpu()) check_scores_finite();  // free on the CPU: at once (Note [non-finite scores])
}

void ImportanceSampler::check_scores_finite() {
  SIEVE_CHECK(std::isfinite(tau_new_.get()), name(), ": the scores of step ", tau_step_,
              " are not finite (NaN or infinite): has the model diverged?");
}

void ImportanceSampler::fold_tau(const ScoringContext& ctx) {
  if (!tau_pending_) return;
  check_scores_finite();
  const float a = options_.tau_ema;
  const auto tau_new = static_cast<float>(ctx.rank_mean(tau_new_.get()));  // the same on every rank
  tau_ = a * tau_ + (1.f - a) * tau_new;  // line 16
  tau_pending_ = false;
}

Tensor ImportanceSampler::smoothed(const Tensor& scores) const {
  if (options_.presample_smoothing == 0.f) return scores;
  NoGradGuard no_grad;
  return add(scores, Tensor::full(scores.shape(), options_.presample_smoothing, DType::F32, scores.device()));
}

Selection ImportanceSampler::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "importance sampler");
  if (options_.source == ScoreSource::History) return select_from_history(ctx);
  fold_tau(ctx);
  importance_on_ = tau_ > tau_th_;  // line 5
  ++steps_;
  const bool exact = options_.score == ScoreKind::GradientNorm;  // Note [exact-norm sampler]
  awaiting_observe_ = !importance_on_ && !exact;
  if (!importance_on_) {  // lines 12-13
    Selection uniform = draw_uniform(options_.batch, ctx, gen_);
    if (exact) capture_tau(smoothed(per_example_gradient_norms(ctx, uniform.indices)));
    return uniform;
  }
  ++importance_steps_;

  const Tensor candidates = randint({options_.presample}, ctx.dataset_size, gen_, ctx.device);  // line 6
  Tensor scores;  // line 7
  if (exact) {
    scores = per_example_gradient_norms(ctx, candidates);  // needs autograd: before the NoGradGuard
  } else {
    SIEVE_CHECK(static_cast<bool>(ctx.logits), "importance sampler: the ScoringContext has no logits function");
    SIEVE_CHECK(ctx.labels.defined(), "importance sampler: the ScoringContext has no labels");
    NoGradGuard no_grad;
    const Tensor logits = ctx.logits(candidates);  // evaluation mode (Note [scoring mode])
    SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == options_.presample,
                "importance sampler: ScoringContext::logits returned ",
                logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ",
                options_.presample, " examples; expected [", options_.presample, ", classes]");
    scores = compute_scores(options_.score, logits.detach(), index_select(ctx.labels, candidates));
  }
  NoGradGuard no_grad;
  scores = smoothed(scores);  // Note [presample smoothing]
  capture_tau(scores);  // before the draw: refuses non-finite scores (Note [non-finite scores])
  WeightedSample drawn = sample_with_replacement(scores, options_.batch, gen_);  // lines 8-9
  return {index_select(candidates, drawn.positions), drawn.weights};
}

Selection ImportanceSampler::select_from_history(const ScoringContext& ctx) {
  const int64_t n = ctx.dataset_size;
  if (!table_.defined()) table_ = Tensor::full({n}, -1.0, DType::F32, ctx.device);
  SIEVE_CHECK(table_.numel() == n, name(), ": a score table of ", table_.numel(),
              " examples (from a checkpoint?) for a data set of ", n);
  if (table_.device() != ctx.device) {
    table_ = table_.to(ctx.device);
    if (distribution_.defined()) distribution_ = distribution_.to(ctx.device);
    if (prefix_.defined()) prefix_ = prefix_.to(ctx.device);
  }
  if (steps_ % options_.refresh_every == 0) refresh_distribution(ctx);
  ++steps_;
  importance_on_ = distribution_.defined() && tau_ > tau_th_;
  if (!importance_on_) return draw_uniform(options_.batch, ctx, gen_);
  ++importance_steps_;
  const WeightedSample drawn = sample_with_replacement(distribution_, prefix_, options_.batch, gen_);
  return {drawn.positions, drawn.weights};  // positions are example indices: the "pre-sample" is all N
}

void ImportanceSampler::refresh_distribution(const ScoringContext& ctx) {
  ++refreshes_;
  const std::vector<float> table = table_.to(Device::cpu()).to_vector<float>();
  float largest = -1.f;
  for (float s : table)
    if (s >= 0.f && std::isfinite(s)) largest = std::max(largest, s);
  if (largest < 0.f) {  // nothing trained yet: stay uniform
    distribution_ = prefix_ = Tensor();
    tau_ = static_cast<float>(ctx.rank_mean(0.0));
    return;
  }
  // Unseen (and non-finite) entries take the largest recorded score.
  auto score = [&](float s) { return s >= 0.f && std::isfinite(s) ? s : largest; };
  double total = 0.0;
  for (float s : table) total += score(s);
  const double add = static_cast<double>(options_.smoothing) * total / static_cast<double>(table.size());
  std::vector<float> distribution(table.size()), prefix(table.size());
  double running = 0.0, sum_sq = 0.0;
  for (size_t i = 0; i < table.size(); ++i) {
    const float d = static_cast<float>(static_cast<double>(score(table[i])) + add);
    distribution[i] = d;
    running += d;
    sum_sq += static_cast<double>(d) * d;
    prefix[i] = static_cast<float>(running);
  }
  tau_ = static_cast<float>(ctx.rank_mean(tau_from_sums(running, sum_sq, static_cast<int64_t>(table.size()))));
  const int64_t n = static_cast<int64_t>(table.size());
  distribution_ = Tensor::from_vector(distribution, {n}, ctx.device);
  prefix_ = Tensor::from_vector(prefix, {n}, ctx.device);
}

void ImportanceSampler::observe(const Selection& selection, const Tensor& logits, const Tensor& labels,
                                const Tensor& losses) {
  if (options_.source == ScoreSource::History) {
    SIEVE_CHECK(table_.defined(), name(), ": observe() before select()");
    SIEVE_CHECK(logits.defined() && labels.defined(), name(), ": observe() needs the logits and labels of the "
                "training forward pass");
    NoGradGuard no_grad;
    const bool have_losses = options_.score == ScoreKind::Loss && losses.defined();
    scatter_losses(selection.indices,
                   have_losses ? losses.detach() : compute_scores(options_.score, logits.detach(), labels), table_);
    return;
  }
  if (!awaiting_observe_) return;  // τ_new came from the pre-sample, or from exact norms (Note [exact-norm sampler])
  awaiting_observe_ = false;
  SIEVE_CHECK(logits.defined() && labels.defined(), "importance sampler: observe() needs the logits and labels of "
              "the training forward pass");
  NoGradGuard no_grad;
  // Line 15: g_i for free. The loss score is the training pass's own per-example loss: no second pass over the logits.
  const bool have_losses = options_.score == ScoreKind::Loss && losses.defined();
  capture_tau(smoothed(have_losses ? losses.detach() : compute_scores(options_.score, logits.detach(), labels)));
}

std::vector<std::pair<std::string, double>> ImportanceSampler::stats() const {
  const double fraction = steps_ > 0 ? static_cast<double>(importance_steps_) / static_cast<double>(steps_) : 0.0;
  return {{"tau", tau_}, {"importance_on", importance_on_ ? 1.0 : 0.0}, {"importance_fraction", fraction}};
}

std::vector<std::pair<std::string, Tensor>> ImportanceSampler::example_columns() const {
  if (!table_.defined()) return {};
  std::vector<float> scores = table_.to(Device::cpu()).to_vector<float>();
  for (float& s : scores)
    if (s < 0.f) s = std::numeric_limits<float>::quiet_NaN();  // never trained: an empty field
  return {{"last_score", Tensor::from_vector(scores, {static_cast<int64_t>(scores.size())})}};
}

void ImportanceSampler::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("tau", tau_);
  ar.scalar("tau_pending", tau_pending_);
  if (tau_pending_) {  // read from the device now: checkpoints are rare
    float tau_new = ar.saving() ? tau_new_.get() : 0.f;
    ar.scalar("tau_new", tau_new);
    if (ar.loading()) tau_new_.capture(Tensor::scalar(tau_new));
  }
  ar.scalar("importance_on", importance_on_);
  ar.scalar("awaiting_observe", awaiting_observe_);
  ar.scalar("steps", steps_);
  ar.scalar("importance_steps", importance_steps_);
  if (options_.source != ScoreSource::History) return;
  ar.scalar("refreshes", refreshes_);
  if (ar.loading()) table_ = distribution_ = prefix_ = Tensor();
  const bool has_table = ar.flag("has_table", table_.defined());
  const bool has_distribution = ar.flag("has_distribution", distribution_.defined());
  if (has_table) ar.vector("scores", table_, DType::F32);
  if (has_distribution) {
    ar.vector("distribution", distribution_, DType::F32);
    ar.vector("prefix", prefix_, DType::F32);
  }
}

}  // namespace sieve

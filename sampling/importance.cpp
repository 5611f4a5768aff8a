#include "sampling/importance.h"

#include <cmath>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops/gather.h"
#include "sampling/sample.h"
#include "sampling/uniform.h"

namespace sieve {

float default_tau_th(int64_t presample, int64_t batch) {
  SIEVE_CHECK(presample >= 1 && batch >= 1, "default_tau_th: B and b must be positive, found B = ", presample,
              ", b = ", batch);
  return static_cast<float>(static_cast<double>(presample + 3 * batch) / (3.0 * static_cast<double>(batch)));
}

namespace {
ImportanceOptions checked(const ImportanceOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  SIEVE_CHECK(o.presample >= 1, "--presample must be positive, found ", o.presample);
  SIEVE_CHECK(o.batch <= o.presample, "--batch ", o.batch, " exceeds --presample ", o.presample,
              ": importance sampling draws the batch from the pre-sample");
  SIEVE_CHECK(o.tau_ema >= 0.f && o.tau_ema < 1.f, "--tau-ema must be in [0, 1), found ", o.tau_ema);
  SIEVE_CHECK(!o.tau_th || std::isfinite(*o.tau_th), "--tau-th must be finite, found ", o.tau_th.value_or(0.f));
  return o;
}
}  // namespace

ImportanceSampler::ImportanceSampler(const ImportanceOptions& options)
    : options_(checked(options)),
      tau_th_(options.tau_th.value_or(default_tau_th(options.presample, options.batch))),
      gen_(options.seed) {}

void ImportanceSampler::capture_tau(const Tensor& scores) {
  tau_new_.capture(tau_estimate(scores));  // queued behind the τ kernel; read at the next select()
  tau_pending_ = true;
}

void ImportanceSampler::fold_tau() {
  if (!tau_pending_) return;
  const float a = options_.tau_ema;
  tau_ = a * tau_ + (1.f - a) * tau_new_.get();  // line 16
  tau_pending_ = false;
}

Selection ImportanceSampler::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "importance sampler");
  fold_tau();
  importance_on_ = tau_ > tau_th_;  // line 5
  ++steps_;
  awaiting_observe_ = !importance_on_;
  if (!importance_on_) return draw_uniform(options_.batch, ctx, gen_);  // lines 12-13
  ++importance_steps_;

  SIEVE_CHECK(static_cast<bool>(ctx.logits), "importance sampler: the ScoringContext has no logits function");
  SIEVE_CHECK(ctx.labels.defined(), "importance sampler: the ScoringContext has no labels");
  NoGradGuard no_grad;
  const Tensor candidates = randint({options_.presample}, ctx.dataset_size, gen_, ctx.device);  // line 6
  const Tensor logits = ctx.logits(candidates);  // evaluation mode (Note [scoring mode])
  SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == options_.presample,
              "importance sampler: ScoringContext::logits returned ",
              logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ",
              options_.presample, " examples; expected [", options_.presample, ", classes]");
  const Tensor scores = compute_scores(options_.score, logits.detach(), index_select(ctx.labels, candidates));  // line 7
  WeightedSample drawn = sample_with_replacement(scores, options_.batch, gen_);  // lines 8-9
  capture_tau(scores);
  return {index_select(candidates, drawn.positions), drawn.weights};
}

void ImportanceSampler::observe(const Selection& selection, const Tensor& logits, const Tensor& labels,
                                const Tensor& losses) {
  if (!awaiting_observe_) return;  // an importance step already took τ_new from its pre-sample
  awaiting_observe_ = false;
  SIEVE_CHECK(logits.defined() && labels.defined(), "importance sampler: observe() needs the logits and labels of "
              "the training forward pass");
  NoGradGuard no_grad;
  // Line 15: g_i for free. The loss score is the training pass's own per-example loss: no second pass over the logits.
  const bool have_losses = options_.score == ScoreKind::Loss && losses.defined();
  capture_tau(have_losses ? losses.detach() : compute_scores(options_.score, logits.detach(), labels));
}

std::vector<std::pair<std::string, double>> ImportanceSampler::stats() const {
  const double fraction = steps_ > 0 ? static_cast<double>(importance_steps_) / static_cast<double>(steps_) : 0.0;
  return {{"tau", tau_}, {"importance_on", importance_on_ ? 1.0 : 0.0}, {"importance_fraction", fraction}};
}

void ImportanceSampler::save_state(CheckpointState& state, const std::string& prefix) {
  state.set_generator(prefix + "generator", gen_);
  state.set_double(prefix + "tau", tau_);
  state.set_int(prefix + "tau_pending", tau_pending_ ? 1 : 0);
  if (tau_pending_) state.set_double(prefix + "tau_new", tau_new_.get());
  state.set_int(prefix + "importance_on", importance_on_ ? 1 : 0);
  state.set_int(prefix + "awaiting_observe", awaiting_observe_ ? 1 : 0);
  state.set_int(prefix + "steps", steps_);
  state.set_int(prefix + "importance_steps", importance_steps_);
}

void ImportanceSampler::load_state(const CheckpointState& state, const std::string& prefix) {
  gen_ = state.get_generator(prefix + "generator");
  tau_ = static_cast<float>(state.get_double(prefix + "tau"));
  tau_pending_ = state.get_int(prefix + "tau_pending") != 0;
  if (tau_pending_) tau_new_.capture(Tensor::scalar(static_cast<float>(state.get_double(prefix + "tau_new"))));
  importance_on_ = state.get_int(prefix + "importance_on") != 0;
  awaiting_observe_ = state.get_int(prefix + "awaiting_observe") != 0;
  steps_ = state.get_int(prefix + "steps");
  importance_steps_ = state.get_int(prefix + "importance_steps");
}

}  // namespace sieve

#include "sampling/online_batch.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops/gather.h"
#include "core/ops/softmax.h"
#include "sampling/sample.h"
#include "sampling/selectors.h"
#include "sampling/uniform.h"

namespace sieve {

namespace {

// Examples per no-gradient forward pass when all losses are recomputed.
constexpr int64_t kRecomputeChunk = 1024;

OnlineBatchOptions checked(const OnlineBatchOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  SIEVE_CHECK(std::isfinite(o.selection_pressure) && o.selection_pressure >= 1.0,
              "--selection-pressure must be a finite number >= 1 (the top rank's odds over the last), found ",
              o.selection_pressure);
  SIEVE_CHECK(o.resort_every >= 1, "--resort-every must be >= 1 step, found ", o.resort_every);
  SIEVE_CHECK(o.recompute_every >= 0, "--recompute-every must be >= 0 epochs (0: never), found ", o.recompute_every);
  return o;
}

Tensor arange_i32(int64_t begin, int64_t end, Device device) {
  std::vector<int32_t> v(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) v[static_cast<size_t>(i - begin)] = static_cast<int32_t>(i);
  return Tensor::from_vector(v, {end - begin}, device);
}

}  // namespace

namespace {
// Unnormalised s^(-i / (n - 1)) in double, and their sum.
std::pair<std::vector<double>, double> rank_weights(int64_t n, double selection_pressure) {
  SIEVE_CHECK(n >= 1, "rank_probabilities: need at least one rank, found n = ", n);
  SIEVE_CHECK(std::isfinite(selection_pressure) && selection_pressure >= 1.0,
              "rank_probabilities: the selection pressure must be finite and >= 1, found ", selection_pressure);
  std::vector<double> p(static_cast<size_t>(n));
  const double decay = n > 1 ? std::log(selection_pressure) / static_cast<double>(n - 1) : 0.0;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += p[static_cast<size_t>(i)] = std::exp(-decay * static_cast<double>(i));
  return {std::move(p), total};
}
}  // namespace

Tensor rank_probabilities(int64_t n, double selection_pressure) {
  const auto [p, total] = rank_weights(n, selection_pressure);
  std::vector<float> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(p[i] / total);
  return Tensor::from_vector(out, {n});
}

Tensor rank_prefix(int64_t n, double selection_pressure) {
  const auto [p, total] = rank_weights(n, selection_pressure);
  std::vector<float> out(static_cast<size_t>(n));
  double running = 0.0;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>((running += p[i]) / total);
  return Tensor::from_vector(out, {n});
}

OnlineBatchSelector::OnlineBatchSelector(const OnlineBatchOptions& options)
    : options_(checked(options)), gen_(options.seed) {}

void OnlineBatchSelector::initialise(const ScoringContext& ctx) {
  const int64_t n = ctx.dataset_size;
  if (!losses_.defined()) {
    losses_ = Tensor::full({n}, std::numeric_limits<double>::infinity(), DType::F32, ctx.device);  // Note [unseen first]
    order_ = random_permutation(n, gen_, ctx.device);
  }
  SIEVE_CHECK(losses_.numel() == n && order_.numel() == n, "online-batch: a loss table of ", losses_.numel(),
              " examples (from a checkpoint?) for a data set of ", n);
  if (losses_.device() != ctx.device) {
    losses_ = losses_.to(ctx.device);
    order_ = order_.to(ctx.device);
  }
  if (!probabilities_.defined() || probabilities_.numel() != n || probabilities_.device() != ctx.device) {
    probabilities_ = rank_probabilities(n, options_.selection_pressure).to(ctx.device);
    prefix_ = rank_prefix(n, options_.selection_pressure).to(ctx.device);
  }
}

void OnlineBatchSelector::recompute_losses(const ScoringContext& ctx) {
  SIEVE_CHECK(static_cast<bool>(ctx.logits), "online-batch: --recompute-every needs a ScoringContext with logits");
  SIEVE_CHECK(ctx.labels.defined() && ctx.labels.numel() == ctx.dataset_size,
              "online-batch: --recompute-every needs the labels of all ", ctx.dataset_size, " examples");
  NoGradGuard no_grad;
  for (int64_t begin = 0; begin < ctx.dataset_size; begin += kRecomputeChunk) {
    const int64_t end = std::min(ctx.dataset_size, begin + kRecomputeChunk);
    const Tensor indices = arange_i32(begin, end, ctx.device);
    const Tensor logits = ctx.logits(indices);
    SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == end - begin,
                "online-batch: ScoringContext::logits returned ",
                logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ", end - begin,
                " examples; expected [", end - begin, ", classes]");
    scatter_losses(indices, cross_entropy(logits.detach(), ctx.labels.rows(begin, end)), losses_);
  }
}

Selection OnlineBatchSelector::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "online-batch");
  initialise(ctx);
  const int64_t n = ctx.dataset_size, b = options_.batch;
  const int64_t steps_per_epoch = (n + b - 1) / b;
  bool resort = steps_ % options_.resort_every == 0;
  if (options_.recompute_every > 0 && steps_ > 0 && steps_ % (options_.recompute_every * steps_per_epoch) == 0) {
    recompute_losses(ctx);
    resort = true;
  }
  if (resort) {
    order_ = rank_by_loss(losses_, order_);
    ++resorts_;
  }
  const WeightedSample ranks = sample_with_replacement(probabilities_, prefix_, b, gen_);  // weights not used
  const Tensor indices = index_select(order_, ranks.positions);
  ++steps_;
  served_ += b;
  coverage_.mark(indices, n, ctx.device);
  return {indices, Tensor::ones({b}, DType::F32, ctx.device)};
}

void OnlineBatchSelector::observe(const Selection& selection, const Tensor& /*logits*/, const Tensor& /*labels*/,
                                  const Tensor& losses) {
  SIEVE_CHECK(losses.defined(), "online-batch: observe() needs the per-example losses of the training forward pass");
  SIEVE_CHECK(losses_.defined(), "online-batch: observe() before select()");
  scatter_losses(selection.indices, losses.detach(), losses_);
}

std::vector<std::pair<std::string, double>> OnlineBatchSelector::stats() const {
  const double n = static_cast<double>(coverage_.dataset_size());
  return {{"epoch", n > 0 ? static_cast<double>(served_) / n : 0.0},
          {"coverage", coverage_.fraction()},
          {"resorts", static_cast<double>(resorts_)}};
}

void OnlineBatchSelector::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("steps", steps_);
  ar.scalar("served", served_);
  ar.scalar("resorts", resorts_);
  if (ar.loading()) losses_ = order_ = Tensor();
  if (ar.flag("initialised", losses_.defined())) {
    ar.tensor("losses", losses_, DType::F32);
    ar.vector("ranking", order_, DType::I32);
    if (ar.loading()) {
      check_dim(losses_, 1, "checkpoint loss table");
      SIEVE_CHECK(order_.numel() == losses_.numel(), "checkpoint: a ranking of ", order_.numel(), " for ",
                  losses_.numel(), " losses");
    }
  }
  coverage_.archive(ar);
}

}  // namespace sieve

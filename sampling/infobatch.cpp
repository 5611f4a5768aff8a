#include "sampling/infobatch.h"

#include <algorithm>
#include <cmath>

#include "core/checkpoint.h"
#include "core/ops/gather.h"
#include "core/ops/reduce.h"
#include "sampling/selectors.h"
#include "sampling/uniform.h"

namespace sieve {

namespace {
// The reference's initial score: above any plausible loss of a trained example, so that the first epoch keeps all.
constexpr float kInitialScore = 3.f;

InfoBatchOptions checked(const InfoBatchOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  SIEVE_CHECK(std::isfinite(o.prune_ratio) && o.prune_ratio >= 0.0 && o.prune_ratio <= 1.0,
              "--prune-ratio must be in [0, 1], found ", o.prune_ratio);
  SIEVE_CHECK(std::isfinite(o.anneal) && o.anneal >= 0.0 && o.anneal <= 1.0, "--anneal must be in [0, 1], found ",
              o.anneal);
  return o;
}
}  // namespace

InfoBatchSelector::InfoBatchSelector(const InfoBatchOptions& options)
    : options_(checked(options)),
      keep_ratio_(static_cast<float>(std::clamp(1.0 - options.prune_ratio, 0.1, 1.0))),
      gen_(options.seed) {}

void InfoBatchSelector::start_epoch(const ScoringContext& ctx) {
  const int64_t n = ctx.dataset_size;
  const Tensor order = random_permutation(n, gen_, ctx.device);
  ++epochs_;
  position_ = 0;
  annealed_ = annealed_ || ctx.progress >= options_.anneal;
  if (annealed_) {
    kept_ = order;
    weights_ = Tensor::ones({n}, DType::F32, ctx.device);
    pruned_share_ = 0;
    return;
  }
  // One host read per epoch: the mean, in double, of the scores (summed on the device).
  const double mean = static_cast<double>(sum(scores_).item()) / static_cast<double>(n);
  Tensor keep = Tensor::empty({n}, DType::U8, ctx.device);
  weights_ = Tensor::empty({n}, DType::F32, ctx.device);
  infobatch_prune(scores_, order, static_cast<float>(mean), keep_ratio_, gen_, keep, weights_);
  int64_t count = 0;
  kept_ = compact(order, keep, &count);
  SIEVE_CHECK(count > 0, "infobatch: every example was pruned from an epoch");  // impossible: some score >= mean
  pruned_share_ = 1.0 - static_cast<double>(count) / static_cast<double>(n);
  pruned_sum_ += pruned_share_;
}

Selection InfoBatchSelector::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "infobatch");
  const int64_t n = ctx.dataset_size;
  if (!scores_.defined()) scores_ = Tensor::full({n}, kInitialScore, DType::F32, ctx.device);
  SIEVE_CHECK(scores_.numel() == n, "infobatch: a score table of ", scores_.numel(),
              " examples (from a checkpoint?) for a data set of ", n);
  if (scores_.device() != ctx.device) {
    scores_ = scores_.to(ctx.device);
    if (weights_.defined()) weights_ = weights_.to(ctx.device);
    if (kept_.defined()) kept_ = kept_.to(ctx.device);
  }
  if (!kept_.defined() || position_ >= kept_.numel()) start_epoch(ctx);
  const int64_t count = std::min(options_.batch, kept_.numel() - position_);
  const Tensor indices = kept_.rows(position_, position_ + count);
  position_ += count;
  return {indices, index_select(weights_, indices)};
}

void InfoBatchSelector::observe(const Selection& selection, const Tensor& /*logits*/, const Tensor& /*labels*/,
                                const Tensor& losses) {
  SIEVE_CHECK(losses.defined(), "infobatch: observe() needs the per-example losses of the training forward pass");
  SIEVE_CHECK(scores_.defined(), "infobatch: observe() before select()");
  scatter_losses(selection.indices, losses.detach(), scores_);
}

std::vector<std::pair<std::string, double>> InfoBatchSelector::stats() const {
  return {{"epoch", static_cast<double>(epochs_)},
          {"pruned_share", pruned_share_},
          {"pruned_mean", epochs_ > 0 ? pruned_sum_ / static_cast<double>(epochs_) : 0.0},
          {"annealed", annealed_ ? 1.0 : 0.0}};
}

std::vector<std::pair<std::string, Tensor>> InfoBatchSelector::example_columns() const {
  if (!scores_.defined()) return {};
  std::vector<float> pruned = weights_.to(Device::cpu()).to_vector<float>();
  for (float& w : pruned) w = w == 0.f ? 1.f : 0.f;
  return {{"last_score", scores_}, {"pruned", Tensor::from_vector(pruned, {static_cast<int64_t>(pruned.size())})}};
}

void InfoBatchSelector::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("epochs", epochs_);
  ar.scalar("position", position_);
  ar.scalar("pruned_share", pruned_share_);
  ar.scalar("pruned_sum", pruned_sum_);
  ar.scalar("annealed", annealed_);
  if (ar.loading()) scores_ = weights_ = kept_ = Tensor();
  const bool initialised = ar.flag("initialised", scores_.defined());
  const bool in_epoch = ar.flag("in_epoch", kept_.defined());
  if (initialised) ar.vector("scores", scores_, DType::F32);
  if (in_epoch) {
    ar.vector("epoch_weights", weights_, DType::F32);
    ar.vector("epoch_examples", kept_, DType::I32);
    if (ar.loading())
      SIEVE_CHECK(scores_.defined() && weights_.numel() == scores_.numel() && kept_.numel() <= scores_.numel() &&
                      position_ >= 0 && position_ <= kept_.numel(),
                  "checkpoint: inconsistent infobatch state (", kept_.numel(), " epoch examples at position ",
                  position_, ", ", weights_.numel(), " weights)");
  }
}

}  // namespace sieve

#include "sampling/selective_backprop.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops/gather.h"
#include "core/ops/softmax.h"
#include "sampling/selectors.h"
#include "sampling/uniform.h"

namespace sieve {

namespace {
SelectiveBackpropOptions checked(const SelectiveBackpropOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  SIEVE_CHECK(o.history >= o.batch, "--sb-history must be at least --batch (", o.batch, "), found ", o.history);
  SIEVE_CHECK(std::isfinite(o.beta) && o.beta >= 0.f, "--sb-beta must be finite and >= 0, found ", o.beta);
  return o;
}
}  // namespace

SelectiveBackpropSelector::SelectiveBackpropSelector(const SelectiveBackpropOptions& options)
    : options_(checked(options)), gen_(options.seed) {}

void SelectiveBackpropSelector::initialise(const ScoringContext& ctx) {
  const Device d = ctx.device;
  if (!history_.defined()) history_ = Tensor::zeros({options_.history}, DType::F32, d);
  if (!pending_.defined()) pending_ = Tensor::zeros({2 * options_.batch}, DType::I32, d);
  if (!losses_.defined())
    losses_ = Tensor::full({ctx.dataset_size}, std::numeric_limits<double>::infinity(), DType::F32, d);
  SIEVE_CHECK(losses_.numel() == ctx.dataset_size, name(), ": a loss table of ",
              losses_.numel(), " examples (from a checkpoint?) for a data set of ", ctx.dataset_size);
  SIEVE_CHECK(!order_.defined() || order_.numel() == ctx.dataset_size, name(), ": a candidate order of ",
              order_.numel(), " examples (from a checkpoint?) for a data set of ", ctx.dataset_size);
  if (history_.device() != d) {
    history_ = history_.to(d);
    pending_ = pending_.to(d);
    losses_ = losses_.to(d);
    if (order_.defined()) order_ = order_.to(d);
  }
}

Tensor SelectiveBackpropSelector::next_candidates(const ScoringContext& ctx) {
  const int64_t n = ctx.dataset_size;
  if (!order_.defined() || position_ >= n) {
    order_ = random_permutation(n, gen_, ctx.device);
    position_ = 0;
    ++epochs_;
  }
  const int64_t count = std::min(options_.batch, n - position_);
  const Tensor candidates = order_.rows(position_, position_ + count);
  position_ += count;
  return candidates;
}

Tensor SelectiveBackpropSelector::candidate_losses(const ScoringContext& ctx, const Tensor& candidates) {
  if (options_.stale) return index_select(losses_, candidates);
  SIEVE_CHECK(static_cast<bool>(ctx.logits) && ctx.labels.defined(),
              "selective-backprop: the ScoringContext has no logits function or labels");
  NoGradGuard no_grad;
  const Tensor logits = ctx.logits(candidates);
  SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == candidates.numel(),
              "selective-backprop: ScoringContext::logits returned ",
              logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ",
              candidates.numel(), " examples");
  return cross_entropy(logits.detach(), index_select(ctx.labels, candidates));
}

Selection SelectiveBackpropSelector::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "selective-backprop");
  initialise(ctx);
  const int64_t b = options_.batch, r = options_.history;
  // Each round scores up to b candidates and keeps some; pending never exceeds 2b - 1 entries. The count of the kept
  // ones is read on the host (one synchronisation a round): the method must know when the batch is full.
  while (pending_count_ < b) {
    const Tensor candidates = next_candidates(ctx);
    const Tensor losses = candidate_losses(ctx, candidates);
    const int64_t n = candidates.numel();
    Tensor keep = Tensor::empty({n}, DType::U8, ctx.device);
    selective_backprop_keep(losses, history_, std::min(recorded_, r), options_.beta, gen_, keep);
    record_ring(losses, history_, recorded_ % r);
    if (!options_.stale) scatter_losses(candidates, losses, losses_);  // the dump's last_score
    recorded_ += n;
    int64_t count = 0;
    const Tensor kept = compact(candidates, keep, &count);
    if (count > 0) pending_.rows(pending_count_, pending_count_ + count).copy_(kept);
    pending_count_ += count;
    candidates_ += n;
    kept_ += count;
  }
  const Tensor indices = pending_.rows(0, b).clone();
  const int64_t rest = pending_count_ - b;
  if (rest > 0) pending_.rows(0, rest).copy_(pending_.rows(b, b + rest).clone());
  pending_count_ = rest;
  return {indices, Tensor::ones({b}, DType::F32, ctx.device)};
}

void SelectiveBackpropSelector::observe(const Selection& selection, const Tensor& /*logits*/,
                                        const Tensor& /*labels*/, const Tensor& losses) {
  if (!options_.stale) return;
  SIEVE_CHECK(losses.defined(), "selective-backprop-stale: observe() needs the training pass's per-example losses");
  SIEVE_CHECK(losses_.defined(), "selective-backprop-stale: observe() before select()");
  scatter_losses(selection.indices, losses.detach(), losses_);
}

std::vector<std::pair<std::string, double>> SelectiveBackpropSelector::stats() const {
  return {{"epoch", static_cast<double>(epochs_)},
          {"keep_rate", candidates_ > 0 ? static_cast<double>(kept_) / static_cast<double>(candidates_) : 0.0},
          {"candidates", static_cast<double>(candidates_)}};
}

std::vector<std::pair<std::string, Tensor>> SelectiveBackpropSelector::example_columns() const {
  if (!losses_.defined()) return {};
  return {{"last_score", losses_}};
}

void SelectiveBackpropSelector::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("recorded", recorded_);
  ar.scalar("position", position_);
  ar.scalar("pending_count", pending_count_);
  ar.scalar("epochs", epochs_);
  ar.scalar("candidates", candidates_);
  ar.scalar("kept", kept_);
  if (ar.loading()) history_ = pending_ = order_ = losses_ = Tensor();
  const bool initialised = ar.flag("initialised", history_.defined());
  const bool has_order = ar.flag("has_order", order_.defined());
  if (initialised) {
    ar.vector("history", history_, DType::F32);
    ar.vector("pending", pending_, DType::I32);
    if (ar.loading())
      SIEVE_CHECK(history_.numel() == options_.history && pending_.numel() == 2 * options_.batch &&
                      pending_count_ >= 0 && pending_count_ < options_.batch,
                  "checkpoint: a selective-backprop state of another --sb-history or --batch (history ",
                  history_.numel(), ", pending ", pending_.numel(), ")");
  }
  if (has_order) ar.vector("order", order_, DType::I32);
  if (initialised) ar.vector("losses", losses_, DType::F32);  // allocated with history_ and pending_ (initialise())
}

}  // namespace sieve

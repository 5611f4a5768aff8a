#include "sampling/epoch_subset.h"

#include <cmath>
#include <limits>

#include "core/checkpoint.h"
#include "sampling/selectors.h"
#include "sampling/uniform.h"

namespace sieve {

EpochSubsetSelector::EpochSubsetSelector(int64_t batch, double ratio, uint64_t seed, bool with_replacement,
                                         const char* who)
    : batch_(batch), ratio_(ratio), with_replacement_(with_replacement), who_(who), gen_(seed) {
  SIEVE_CHECK(batch >= 1, "--batch must be positive, found ", batch);
  // With replacement any r > 0 is a valid epoch (r > 1 draws more than N); a subset without replacement has r <= 1.
  SIEVE_CHECK(std::isfinite(ratio) && ratio > 0.0 && (with_replacement || ratio <= 1.0), who,
              ": --srs-ratio must be in ", with_replacement ? "(0, inf)" : "(0, 1]", ", found ", ratio);
}

int64_t EpochSubsetSelector::epoch_size(int64_t dataset_size) const {
  const double m = std::round(ratio_ * static_cast<double>(dataset_size));
  SIEVE_CHECK(m >= 1.0, who_, ": --srs-ratio ", ratio_, " gives round(r N) = 0 examples per epoch for N = ",
              dataset_size, "; need at least one");
  SIEVE_CHECK(m <= static_cast<double>(std::numeric_limits<int32_t>::max()), who_, ": round(r N) = ", m,
              " examples per epoch exceed the int32 indices");
  return static_cast<int64_t>(m);
}

Selection EpochSubsetSelector::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, who_);
  const int64_t m = epoch_size(ctx.dataset_size);
  if (subset_.defined()) {
    SIEVE_CHECK(subset_.numel() == m, who_, ": an epoch of ", subset_.numel(), " examples (from a checkpoint?) but ",
                "round(r N) = ", m, " for N = ", ctx.dataset_size);
    if (subset_.device() != ctx.device) subset_ = subset_.to(ctx.device);
  }
  if (!subset_.defined() || position_ >= m) {  // a new epoch
    subset_ = with_replacement_ ? randint({m}, ctx.dataset_size, gen_, ctx.device)  // SRS: m uniform draws
                                : random_permutation(ctx.dataset_size, gen_, ctx.device).rows(0, m).clone();
    position_ = 0;
    ++epochs_;
  }
  const int64_t n = std::min(batch_, m - position_);  // Note [epoch subset batches]
  const Tensor indices = subset_.rows(position_, position_ + n);
  position_ += n;
  coverage_.mark(indices, ctx.dataset_size, ctx.device);
  return {indices, Tensor::ones({n}, DType::F32, ctx.device)};
}

std::vector<std::pair<std::string, double>> EpochSubsetSelector::stats() const {
  return {{"epoch", static_cast<double>(epochs_)}, {"coverage", coverage_.fraction()}};
}

std::vector<std::pair<std::string, Tensor>> EpochSubsetSelector::example_columns() const {
  const int64_t n = coverage_.dataset_size();
  if (!subset_.defined() || n == 0) return {};
  std::vector<float> occurrences(static_cast<size_t>(n), 0.f);
  for (int32_t i : subset_.to(Device::cpu()).to_vector<int32_t>()) occurrences[static_cast<size_t>(i)] += 1.f;
  return {{"in_epoch_subset", Tensor::from_vector(occurrences, {n})}};
}

void EpochSubsetSelector::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("epochs", epochs_);
  ar.scalar("position", position_);
  if (ar.loading()) subset_ = Tensor();
  if (ar.flag("has_subset", subset_.defined())) {
    ar.tensor("subset", subset_, DType::I32);
    if (ar.loading()) {
      check_dim(subset_, 1, "checkpoint epoch subset");
      SIEVE_CHECK(position_ >= 0 && position_ <= subset_.numel(), "checkpoint: position ", position_,
                  " in an epoch of ", subset_.numel(), " examples");
    }
  }
  coverage_.archive(ar);
}

}  // namespace sieve

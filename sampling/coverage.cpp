#include "sampling/coverage.h"

#include "core/checkpoint.h"
#include "sampling/selectors.h"

namespace sieve {

void Coverage::mark(const Tensor& indices, int64_t dataset_size, Device device) {
  if (!seen_.defined()) {
    seen_ = Tensor::zeros({dataset_size}, DType::I32, device);
    distinct_ = Tensor::zeros({}, DType::I32, device);
  }
  SIEVE_CHECK(seen_.numel() == dataset_size, "coverage: kept for ", seen_.numel(), " examples, but the data set has ",
              dataset_size, " (a checkpoint of another data set?)");
  if (seen_.device() != device) {
    seen_ = seen_.to(device);
    distinct_ = distinct_.to(device);
  }
  mark_seen(indices, seen_, distinct_);
}

int64_t Coverage::distinct() const { return distinct_.defined() ? distinct_.to_vector<int32_t>()[0] : 0; }

double Coverage::fraction() const {
  return seen_.defined() ? static_cast<double>(distinct()) / static_cast<double>(seen_.numel()) : 0.0;
}

// The archive copies both ways: a CheckpointState held in memory shares no storage with a selector that goes on
// marking.
void Coverage::archive(StateArchive& ar) {
  Tensor distinct = ar.saving() && seen_.defined() ? distinct_.reshape({1}) : Tensor();  // kept as one int32 [1]
  if (ar.loading()) seen_ = distinct_ = Tensor();
  if (!ar.flag("coverage_kept", seen_.defined())) return;
  ar.tensor("seen", seen_, DType::I32);
  ar.tensor("distinct", distinct, DType::I32);
  if (ar.loading()) {
    check_dim(seen_, 1, "checkpoint coverage flags");
    SIEVE_CHECK(distinct.numel() == 1, "checkpoint coverage count: expected one int32, found ", distinct.description());
    distinct_ = distinct.reshape({});
  }
}

}  // namespace sieve

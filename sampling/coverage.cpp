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

// Copies both ways: a CheckpointState held in memory must not share storage with a selector that goes on marking.
void Coverage::save_state(CheckpointState& state, const std::string& prefix) const {
  state.set_int(prefix + "coverage_kept", seen_.defined() ? 1 : 0);
  if (seen_.defined()) state.add_tensors({{"seen", seen_.clone()}, {"distinct", distinct_.reshape({1}).clone()}}, prefix);
}

void Coverage::load_state(const CheckpointState& state, const std::string& prefix) {
  seen_ = Tensor();
  distinct_ = Tensor();
  if (state.get_int(prefix + "coverage_kept") == 0) return;
  const Tensor seen = state.find(prefix + "seen"), distinct = state.find(prefix + "distinct");
  SIEVE_CHECK(seen.defined() && distinct.defined(), "checkpoint: the selector's coverage (", prefix, "seen, ", prefix,
              "distinct) is missing");
  check_dtype(seen, DType::I32, "checkpoint coverage flags");
  check_dim(seen, 1, "checkpoint coverage flags");
  check_dtype(distinct, DType::I32, "checkpoint coverage count");
  SIEVE_CHECK(distinct.numel() == 1, "checkpoint coverage count: expected one int32, found ", distinct.description());
  seen_ = seen.clone();
  distinct_ = distinct.reshape({}).clone();
}

}  // namespace sieve

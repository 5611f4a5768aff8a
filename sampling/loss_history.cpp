#include "sampling/loss_history.h"

namespace sieve {

LossHistory::LossHistory(int64_t dataset_size, int window, Device device)
    : dataset_size_(dataset_size), window_(window), device_(device) {
  SIEVE_CHECK(false, "LossHistory: not implemented yet");
}

void LossHistory::record(const Tensor&, const Tensor&) { SIEVE_CHECK(false, "LossHistory::record: not implemented yet"); }

int64_t LossHistory::drop_learned(float, const Tensor&, int, int64_t, int64_t) {
  SIEVE_CHECK(false, "LossHistory::drop_learned: not implemented yet");
  return 0;
}

std::vector<std::pair<std::string, Tensor>> LossHistory::state() const {
  SIEVE_CHECK(false, "LossHistory::state: not implemented yet");
  return {};
}

void LossHistory::load_state(const std::vector<std::pair<std::string, Tensor>>&) {
  SIEVE_CHECK(false, "LossHistory::load_state: not implemented yet");
}

}  // namespace sieve

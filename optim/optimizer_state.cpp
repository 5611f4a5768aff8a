#include "optim/optimizer_state.h"

namespace sieve {

void add_optimizer_state(CheckpointState& state, const Optimizer& optimizer, const std::string& prefix) {
  state.add_tensors(optimizer.state(), prefix);
}

}  // namespace sieve

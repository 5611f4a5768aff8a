// Uniform selection with replacement: the plain-SGD baseline and the uniform phase of importance sampling.
#pragma once

#include <cstdint>
#include <string>

#include "core/random.h"
#include "sampling/selector.h"

namespace sieve {

// b example indices drawn uniformly with replacement from [0, N) (core's randint), weights 1, on ctx.device.
// Throws when the context holds no examples.
Selection draw_uniform(int64_t batch, const ScoringContext& ctx, Generator& gen);

// Checks that ctx describes a data set of 1 to 2^31 - 1 examples (indices are int32); `who` names the caller.
void check_dataset_size(const ScoringContext& ctx, const char* who);

// Every step: b indices uniform with replacement, weights 1. Drawing with replacement matches the uniform phase
// of the reference implementation of importance sampling, so the two start from the same batches for one seed.
class UniformSelector : public Selector {
 public:
  UniformSelector(int64_t batch, uint64_t seed);  // Note [selector seed] in sampling/make_selector.h
  std::string name() const override { return "uniform"; }
  Selection select(const ScoringContext& ctx) override;
  void archive(StateArchive& ar) override;

 private:
  int64_t batch_;
  Generator gen_;
};

}  // namespace sieve

#include "sampling/uniform.h"

#include <limits>

#include "core/checkpoint.h"
#include "core/ops/elementwise.h"

namespace sieve {

void check_dataset_size(const ScoringContext& ctx, const char* who) {
  SIEVE_CHECK(ctx.dataset_size >= 1, who, ": the data set is empty (N = ", ctx.dataset_size,
              "); need at least one example");
  SIEVE_CHECK(ctx.dataset_size <= std::numeric_limits<int32_t>::max(), who, ": N = ", ctx.dataset_size,
              " examples exceed the int32 indices");
}

Selection draw_uniform(int64_t batch, const ScoringContext& ctx, Generator& gen) {
  return {randint({batch}, ctx.dataset_size, gen, ctx.device), Tensor::ones({batch}, DType::F32, ctx.device)};
}

UniformSelector::UniformSelector(int64_t batch, uint64_t seed)
    : batch_(batch), gen_(seed) {
  SIEVE_CHECK(batch >= 1, "--batch must be positive, found ", batch);
}

Selection UniformSelector::select(const ScoringContext& ctx) {
  check_dataset_size(ctx, "uniform selector");
  return draw_uniform(batch_, ctx, gen_);
}

void UniformSelector::archive(StateArchive& ar) { ar.generator("generator", gen_); }

}  // namespace sieve

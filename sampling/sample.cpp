#include "sampling/sample.h"

#include <limits>

#include "core/ops/dispatch.h"

namespace sieve {

namespace {
void check_scores(const Tensor& scores, const char* what) {
  check_dtype(scores, DType::F32, what);
  check_dim(scores, 1, what);
  SIEVE_CHECK(scores.size(0) >= 1, what, ": expected at least one score, found ", scores.description());
  SIEVE_CHECK(scores.size(0) <= std::numeric_limits<int32_t>::max(), what, ": ", scores.size(0),
              " scores exceed the int32 positions");
}
}  // namespace

WeightedSample sample_with_replacement(const Tensor& scores, int64_t n, Generator& gen) {
  check_scores(scores, "sample_with_replacement scores");
  SIEVE_CHECK(n >= 0, "sample_with_replacement: the number of draws must be >= 0, found ", n);
  const Device device = scores.device();
  const int64_t count = scores.size(0);
  WeightedSample out{Tensor::empty({n}, DType::I32, device), Tensor::empty({n}, DType::F32, device)};
  if (n == 0) return out;
  Tensor prefix = Tensor::empty({count}, DType::F32, device);
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(device, sample_with_replacement, scores.data<float>(), count, n, gen.seed(), offset,
                 prefix.data<float>(), out.positions.data<int32_t>(), out.weights.data<float>());
  return out;
}

WeightedSample sample_with_replacement(const Tensor& scores, const Tensor& prefix, int64_t n, Generator& gen) {
  check_scores(scores, "sample_with_replacement scores");
  check_dtype(prefix, DType::F32, "sample_with_replacement prefix");
  SIEVE_CHECK(prefix.shape() == scores.shape() && prefix.device() == scores.device(),
              "sample_with_replacement: the prefix ", prefix.description(), " must match the scores ",
              scores.description());
  SIEVE_CHECK(n >= 0, "sample_with_replacement: the number of draws must be >= 0, found ", n);
  const Device device = scores.device();
  WeightedSample out{Tensor::empty({n}, DType::I32, device), Tensor::empty({n}, DType::F32, device)};
  if (n == 0) return out;
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(device, draw_by_prefix_sum, scores.data<float>(), prefix.data<float>(), scores.size(0), n,
                 gen.seed(), offset, out.positions.data<int32_t>(), out.weights.data<float>());
  return out;
}

Tensor tau_estimate(const Tensor& scores) {
  check_scores(scores, "tau_estimate scores");
  const Device device = scores.device();
  Tensor tau = Tensor::empty({}, DType::F32, device);
  SIEVE_DISPATCH(device, tau_estimate, scores.data<float>(), scores.size(0), tau.data<float>());
  return tau;
}

}  // namespace sieve

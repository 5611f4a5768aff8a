#include "data/sequence.h"

#include <utility>

#include "core/ops/dispatch.h"
#include "core/philox.h"

namespace sieve {

SequenceView parse_sequence_view(const std::string& text) {
  if (text.empty() || text == "none") return SequenceView::None;
  if (text == "pixels") return SequenceView::Pixels;
  SIEVE_FAIL("unknown sequence view \"", text, "\"; expected pixels (or none)");
}

std::vector<int32_t> pixel_permutation(int64_t n, uint64_t seed) {
  SIEVE_CHECK(n >= 0 && n <= (int64_t{1} << 31) - 1, "pixel_permutation: the length must be in [0, 2^31 - 1], found ",
              n);
  std::vector<int32_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t i = n - 1; i > 0; --i) {
    const uint32_t j = philox_below(seed, 0, static_cast<uint64_t>(i), static_cast<uint32_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[j]);
  }
  return perm;
}

Dataset pixel_sequence(const Dataset& d, const std::vector<int32_t>& order) {
  SIEVE_CHECK(d.images.defined() && d.images.dtype() == DType::U8 && d.images.dim() == 4 && d.images.size(1) == 1,
              "pixel sequence view: expects single-channel images uint8 [N, 1, H, W], found ",
              d.images.defined() ? d.images.description() : "no images", " in ", d.name.empty() ? "the data" : d.name);
  const int64_t n = d.size(), steps = d.height() * d.width();
  Dataset out = d;
  if (order.empty()) {
    out.images = d.images.reshape({n, 1, steps, 1});
    return out;
  }
  SIEVE_CHECK(static_cast<int64_t>(order.size()) == steps, "pixel sequence view: the order has ", order.size(),
              " entries, expected one per pixel, ", steps, " (", d.height(), "x", d.width(), ")");
  std::vector<bool> seen(static_cast<size_t>(steps), false);
  for (size_t t = 0; t < order.size(); ++t) {
    const int32_t p = order[t];
    SIEVE_CHECK(p >= 0 && p < steps && !seen[static_cast<size_t>(p)], "pixel sequence view: the order is not a "
                "permutation of 0..", steps - 1, ": entry ", t, " is ", p,
                p >= 0 && p < steps ? " again" : ", out of range");
    seen[static_cast<size_t>(p)] = true;
  }
  const Tensor index = Tensor::from_vector(order, {steps}, d.device());
  out.images = Tensor::empty({n, 1, steps, 1}, DType::U8, d.device());
  SIEVE_DISPATCH(d.device(), gather_columns_u8, d.images.data<uint8_t>(), n, steps, index.data<int32_t>(),
                 out.images.data<uint8_t>());
  return out;
}

}  // namespace sieve

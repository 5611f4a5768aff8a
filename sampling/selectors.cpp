#include "sampling/selectors.h"

#include <limits>

#include "core/ops/dispatch.h"

namespace sieve {

namespace {
void check_indices(const Tensor& indices, const char* what) {
  check_dtype(indices, DType::I32, what);
  check_dim(indices, 1, what);
}
void check_table(const Tensor& table, DType dtype, const char* what) {
  check_dtype(table, dtype, what);
  check_dim(table, 1, what);
  SIEVE_CHECK(table.size(0) >= 1 && table.size(0) <= std::numeric_limits<int32_t>::max(), what,
              ": expected 1 to 2^31 - 1 entries, found ", table.description());
}
// uint32 keys live in int32 tensors: sieve has no unsigned 32-bit dtype, and the bits are all that the sort reads.
uint32_t* as_words(const Tensor& t) { return reinterpret_cast<uint32_t*>(t.data<int32_t>()); }
}  // namespace

void mark_seen(const Tensor& indices, Tensor& seen, Tensor& distinct) {
  check_indices(indices, "mark_seen indices");
  check_table(seen, DType::I32, "mark_seen seen");
  check_dtype(distinct, DType::I32, "mark_seen distinct");
  SIEVE_CHECK(distinct.numel() == 1, "mark_seen distinct: expected one int32 count, found ", distinct.description());
  check_same_device(indices, seen, "mark_seen indices and seen");
  check_same_device(seen, distinct, "mark_seen seen and distinct");
  if (indices.numel() == 0) return;
  SIEVE_DISPATCH(seen.device(), mark_seen, indices.data<int32_t>(), indices.numel(), seen.data<int32_t>(),
                 seen.numel(), distinct.data<int32_t>());
}

void scatter_losses(const Tensor& indices, const Tensor& losses, Tensor& table) {
  check_indices(indices, "scatter_losses indices");
  check_dtype(losses, DType::F32, "scatter_losses losses");
  check_dim(losses, 1, "scatter_losses losses");
  check_table(table, DType::F32, "scatter_losses table");
  SIEVE_CHECK(losses.numel() == indices.numel(), "scatter_losses: ", indices.numel(), " indices but ", losses.numel(),
              " losses");
  check_same_device(indices, table, "scatter_losses indices and table");
  check_same_device(losses, table, "scatter_losses losses and table");
  if (indices.numel() == 0) return;
  SIEVE_DISPATCH(table.device(), scatter_losses, indices.data<int32_t>(), losses.data<float>(), indices.numel(),
                 table.data<float>(), table.numel());
}

Tensor random_permutation(int64_t n, Generator& gen, Device device) {
  SIEVE_CHECK(n >= 1 && n <= std::numeric_limits<int32_t>::max(), "random_permutation: n = ", n,
              " must be in [1, 2^31 - 1]");
  Tensor out = Tensor::empty({n}, DType::I32, device);
  Tensor keys = Tensor::empty({n}, DType::I32, device), keys_out = Tensor::empty({n}, DType::I32, device);
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(device, random_permutation, n, gen.seed(), offset, as_words(keys), as_words(keys_out),
                 out.data<int32_t>());
  return out;
}

Tensor rank_by_loss(const Tensor& losses, const Tensor& order) {
  check_table(losses, DType::F32, "rank_by_loss losses");
  check_indices(order, "rank_by_loss order");
  SIEVE_CHECK(order.numel() == losses.numel(), "rank_by_loss: order of ", order.numel(), " entries for ",
              losses.numel(), " losses; expected a permutation of every example");
  check_same_device(losses, order, "rank_by_loss losses and order");
  const Device device = losses.device();
  const int64_t n = losses.numel();
  Tensor out = Tensor::empty({n}, DType::I32, device);
  Tensor keys = Tensor::empty({n}, DType::F32, device), keys_out = Tensor::empty({n}, DType::F32, device);
  SIEVE_DISPATCH(device, rank_by_loss, losses.data<float>(), order.data<int32_t>(), n, keys.data<float>(),
                 keys_out.data<float>(), out.data<int32_t>());
  return out;
}

}  // namespace sieve

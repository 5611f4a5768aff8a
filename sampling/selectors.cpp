#include "sampling/selectors.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ops/dispatch.h"
#include "sampling/loss_history.h"

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

void infobatch_prune(const Tensor& scores, const Tensor& order, float mean, float keep_ratio, Generator& gen,
                     Tensor& keep, Tensor& weights) {
  check_table(scores, DType::F32, "infobatch_prune scores");
  check_indices(order, "infobatch_prune order");
  check_dtype(keep, DType::U8, "infobatch_prune keep");
  check_dtype(weights, DType::F32, "infobatch_prune weights");
  const int64_t n = scores.numel();
  SIEVE_CHECK(order.numel() == n && keep.numel() == n && weights.numel() == n, "infobatch_prune: ", n,
              " scores need an order, keep flags and weights of as many entries; found ", order.description(), ", ",
              keep.description(), ", ", weights.description());
  SIEVE_CHECK(keep_ratio > 0.f && keep_ratio <= 1.f, "infobatch_prune: keep ratio ", keep_ratio,
              " must be in (0, 1]");
  check_same_device(scores, order, "infobatch_prune scores and order");
  check_same_device(scores, keep, "infobatch_prune scores and keep");
  check_same_device(scores, weights, "infobatch_prune scores and weights");
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(scores.device(), infobatch_prune, scores.data<float>(), order.data<int32_t>(), n, mean, keep_ratio,
                 gen.seed(), offset, keep.data<uint8_t>(), weights.data<float>());
}

void selective_backprop_keep(const Tensor& losses, const Tensor& history, int64_t count, float beta, Generator& gen,
                             Tensor& keep) {
  check_dtype(losses, DType::F32, "selective_backprop_keep losses");
  check_dim(losses, 1, "selective_backprop_keep losses");
  check_table(history, DType::F32, "selective_backprop_keep history");
  check_dtype(keep, DType::U8, "selective_backprop_keep keep");
  SIEVE_CHECK(keep.numel() == losses.numel(), "selective_backprop_keep: ", losses.numel(), " losses but ",
              keep.numel(), " keep flags");
  SIEVE_CHECK(count >= 0 && count <= history.numel(), "selective_backprop_keep: ", count,
              " recorded losses in a history of ", history.numel());
  SIEVE_CHECK(beta >= 0.f && std::isfinite(beta), "selective_backprop_keep: beta must be finite and >= 0, found ",
              beta);
  check_same_device(losses, history, "selective_backprop_keep losses and history");
  check_same_device(losses, keep, "selective_backprop_keep losses and keep");
  const int64_t n = losses.numel();
  if (n == 0) return;
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  SIEVE_DISPATCH(losses.device(), selective_backprop_keep, losses.data<float>(), n, history.data<float>(), count, beta,
                 gen.seed(), offset, keep.data<uint8_t>());
}

void record_ring(const Tensor& losses, Tensor& history, int64_t head) {
  check_dtype(losses, DType::F32, "record_ring losses");
  check_dim(losses, 1, "record_ring losses");
  check_table(history, DType::F32, "record_ring history");
  SIEVE_CHECK(losses.numel() <= history.numel(), "record_ring: ", losses.numel(), " losses exceed a ring of ",
              history.numel());
  SIEVE_CHECK(head >= 0 && head < history.numel(), "record_ring: head ", head, " outside a ring of ",
              history.numel());
  check_same_device(losses, history, "record_ring losses and history");
  if (losses.numel() == 0) return;
  SIEVE_DISPATCH(history.device(), record_ring, losses.data<float>(), losses.numel(), history.data<float>(),
                 history.numel(), head);
}

void count_indices(const Tensor& indices, Tensor& counts) {
  check_indices(indices, "count_indices indices");
  check_table(counts, DType::I32, "count_indices counts");
  check_same_device(indices, counts, "count_indices indices and counts");
  if (indices.numel() == 0) return;
  SIEVE_DISPATCH(counts.device(), count_indices, indices.data<int32_t>(), indices.numel(), counts.data<int32_t>(),
                 counts.numel());
}

Tensor compact(const Tensor& values, const Tensor& keep, int64_t* count) {
  check_indices(values, "compact values");
  check_dtype(keep, DType::U8, "compact keep");
  SIEVE_CHECK(keep.numel() == values.numel(), "compact: ", values.numel(), " values but ", keep.numel(), " flags");
  check_same_device(values, keep, "compact values and keep");
  const Device device = values.device();
  const int64_t n = values.numel();
  Tensor out = Tensor::empty({std::max<int64_t>(n, 1)}, DType::I32, device);
  Tensor n_out = Tensor::zeros({}, DType::I32, device);
  if (n > 0)
    SIEVE_DISPATCH(device, compact_active, values.data<int32_t>(), n, keep.data<uint8_t>(), out.data<int32_t>(),
                   n_out.data<int32_t>());
  const int64_t kept = n_out.to(Device::cpu()).to_vector<int32_t>()[0];
  if (count) *count = kept;
  return out.rows(0, kept);
}

}  // namespace sieve

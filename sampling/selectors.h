// The operations behind the epoch-subset selectors (sampling/srs.h, sampling/random_subset.h), online batch selection
// (sampling/online_batch.h), InfoBatch (sampling/infobatch.h), selective backprop (sampling/selective_backprop.h) and
// the training loop's per-example counts: coverage bookkeeping, a random permutation, the scatter of training losses,
// the stable ranking by loss, InfoBatch's pruning, selective backprop's keep test, a ring of recent losses, counts
// and a stable compaction. Each has a CPU loop and a CUDA kernel (sampling/selectors_cuda.cu) with one meaning.
#pragma once

#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"

namespace sieve {

// seen[i] = 1 for every i in indices (int32 [n]); distinct (int32, 0-d) grows by the number of entries of `seen`
// (int32 [N], 0 or 1) that were 0. The count is a set's size, so both backends give the same value however the
// repeats are ordered. All on one device; indices are checked on the CPU, trusted on the GPU (out of range: skipped).
void mark_seen(const Tensor& indices, Tensor& seen, Tensor& distinct);

// table[indices[j]] = losses[j] (float32 [n] into float32 [N]); where an index repeats, its last entry wins.
void scatter_losses(const Tensor& indices, const Tensor& losses, Tensor& table);

// A uniformly random permutation of 0..n-1 (int32 [n]) on `device`: the stable ascending sort of n Philox words of
// `gen` (n counters), the same on both backends. Two equal words (probability about n^2 / 2^33) keep index order.
Tensor random_permutation(int64_t n, Generator& gen, Device device);

// The entries of `order` (int32 [N], a permutation of 0..N-1) stably sorted by losses[order[i]] descending (float32
// [N]) under Note [rank key] in sampling/selectors_math.h: a tie keeps its previous relative order.
Tensor rank_by_loss(const Tensor& losses, const Tensor& order);

// InfoBatch's pruning of one epoch: for each position p of `order` (int32 [N], a permutation of 0..N-1), with
// e = order[p], weights[e] = infobatch_weight(scores[e], mean, u_p, keep_ratio) (sampling/selectors_math.h) and
// keep[p] = 1 when that weight is not 0, where u_p is Philox uniform p of N counters of `gen`. scores float32 [N],
// keep uint8 [N] and weights float32 [N], written; all on one device.
void infobatch_prune(const Tensor& scores, const Tensor& order, float mean, float keep_ratio, Generator& gen,
                     Tensor& keep, Tensor& weights);

// keep[j] = 1 with probability selective_backprop_probability(losses[j], history[0, count), beta), from Philox uniform
// j of n counters of `gen` (losses float32 [n], history float32 [R] with count <= R, keep uint8 [n]).
void selective_backprop_keep(const Tensor& losses, const Tensor& history, int64_t count, float beta, Generator& gen,
                             Tensor& keep);

// history[(head + j) mod R] = losses[j] for j < n <= R: appends n losses to a ring of the last R.
void record_ring(const Tensor& losses, Tensor& history, int64_t head);

// counts[indices[j]] += 1 for every j (int32 [n] into int32 [N]): how often each example was trained on, repeats
// counted. Indices are checked on the CPU, trusted on the GPU (out of range: skipped).
void count_indices(const Tensor& indices, Tensor& counts);

// The entries of `values` (int32 [n]) whose keep flag (uint8 [n]) is not 0, in order, and their number (read on the
// host: one synchronisation). The result is a view of the first `count` rows of a fresh tensor.
Tensor compact(const Tensor& values, const Tensor& keep, int64_t* count);

// Backends. `keys` and `keys_out` are workspaces of n entries (the GPU's sort needs both; the CPU uses `keys`).
namespace cpu {
void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct);
void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count);
void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out);
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out);
void infobatch_prune(const float* scores, const int32_t* order, int64_t n, float mean, float keep_ratio, uint64_t seed,
                     uint64_t offset, uint8_t* keep, float* weights);
void selective_backprop_keep(const float* losses, int64_t n, const float* history, int64_t count, float beta,
                             uint64_t seed, uint64_t offset, uint8_t* keep);
void record_ring(const float* losses, int64_t n, float* history, int64_t size, int64_t head);
void count_indices(const int32_t* indices, int64_t n, int32_t* counts, int64_t count);
}  // namespace cpu
namespace cuda {
void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct);
void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count);
void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out);
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out);
void infobatch_prune(const float* scores, const int32_t* order, int64_t n, float mean, float keep_ratio, uint64_t seed,
                     uint64_t offset, uint8_t* keep, float* weights);
void selective_backprop_keep(const float* losses, int64_t n, const float* history, int64_t count, float beta,
                             uint64_t seed, uint64_t offset, uint8_t* keep);
void record_ring(const float* losses, int64_t n, float* history, int64_t size, int64_t head);
void count_indices(const int32_t* indices, int64_t n, int32_t* counts, int64_t count);
}  // namespace cuda

}  // namespace sieve

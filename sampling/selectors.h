// The operations behind the epoch-subset selectors (sampling/srs.h, sampling/random_subset.h) and online batch
// selection (sampling/online_batch.h): coverage bookkeeping, a random permutation, the scatter of training losses and
// the stable ranking by loss. Each has a CPU loop and a CUDA kernel (sampling/selectors_cuda.cu) with one meaning.
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

// Backends. `keys` and `keys_out` are workspaces of n entries (the GPU's sort needs both; the CPU uses `keys`).
namespace cpu {
void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct);
void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count);
void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out);
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out);
}  // namespace cpu
namespace cuda {
void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct);
void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count);
void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out);
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out);
}  // namespace cuda

}  // namespace sieve

// CUDA kernels of the selector operations (sampling/selectors.h): coverage marking, the loss scatter, the two sorts
// (CUB radix sort pairs) behind a random permutation and the ranking by loss, InfoBatch's pruning, selective
// backprop's keep test, the loss ring and the per-example counts.
#include <cub/device/device_radix_sort.cuh>

#include "core/allocator.h"
#include "core/cuda_launch.cuh"
#include "core/scratch.h"
#include "core/philox.h"
#include "sampling/selectors.h"
#include "sampling/selectors_math.h"

namespace sieve::cuda {

namespace {

constexpr int kThreads = 256;

}  // namespace

// seen[i] = 1 for i in indices; distinct += |{i : seen[i] was 0}|. atomicExch hands each newly seen example to
// exactly one thread, which counts it. One thread per index.
__global__ void mark_seen_kernel(const int32_t* __restrict__ indices,  // (n)
                                 int64_t n, int32_t* __restrict__ seen,  // (count)
                                 int64_t count, int32_t* __restrict__ distinct) {  // (1)
  SIEVE_GRID_STRIDE(j, n) {
    const int32_t i = indices[j];
    if (i < 0 || i >= count) continue;  // trusted input; an invalid index must not write out of bounds
    if (atomicExch(seen + i, 1) == 0) atomicAdd(distinct, 1);
  }
}

void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct) {
  launch("mark_seen_kernel", n, kThreads, mark_seen_kernel, indices, n, seen, count, distinct);
}

// table[indices[j]] = losses[j] for the last occurrence of each index (is_last_occurrence). One thread per entry.
__global__ void scatter_losses_kernel(const int32_t* __restrict__ indices,  // (n)
                                      const float* __restrict__ losses,   // (n)
                                      int64_t n, float* __restrict__ table,  // (count)
                                      int64_t count) {
  SIEVE_GRID_STRIDE(j, n) {
    const int32_t i = indices[j];
    if (i < 0 || i >= count || !is_last_occurrence(indices, n, j)) continue;
    table[i] = losses[j];
  }
}

void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count) {
  launch("scatter_losses_kernel", n, kThreads, scatter_losses_kernel, indices, losses, n, table, count);
}

// keys[i] = Philox word i of (seed, offset), values[i] = i: the input of the sort that makes a random permutation.
__global__ void permutation_keys_kernel(int64_t n, uint64_t seed, uint64_t offset,
                                        uint32_t* __restrict__ keys,   // (n)
                                        int32_t* __restrict__ values) {  // (n)
  SIEVE_GRID_STRIDE(i, n) {
    keys[i] = philox_word(seed, offset, static_cast<uint64_t>(i));
    values[i] = static_cast<int32_t>(i);
  }
}

void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out) {
  DeviceScratch values(static_cast<size_t>(n) * sizeof(int32_t));
  int32_t* values_in = values.as<int32_t>();
  launch("permutation_keys_kernel", n, kThreads, permutation_keys_kernel, n, seed, offset, keys, values_in);
  const int items = static_cast<int>(n);  // n <= 2^31 - 1, checked by the caller
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, keys_out, values_in, out, items, 0,
                                                   32, stream()));
  DeviceScratch temp(cub_bytes(temp_bytes));
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, keys, keys_out, values_in, out, items, 0,
                                                   32, stream()));
}

// keys[i] = loss_rank_key(losses[order[i]]) (Note [rank key]): the sort keys of the current order. One thread each.
__global__ void rank_keys_kernel(const float* __restrict__ losses,  // (n)
                                 const int32_t* __restrict__ order,  // (n)
                                 int64_t n, float* __restrict__ keys) {  // (n)
  SIEVE_GRID_STRIDE(i, n) {
    const int32_t e = order[i];
    keys[i] = e >= 0 && e < n ? loss_rank_key(losses[e]) : -INFINITY;  // an invalid entry sinks to the end
  }
}

// CUB's radix sort is stable, as std::stable_sort on the CPU: equal keys keep their order from `order`.
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out) {
  launch("rank_keys_kernel", n, kThreads, rank_keys_kernel, losses, order, n, keys);
  const int items = static_cast<int>(n);
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp_bytes, keys, keys_out, order, out, items,
                                                             0, 32, stream()));
  DeviceScratch temp(cub_bytes(temp_bytes));
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(temp.data(), temp_bytes, keys, keys_out, order, out,
                                                             items, 0, 32, stream()));
}

// weights[order[p]] = infobatch_weight(...) and keep[p] = weight != 0 (InfoBatch, eq. 2-3). One thread per position.
__global__ void infobatch_prune_kernel(const float* __restrict__ scores,  // (n) by example
                                       const int32_t* __restrict__ order,  // (n) a permutation
                                       int64_t n, float mean, float keep_ratio, uint64_t seed, uint64_t offset,
                                       uint8_t* __restrict__ keep,         // (n) by position
                                       float* __restrict__ weights) {      // (n) by example
  SIEVE_GRID_STRIDE(p, n) {
    const int32_t e = order[p];
    if (e < 0 || e >= n) {  // trusted input; an invalid entry is pruned rather than written out of bounds
      keep[p] = 0;
      continue;
    }
    const float w = infobatch_weight(scores[e], mean, philox_uniform(seed, offset, static_cast<uint64_t>(p)), keep_ratio);
    weights[e] = w;
    keep[p] = w != 0.f ? 1 : 0;
  }
}

void infobatch_prune(const float* scores, const int32_t* order, int64_t n, float mean, float keep_ratio, uint64_t seed,
                     uint64_t offset, uint8_t* keep, float* weights) {
  launch("infobatch_prune_kernel", n, kThreads, infobatch_prune_kernel, scores, order, n, mean, keep_ratio, seed,
         offset, keep, weights);
}

// keep[j] = u_j < (percentile of losses[j] among history[0, count))^beta (Jiang et al. 2019, eq. 2). One thread per
// candidate, each reading the whole history (R = 1024 floats, cached): n R comparisons, a few microseconds.
__global__ void selective_backprop_keep_kernel(const float* __restrict__ losses,   // (n)
                                               int64_t n, const float* __restrict__ history,  // (count)
                                               int64_t count, float beta, uint64_t seed, uint64_t offset,
                                               uint8_t* __restrict__ keep) {  // (n)
  SIEVE_GRID_STRIDE(j, n) {
    const float p = selective_backprop_probability(losses[j], history, count, beta);
    keep[j] = philox_uniform(seed, offset, static_cast<uint64_t>(j)) < p ? 1 : 0;
  }
}

void selective_backprop_keep(const float* losses, int64_t n, const float* history, int64_t count, float beta,
                             uint64_t seed, uint64_t offset, uint8_t* keep) {
  launch("selective_backprop_keep_kernel", n, kThreads, selective_backprop_keep_kernel, losses, n, history, count, beta,
         seed, offset, keep);
}

// history[(head + j) mod size] = losses[j]; n <= size, so no two threads write one slot. One thread per loss.
__global__ void record_ring_kernel(const float* __restrict__ losses,  // (n)
                                   int64_t n, float* __restrict__ history,  // (size)
                                   int64_t size, int64_t head) {
  SIEVE_GRID_STRIDE(j, n) {
    history[(head + j) % size] = losses[j];
  }
}

void record_ring(const float* losses, int64_t n, float* history, int64_t size, int64_t head) {
  launch("record_ring_kernel", n, kThreads, record_ring_kernel, losses, n, history, size, head);
}

// counts[indices[j]] += 1: integer atomics, so the result does not depend on the order of the threads.
__global__ void count_indices_kernel(const int32_t* __restrict__ indices,  // (n)
                                     int64_t n, int32_t* __restrict__ counts,  // (count)
                                     int64_t count) {
  SIEVE_GRID_STRIDE(j, n) {
    const int32_t i = indices[j];
    if (i >= 0 && i < count) atomicAdd(counts + i, 1);
  }
}

void count_indices(const int32_t* indices, int64_t n, int32_t* counts, int64_t count) {
  launch("count_indices_kernel", n, kThreads, count_indices_kernel, indices, n, counts, count);
}

}  // namespace sieve::cuda

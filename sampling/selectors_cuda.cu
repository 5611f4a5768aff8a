// CUDA kernels of the selector operations (sampling/selectors.h): coverage marking, the loss scatter, and the two
// sorts (CUB radix sort pairs) behind a random permutation and the ranking by loss.
#include <cub/device/device_radix_sort.cuh>

#include "core/allocator.h"
#include "core/cuda_check.h"
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
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = indices[j];
    if (i < 0 || i >= count) continue;  // trusted input; an invalid index must not write out of bounds
    if (atomicExch(seen + i, 1) == 0) atomicAdd(distinct, 1);
  }
}

void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct) {
  mark_seen_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(indices, n, seen, count, distinct);
  SIEVE_CUDA_CHECK_LAUNCH("mark_seen_kernel");
}

// table[indices[j]] = losses[j] for the last occurrence of each index (is_last_occurrence). One thread per entry.
__global__ void scatter_losses_kernel(const int32_t* __restrict__ indices,  // (n)
                                      const float* __restrict__ losses,   // (n)
                                      int64_t n, float* __restrict__ table,  // (count)
                                      int64_t count) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = indices[j];
    if (i < 0 || i >= count || !is_last_occurrence(indices, n, j)) continue;
    table[i] = losses[j];
  }
}

void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count) {
  scatter_losses_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(indices, losses, n, table, count);
  SIEVE_CUDA_CHECK_LAUNCH("scatter_losses_kernel");
}

// keys[i] = Philox word i of (seed, offset), values[i] = i: the input of the sort that makes a random permutation.
__global__ void permutation_keys_kernel(int64_t n, uint64_t seed, uint64_t offset,
                                        uint32_t* __restrict__ keys,   // (n)
                                        int32_t* __restrict__ values) {  // (n)
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keys[i] = philox_word(seed, offset, static_cast<uint64_t>(i));
    values[i] = static_cast<int32_t>(i);
  }
}

void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* keys, uint32_t* keys_out, int32_t* out) {
  DeviceScratch values(static_cast<size_t>(n) * sizeof(int32_t));
  int32_t* values_in = values.as<int32_t>();
  permutation_keys_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(n, seed, offset, keys, values_in);
  SIEVE_CUDA_CHECK_LAUNCH("permutation_keys_kernel");
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
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t e = order[i];
    keys[i] = e >= 0 && e < n ? loss_rank_key(losses[e]) : -INFINITY;  // an invalid entry sinks to the end
  }
}

// CUB's radix sort is stable, as std::stable_sort on the CPU: equal keys keep their order from `order`.
void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* keys, float* keys_out, int32_t* out) {
  rank_keys_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(losses, order, n, keys);
  SIEVE_CUDA_CHECK_LAUNCH("rank_keys_kernel");
  const int items = static_cast<int>(n);
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp_bytes, keys, keys_out, order, out, items,
                                                             0, 32, stream()));
  DeviceScratch temp(cub_bytes(temp_bytes));
  SIEVE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(temp.data(), temp_bytes, keys, keys_out, order, out,
                                                             items, 0, 32, stream()));
}

}  // namespace sieve::cuda

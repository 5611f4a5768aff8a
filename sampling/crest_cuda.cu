// CUDA kernels of CREST's selection (Yang, Kang, Mirzasoleiman 2023): the facility-location coreset and the
// bookkeeping of learned examples. Per-element arithmetic lives in sampling/crest_math.h, shared with the CPU twins
// in facility_location_cpu.cpp and loss_history_cpu.cpp. Includes CUB (DeviceSelect) for the compaction.
#include <algorithm>

#include <cub/device/device_select.cuh>

#include "core/allocator.h"
#include "core/cuda_launch.cuh"
#include "core/scratch.h"
#include "sampling/crest_math.h"
#include "sampling/facility_location.h"
#include "sampling/loss_history.h"

namespace sieve::cuda {

namespace {

constexpr int kThreads = 256;

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Facility location (sampling/facility_location.h)
// ---------------------------------------------------------------------------------------------------------------

// s_ji = exp(-||x_j - x_i|| / d) for every pair (j, i) of block blockIdx.y (Algorithm 1, line 6; the reference's
// similarity). One thread per pair.
__global__ void pairwise_similarity_kernel(const float* __restrict__ features,  // (N, dim)
                                           FacilityLocationBlocks blocks,
                                           float* __restrict__ sim) {  // (sum_b m_b^2)
  const int64_t b = blockIdx.y;
  const int64_t first = blocks.member_offset[b], m = blocks.member_offset[b + 1] - first;
  const int32_t* members = blocks.members + first;
  float* s = sim + blocks.sim_offset[b];
  SIEVE_GRID_STRIDE(t, m * m) {
    const int64_t j = t / m, i = t - j * m;
    s[t] = facility_similarity(features + members[j] * blocks.dim, features + members[i] * blocks.dim, blocks.dim);
  }
}

// gain_j = sum_i max(0, s_ji - best_i) in fixed point (Note [exact gains]), -1 for a chosen j. One warp per candidate
// j of a block still picking in `round`; the row s_j. is contiguous, so a warp reads it coalesced.
__global__ void facility_gains_kernel(const float* __restrict__ sim, FacilityLocationBlocks blocks,
                                      const float* __restrict__ best,      // (rows)
                                      const uint8_t* __restrict__ chosen,  // (rows)
                                      int64_t round, int64_t* __restrict__ gains) {  // (rows)
  const int lane = threadIdx.x % 32;
  SIEVE_WARP_STRIDE(p, blocks.rows) {
    const int32_t b = blocks.block_of[p];
    if (round >= blocks.pick_offset[b + 1] - blocks.pick_offset[b]) continue;  // the whole warp skips together
    if (chosen[p]) {
      if (lane == 0) gains[p] = -1;
      continue;
    }
    const int64_t first = blocks.member_offset[b], m = blocks.member_offset[b + 1] - first;
    const float* row = sim + blocks.sim_offset[b] + (p - first) * m;
    int64_t g = 0;
    for (int64_t i = lane; i < m; i += 32) g += facility_gain_term(row[i], best[first + i]);
    for (int d = 16; d > 0; d /= 2) g += __shfl_down_sync(0xffffffffu, g, d);
    if (lane == 0) gains[p] = g;
  }
}

// The round's pick of block blockIdx.x: j* = argmax_j gain_j, ties to the lowest j; then best_i = max(best_i, s_j*i).
// One thread block per class block.
__global__ void facility_commit_kernel(const float* __restrict__ sim, FacilityLocationBlocks blocks,
                                       const int64_t* __restrict__ gains, int64_t round,
                                       float* __restrict__ best, uint8_t* __restrict__ chosen,
                                       int32_t* __restrict__ picks,          // (k) rows of features
                                       int32_t* __restrict__ picks_local) {  // (k) member indices within the block
  const int32_t b = blockIdx.x;
  const int64_t p0 = blocks.pick_offset[b];
  if (round >= blocks.pick_offset[b + 1] - p0) return;
  const int64_t first = blocks.member_offset[b], m = blocks.member_offset[b + 1] - first;
  __shared__ int64_t top_gain[kThreads];
  __shared__ int64_t top_index[kThreads];
  int64_t g = -2, idx = m;  // below every gain, so any candidate replaces it
  for (int64_t j = threadIdx.x; j < m; j += kThreads) {
    const int64_t gj = gains[first + j];
    if (facility_better(gj, j, g, idx)) {
      g = gj;
      idx = j;
    }
  }
  top_gain[threadIdx.x] = g;
  top_index[threadIdx.x] = idx;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride &&
        facility_better(top_gain[threadIdx.x + stride], top_index[threadIdx.x + stride], top_gain[threadIdx.x],
                        top_index[threadIdx.x])) {
      top_gain[threadIdx.x] = top_gain[threadIdx.x + stride];
      top_index[threadIdx.x] = top_index[threadIdx.x + stride];
    }
    __syncthreads();
  }
  const int64_t j = top_index[0];  // every thread reads it after the last barrier
  if (threadIdx.x == 0) {
    picks[p0 + round] = blocks.members[first + j];
    picks_local[p0 + round] = static_cast<int32_t>(j);
    chosen[first + j] = 1;
  }
  const float* row = sim + blocks.sim_offset[b] + j * m;
  for (int64_t i = threadIdx.x; i < m; i += kThreads) best[first + i] = fmaxf(best[first + i], row[i]);
}

// Cluster sizes: each member joins the most similar pick of its block (facility_cluster). One thread per member;
// integer atomics, so the counts do not depend on the order.
__global__ void facility_cluster_kernel(const float* __restrict__ sim, FacilityLocationBlocks blocks,
                                        const int32_t* __restrict__ picks_local,  // (k)
                                        int32_t* __restrict__ cluster) {          // (k) zeroed
  SIEVE_GRID_STRIDE(p, blocks.rows) {
    const int32_t b = blocks.block_of[p];
    const int64_t first = blocks.member_offset[b], m = blocks.member_offset[b + 1] - first;
    const int64_t p0 = blocks.pick_offset[b], quota = blocks.pick_offset[b + 1] - p0;
    const int64_t q = facility_cluster(sim + blocks.sim_offset[b] + (p - first) * m, picks_local + p0, quota);
    atomicAdd(cluster + p0 + q, 1);
  }
}

// size_q = max(1, |cluster_q|) (Note [empty clusters]), w_q = size_q k / sum(size): cluster sizes normalised to mean
// 1. One thread block: k is a few hundred picks; the sum is of integers, so its order does not matter.
__global__ void facility_weights_kernel(int32_t* __restrict__ sizes,  // (k) cluster counts in, floored sizes out
                                        int64_t k, float* __restrict__ weights) {
  __shared__ int64_t partial[kThreads];
  int64_t sum = 0;
  for (int64_t q = threadIdx.x; q < k; q += kThreads) {
    const int32_t size = static_cast<int32_t>(facility_cluster_size(sizes[q]));
    sizes[q] = size;
    sum += size;
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const int64_t total = partial[0];
  for (int64_t q = threadIdx.x; q < k; q += kThreads) weights[q] = facility_cluster_weight(sizes[q], k, total);
}

void pairwise_similarity(const float* features, const FacilityLocationBlocks& blocks, float* sim) {
  SIEVE_CHECK(blocks.num_blocks <= 65535, "facility_location_coreset: at most 65535 classes on a GPU, found ",
              blocks.num_blocks);
  if (blocks.num_blocks == 0) return;
  const dim3 grid(blocks_for(blocks.max_block * blocks.max_block, kThreads), blocks.num_blocks);
  launch_grid("pairwise_similarity_kernel", grid, kThreads, 0, pairwise_similarity_kernel, features, blocks, sim);
}

void facility_location_gains(const float* sim, const FacilityLocationBlocks& blocks, const float* best,
                             const uint8_t* chosen, int64_t round, int64_t* gains) {
  launch_warps("facility_gains_kernel", blocks.rows, kThreads, facility_gains_kernel, sim, blocks, best, chosen, round,
               gains);
}

// Every gain evaluated each round (two launches a round, no host synchronisation): for CREST's classes of a few
// hundred rows the whole round is one wave of warps, cheaper than the lazy greedy's serial recomputations.
void facility_location_select(const float* features, const FacilityLocationBlocks& blocks, float* sim, float* best,
                              uint8_t* chosen, int64_t* gains, int32_t* picks, int32_t* sizes, float* weights) {
  if (blocks.num_blocks == 0) return;
  pairwise_similarity(features, blocks, sim);
  SIEVE_CUDA_CHECK(cudaMemsetAsync(best, 0, blocks.rows * sizeof(float), stream()));
  SIEVE_CUDA_CHECK(cudaMemsetAsync(chosen, 0, blocks.rows * sizeof(uint8_t), stream()));
  const int64_t total_picks = blocks.picks;
  DeviceScratch picks_local(total_picks * sizeof(int32_t));
  for (int64_t r = 0; r < blocks.max_quota; ++r) {
    facility_location_gains(sim, blocks, best, chosen, r, gains);
    launch_grid("facility_commit_kernel", blocks.num_blocks, kThreads, 0, facility_commit_kernel, sim, blocks, gains, r,
                best, chosen, picks, picks_local.as<int32_t>());
  }
  SIEVE_CUDA_CHECK(cudaMemsetAsync(sizes, 0, total_picks * sizeof(int32_t), stream()));
  launch("facility_cluster_kernel", blocks.rows, kThreads, facility_cluster_kernel, sim, blocks,
         picks_local.as<int32_t>(), sizes);
  launch_grid("facility_weights_kernel", 1, kThreads, 0, facility_weights_kernel, sizes, total_picks, weights);
}

// ---------------------------------------------------------------------------------------------------------------
// Loss history (sampling/loss_history.h)
// ---------------------------------------------------------------------------------------------------------------

// ring[i, count_i mod window] = loss_j, count_i += 1 for i = indices[j]. One thread per recorded loss; the atomic
// increment gives repeated indices distinct slots.
__global__ void record_losses_kernel(float* __restrict__ ring,     // (N, window)
                                     int32_t* __restrict__ count,  // (N)
                                     int64_t dataset_size, int window,
                                     const int32_t* __restrict__ indices,  // (m)
                                     const float* __restrict__ losses,     // (m)
                                     int64_t m) {
  SIEVE_GRID_STRIDE(j, m) {
    const int32_t i = indices[j];
    if (i < 0 || i >= dataset_size) continue;
    const int32_t c = atomicAdd(count + i, 1);
    ring[i * static_cast<int64_t>(window) + c % window] = losses[j];
  }
}

// key_p = max of the last `window` losses of active[p] when all are recorded and < alpha, else +inf (CREST's drop
// test, Algorithm 1 line 12), with the per-class counts of active and learned examples.
__global__ void learned_keys_kernel(const float* __restrict__ ring, const int32_t* __restrict__ count, int window,
                                    const int32_t* __restrict__ active, int64_t n_active,
                                    const int32_t* __restrict__ labels, int num_classes, float alpha,
                                    float* __restrict__ keys, uint8_t* __restrict__ keep,
                                    int32_t* __restrict__ class_counts) {  // (2 num_classes)
  SIEVE_GRID_STRIDE(p, n_active) {
    const int32_t i = active[p];
    const int32_t y = labels[i];
    const bool valid = y >= 0 && y < num_classes;  // an invalid label never drops its example
    const float key = valid ? learned_loss_key(ring + i * static_cast<int64_t>(window), window, count[i], alpha)
                            : INFINITY;
    const bool learned = key < alpha;
    keys[p] = key;
    keep[p] = learned ? 0 : 1;
    if (valid) {
      atomicAdd(class_counts + y, 1);
      if (learned) atomicAdd(class_counts + num_classes + y, 1);
    }
  }
}

void record_losses(float* ring, int32_t* count, int64_t dataset_size, int window, const int32_t* indices,
                   const float* losses, int64_t m) {
  launch("record_losses_kernel", m, kThreads, record_losses_kernel, ring, count, dataset_size, window, indices, losses,
         m);
}

void learned_keys(const float* ring, const int32_t* count, int window, const int32_t* active, int64_t n_active,
                  const int32_t* labels, int num_classes, float alpha, float* keys, uint8_t* keep,
                  int32_t* class_counts) {
  launch("learned_keys_kernel", n_active, kThreads, learned_keys_kernel, ring, count, window, active, n_active, labels,
         num_classes, alpha, keys, keep, class_counts);
}

// ring[indices[j], slot] = losses[j]: the reference's per-epoch slot (Note [drop rules] in sampling/crest.h). One
// thread per recorded loss.
__global__ void record_losses_at_kernel(float* __restrict__ ring,  // (N, window)
                                        int64_t dataset_size, int window, int slot,
                                        const int32_t* __restrict__ indices,  // (m)
                                        const float* __restrict__ losses,     // (m)
                                        int64_t m) {
  SIEVE_GRID_STRIDE(j, m) {
    const int32_t i = indices[j];
    if (i < 0 || i >= dataset_size) continue;
    ring[i * static_cast<int64_t>(window) + slot] = losses[j];
  }
}

// keep_i = !reference_learned(ring_i) over all N examples, with the kept examples per class; and, over the active
// list, the active examples per class (the reference's drop test and the counts its guards read). One thread per
// example and per active position.
__global__ void reference_keep_kernel(const float* __restrict__ ring, int window, int64_t dataset_size,
                                      const int32_t* __restrict__ labels, int num_classes, float alpha,
                                      const int32_t* __restrict__ active, int64_t n_active,
                                      uint8_t* __restrict__ keep,          // (N)
                                      int32_t* __restrict__ class_counts) {  // (2 num_classes)
  const int64_t total = dataset_size > n_active ? dataset_size : n_active;
  SIEVE_GRID_STRIDE(t, total) {
    if (t < dataset_size) {
      const int32_t y = labels[t];
      const bool valid = y >= 0 && y < num_classes;  // an invalid label keeps its example and is not counted
      const bool kept = !valid || !reference_learned(ring + t * static_cast<int64_t>(window), window, alpha);
      keep[t] = kept ? 1 : 0;
      if (valid && kept) atomicAdd(class_counts + y, 1);
    }
    if (t < n_active) {
      const int32_t y = labels[active[t]];
      if (y >= 0 && y < num_classes) atomicAdd(class_counts + num_classes + y, 1);
    }
  }
}

// The reference's new active set as a mask: the kept examples of the classes that apply, the current active examples
// of the others. The two writes touch disjoint examples (by the apply flag of their class), so they cannot race.
__global__ void reference_active_mask_kernel(const uint8_t* __restrict__ keep, const int32_t* __restrict__ labels,
                                             int64_t dataset_size, int num_classes,
                                             const int32_t* __restrict__ active, int64_t n_active,
                                             const uint8_t* __restrict__ apply,  // (num_classes)
                                             uint8_t* __restrict__ mask) {       // (N) zeroed
  const int64_t total = dataset_size > n_active ? dataset_size : n_active;
  SIEVE_GRID_STRIDE(t, total) {
    if (t < dataset_size) {
      const int32_t y = labels[t];
      if (y >= 0 && y < num_classes && apply[y]) mask[t] = keep[t];
    }
    if (t < n_active) {
      const int32_t i = active[t];
      const int32_t y = labels[i];
      if (!(y >= 0 && y < num_classes) || !apply[y]) mask[i] = 1;
    }
  }
}

void record_losses_at(float* ring, int64_t dataset_size, int window, int slot, const int32_t* indices,
                      const float* losses, int64_t m) {
  launch("record_losses_at_kernel", m, kThreads, record_losses_at_kernel, ring, dataset_size, window, slot, indices,
         losses, m);
}

void reference_keep(const float* ring, int window, int64_t dataset_size, const int32_t* labels, int num_classes,
                    float alpha, const int32_t* active, int64_t n_active, uint8_t* keep, int32_t* class_counts) {
  const int64_t total = std::max(dataset_size, n_active);
  launch("reference_keep_kernel", total, kThreads, reference_keep_kernel, ring, window, dataset_size, labels,
         num_classes, alpha, active, n_active, keep, class_counts);
}

void reference_active_mask(const uint8_t* keep, const int32_t* labels, int64_t dataset_size, int num_classes,
                           const int32_t* active, int64_t n_active, const uint8_t* apply, uint8_t* mask) {
  const int64_t total = std::max(dataset_size, n_active);
  launch("reference_active_mask_kernel", total, kThreads, reference_active_mask_kernel, keep, labels, dataset_size,
         num_classes, active, n_active, apply, mask);
}

// Stable compaction by flags (CUB DeviceSelect::Flagged keeps the input order, so the active set stays sorted).
void compact_active(const int32_t* active, int64_t n_active, const uint8_t* keep, int32_t* out, int32_t* n_out) {
  size_t temp_bytes = 0;
  SIEVE_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, active, keep, out, n_out, n_active, stream()));
  DeviceScratch temp(cub_bytes(temp_bytes));
  SIEVE_CUDA_CHECK(
      cub::DeviceSelect::Flagged(temp.as<void>(), temp_bytes, active, keep, out, n_out, n_active, stream()));
}

}  // namespace sieve::cuda

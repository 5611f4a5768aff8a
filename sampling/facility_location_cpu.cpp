// CPU reference of the facility-location coreset: the similarity blocks, every candidate's gain (the GPU kernel's
// twin), and the lazy greedy (Minoux 1978) that the CPU path runs instead of evaluating every gain each round.
#include <algorithm>
#include <queue>
#include <vector>

#include "sampling/crest_math.h"
#include "sampling/facility_location.h"

namespace sieve::cpu {

namespace {

int64_t block_size(const FacilityLocationBlocks& blocks, int64_t b) {
  return blocks.member_offset[b + 1] - blocks.member_offset[b];
}

int64_t candidate_gain(const float* sim_row, const float* best, int64_t m) {
  int64_t gain = 0;
  for (int64_t i = 0; i < m; ++i) gain += facility_gain_term(sim_row[i], best[i]);
  return gain;
}

struct Bound {
  int64_t gain;  // an upper bound of the candidate's marginal gain (exact when computed this round)
  int64_t index;
};
struct WorseBound {
  bool operator()(const Bound& a, const Bound& b) const { return facility_better(b.gain, b.index, a.gain, a.index); }
};

// Lazy greedy over one block: a stale gain bounds the current one from above (submodularity, and Note [exact gains]
// keeps that true in the arithmetic), so the top of the queue, once recomputed, is the round's choice as soon as it
// still beats the next bound in the (gain, lower index) order.
void lazy_greedy_block(const float* sim, int64_t m, int64_t quota, float* best, uint8_t* chosen, int32_t* picks_local) {
  std::priority_queue<Bound, std::vector<Bound>, WorseBound> queue;
  for (int64_t i = 0; i < m; ++i) best[i] = 0.f;
  for (int64_t j = 0; j < m; ++j) queue.push({candidate_gain(sim + j * m, best, m), j});
  for (int64_t r = 0; r < quota; ++r) {
    for (;;) {
      const Bound top = queue.top();
      queue.pop();
      const int64_t fresh = candidate_gain(sim + top.index * m, best, m);
      if (queue.empty() || facility_better(fresh, top.index, queue.top().gain, queue.top().index)) {
        picks_local[r] = static_cast<int32_t>(top.index);
        chosen[top.index] = 1;
        const float* row = sim + top.index * m;
        for (int64_t i = 0; i < m; ++i) best[i] = std::max(best[i], row[i]);
        break;
      }
      queue.push({fresh, top.index});
    }
  }
}

}  // namespace

void pairwise_similarity(const float* features, const FacilityLocationBlocks& blocks, float* sim) {
  for (int32_t b = 0; b < blocks.num_blocks; ++b) {
    const int64_t m = block_size(blocks, b);
    const int32_t* members = blocks.members + blocks.member_offset[b];
    float* s = sim + blocks.sim_offset[b];
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < m; ++i)
        s[j * m + i] = facility_similarity(features + members[j] * blocks.dim, features + members[i] * blocks.dim,
                                           blocks.dim);
  }
}

void facility_location_gains(const float* sim, const FacilityLocationBlocks& blocks, const float* best,
                             const uint8_t* chosen, int64_t round, int64_t* gains) {
  for (int32_t b = 0; b < blocks.num_blocks; ++b) {
    if (round >= blocks.pick_offset[b + 1] - blocks.pick_offset[b]) continue;
    const int64_t m = block_size(blocks, b), first = blocks.member_offset[b];
    for (int64_t j = 0; j < m; ++j)
      gains[first + j] = chosen[first + j] ? -1 : candidate_gain(sim + blocks.sim_offset[b] + j * m, best + first, m);
  }
}

void facility_location_select(const float* features, const FacilityLocationBlocks& blocks, float* sim, float* best,
                              uint8_t* chosen, int64_t* gains, int32_t* picks, int32_t* sizes, float* weights) {
  (void)gains;  // the lazy greedy keeps its bounds in its queue
  pairwise_similarity(features, blocks, sim);
  const int64_t k = blocks.pick_offset[blocks.num_blocks];
  std::vector<int32_t> picks_local(static_cast<size_t>(k));
  std::vector<int64_t> cluster(static_cast<size_t>(k), 0);
  for (int32_t b = 0; b < blocks.num_blocks; ++b) {
    const int64_t m = block_size(blocks, b), first = blocks.member_offset[b];
    const int64_t p0 = blocks.pick_offset[b], quota = blocks.pick_offset[b + 1] - p0;
    const float* s = sim + blocks.sim_offset[b];
    std::fill(chosen + first, chosen + first + m, uint8_t{0});
    lazy_greedy_block(s, m, quota, best + first, chosen + first, picks_local.data() + p0);
    for (int64_t q = 0; q < quota; ++q) picks[p0 + q] = blocks.members[first + picks_local[p0 + q]];
    for (int64_t i = 0; i < m; ++i) ++cluster[p0 + facility_cluster(s + i * m, picks_local.data() + p0, quota)];
  }
  int64_t total = 0;
  for (int64_t q = 0; q < k; ++q) {
    sizes[q] = static_cast<int32_t>(facility_cluster_size(cluster[q]));  // Note [empty clusters]
    total += sizes[q];
  }
  for (int64_t q = 0; q < k; ++q) weights[q] = facility_cluster_weight(sizes[q], k, total);
}

}  // namespace sieve::cpu

// CREST's mini-batch coresets (Yang, Kang, Mirzasoleiman 2023, Algorithm 1 line 6): per class, the greedy maximiser of
// the facility-location function F(S) = sum_i max_{j in S} s_ij with s_ij = exp(-||x_i - x_j||_2 / d), each chosen
// row weighted by the size of the cluster it represents.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace sieve {

struct Coreset {
  Tensor positions;  // int32 [k]: rows of `features` chosen, grouped by class (ascending), in greedy order within a class
  Tensor sizes;      // int32 [k]: the number of rows each chosen row represents (its cluster), floored at 1
                     // (Note [empty clusters] in sampling/crest_math.h)
  Tensor weights;    // float32 [k]: the sizes normalised to mean 1, size k / sum(sizes)
};

// Greedy facility-location maximisation per class on features [n, d] float32 with labels int32 [n] in
// [0, num_classes), all on one device; the result lies on that device. `budget` total picks (k = min(budget, n)) are
// split across the classes present in proportion to their counts by Note [class quotas] (sampling/facility_location.cpp):
// at least one per present class, so budget must be >= the number of classes present. Each round picks the row of
// largest marginal gain, ties to the lowest row. Each row belongs to the cluster of the chosen row of its class most
// similar to it (ties to the lowest row); a pick whose cluster is empty counts as one row. The CPU runs the lazy greedy, the GPU evaluates every gain each round with
// a kernel: both give the same selection (Note [exact gains] in sampling/crest_math.h). The labels are read on the
// host (one synchronisation); a class of m rows needs m^2 floats of similarity on the device.
Coreset facility_location_coreset(const Tensor& features, const Tensor& labels, int64_t budget, int num_classes);

// The objective sum_i max_{j in positions} s_ij over every row i of features [n, d] (all classes together), for
// tests and diagnostics. Computed on the host in double (a CUDA tensor is copied).
double facility_location_value(const Tensor& features, const Tensor& positions);

// Backends. The problem as blocks (one per class present), every pointer on the device of the computation.
struct FacilityLocationBlocks {
  int32_t num_blocks = 0;
  int64_t rows = 0;                   // members in all blocks
  int64_t dim = 0;                    // feature width d
  int64_t max_quota = 0;              // greedy rounds: the largest quota
  int64_t max_block = 0;              // the largest block m_b
  int64_t picks = 0;                  // k: all blocks' picks
  const int32_t* members = nullptr;        // [rows]: rows of features grouped by block, ascending within a block
  const int32_t* block_of = nullptr;       // [rows]: the block of each member position
  const int64_t* member_offset = nullptr;  // [num_blocks + 1]: block b's members are [member_offset[b], member_offset[b+1])
  const int64_t* sim_offset = nullptr;     // [num_blocks]: start of block b's m_b x m_b similarity matrix
  const int64_t* pick_offset = nullptr;    // [num_blocks + 1]: block b's picks are [pick_offset[b], pick_offset[b+1])
};

namespace cpu {
// sim[sim_offset[b] + j m_b + i] = s(x_members[j], x_members[i]) for every block b.
void pairwise_similarity(const float* features, const FacilityLocationBlocks& blocks, float* sim);
// For every member p of a block still picking in `round` (round < quota): gains[p] = sum_i gain_term(s_pi, best_i)
// in fixed point (Note [exact gains]), or -1 when p is already chosen. Members of finished blocks are left as they are.
void facility_location_gains(const float* sim, const FacilityLocationBlocks& blocks, const float* best,
                             const uint8_t* chosen, int64_t round, int64_t* gains);
// The whole selection: picks [k = pick_offset[num_blocks]] (rows of features), their cluster sizes [k] (floored at
// 1) and weights [k]. sim, best ([rows]), chosen ([rows]) and gains ([rows]) are workspaces.
void facility_location_select(const float* features, const FacilityLocationBlocks& blocks, float* sim, float* best,
                              uint8_t* chosen, int64_t* gains, int32_t* picks, int32_t* sizes, float* weights);
}  // namespace cpu
namespace cuda {
void pairwise_similarity(const float* features, const FacilityLocationBlocks& blocks, float* sim);
void facility_location_gains(const float* sim, const FacilityLocationBlocks& blocks, const float* best,
                             const uint8_t* chosen, int64_t round, int64_t* gains);
void facility_location_select(const float* features, const FacilityLocationBlocks& blocks, float* sim, float* best,
                              uint8_t* chosen, int64_t* gains, int32_t* picks, int32_t* sizes, float* weights);
}  // namespace cuda

}  // namespace sieve

// CPU reference of the selector operations: plain loops and std::stable_sort.
#include <algorithm>
#include <utility>
#include <vector>

#include "core/philox.h"
#include "sampling/selectors.h"
#include "sampling/selectors_math.h"

namespace sieve::cpu {

namespace {
void check_index(int32_t i, int64_t count, const char* what) {
  SIEVE_CHECK(i >= 0 && i < count, what, ": index ", i, " is outside [0, ", count, ")");
}
}  // namespace

void mark_seen(const int32_t* indices, int64_t n, int32_t* seen, int64_t count, int32_t* distinct) {
  for (int64_t j = 0; j < n; ++j) check_index(indices[j], count, "mark_seen");
  for (int64_t j = 0; j < n; ++j) {
    int32_t& flag = seen[indices[j]];
    if (flag == 0) ++*distinct;
    flag = 1;
  }
}

void scatter_losses(const int32_t* indices, const float* losses, int64_t n, float* table, int64_t count) {
  for (int64_t j = 0; j < n; ++j) check_index(indices[j], count, "scatter_losses");
  for (int64_t j = 0; j < n; ++j) table[indices[j]] = losses[j];  // in order: the last occurrence wins
}

// The sorts move (key, value) pairs rather than indices into the keys: contiguous reads, several times faster
// at N = 60000 than an indirect comparison.
void random_permutation(int64_t n, uint64_t seed, uint64_t offset, uint32_t* /*keys*/, uint32_t* /*keys_out*/,
                        int32_t* out) {
  std::vector<std::pair<uint32_t, int32_t>> pairs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    pairs[static_cast<size_t>(i)] = {philox_word(seed, offset, static_cast<uint64_t>(i)), static_cast<int32_t>(i)};
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (int64_t i = 0; i < n; ++i) out[i] = pairs[static_cast<size_t>(i)].second;
}

void rank_by_loss(const float* losses, const int32_t* order, int64_t n, float* /*keys*/, float* /*keys_out*/,
                  int32_t* out) {
  for (int64_t i = 0; i < n; ++i) check_index(order[i], n, "rank_by_loss order");
  std::vector<std::pair<float, int32_t>> pairs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pairs[static_cast<size_t>(i)] = {loss_rank_key(losses[order[i]]), order[i]};
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < n; ++i) out[i] = pairs[static_cast<size_t>(i)].second;
}

void infobatch_prune(const float* scores, const int32_t* order, int64_t n, float mean, float keep_ratio, uint64_t seed,
                     uint64_t offset, uint8_t* keep, float* weights) {
  for (int64_t p = 0; p < n; ++p) check_index(order[p], n, "infobatch_prune order");
  for (int64_t p = 0; p < n; ++p) {
    const int32_t e = order[p];
    const float w = infobatch_weight(scores[e], mean, philox_uniform(seed, offset, static_cast<uint64_t>(p)), keep_ratio);
    weights[e] = w;
    keep[p] = w != 0.f ? 1 : 0;
  }
}

void selective_backprop_keep(const float* losses, int64_t n, const float* history, int64_t count, float beta,
                             uint64_t seed, uint64_t offset, uint8_t* keep) {
  for (int64_t j = 0; j < n; ++j) {
    const float p = selective_backprop_probability(losses[j], history, count, beta);
    keep[j] = philox_uniform(seed, offset, static_cast<uint64_t>(j)) < p ? 1 : 0;
  }
}

void record_ring(const float* losses, int64_t n, float* history, int64_t size, int64_t head) {
  for (int64_t j = 0; j < n; ++j) history[(head + j) % size] = losses[j];
}

void count_indices(const int32_t* indices, int64_t n, int32_t* counts, int64_t count) {
  for (int64_t j = 0; j < n; ++j) check_index(indices[j], count, "count_indices");
  for (int64_t j = 0; j < n; ++j) ++counts[indices[j]];
}

}  // namespace sieve::cpu

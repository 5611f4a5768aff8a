// CPU reference of the loss history: the ring updates, the per-example drop tests of both rules, the reference rule's
// new active set, and the compaction.
#include <algorithm>

#include "sampling/crest_math.h"
#include "sampling/loss_history.h"

namespace sieve::cpu {

void record_losses(float* ring, int32_t* count, int64_t dataset_size, int window, const int32_t* indices,
                   const float* losses, int64_t m) {
  for (int64_t j = 0; j < m; ++j) {
    const int32_t i = indices[j];
    SIEVE_CHECK(i >= 0 && i < dataset_size, "LossHistory::record: index ", j, " is ", i, ", expected an example in [0, ",
                dataset_size, ")");
    ring[i * static_cast<int64_t>(window) + count[i] % window] = losses[j];
    ++count[i];
  }
}

void learned_keys(const float* ring, const int32_t* count, int window, const int32_t* active, int64_t n_active,
                  const int32_t* labels, int num_classes, float alpha, float* keys, uint8_t* keep,
                  int32_t* class_counts) {
  for (int64_t p = 0; p < n_active; ++p) {
    const int32_t i = active[p];
    const int32_t y = labels[i];
    SIEVE_CHECK(y >= 0 && y < num_classes, "LossHistory::drop_learned: label of example ", i, " is ", y,
                ", expected a class in [0, ", num_classes, ")");
    keys[p] = learned_loss_key(ring + i * static_cast<int64_t>(window), window, count[i], alpha);
    const bool learned = keys[p] < alpha;
    keep[p] = learned ? 0 : 1;
    ++class_counts[y];
    if (learned) ++class_counts[num_classes + y];
  }
}

void compact_active(const int32_t* active, int64_t n_active, const uint8_t* keep, int32_t* out, int32_t* n_out) {
  int32_t n = 0;
  for (int64_t p = 0; p < n_active; ++p)
    if (keep[p]) out[n++] = active[p];
  *n_out = n;
}

void record_losses_at(float* ring, int64_t dataset_size, int window, int slot, const int32_t* indices,
                      const float* losses, int64_t m) {
  for (int64_t j = 0; j < m; ++j) {
    const int32_t i = indices[j];
    SIEVE_CHECK(i >= 0 && i < dataset_size, "LossHistory::record_at: index ", j, " is ", i,
                ", expected an example in [0, ", dataset_size, ")");
    ring[i * static_cast<int64_t>(window) + slot] = losses[j];
  }
}

void reference_keep(const float* ring, int window, int64_t dataset_size, const int32_t* labels, int num_classes,
                    float alpha, const int32_t* active, int64_t n_active, uint8_t* keep, int32_t* class_counts) {
  for (int64_t i = 0; i < dataset_size; ++i) {
    const int32_t y = labels[i];
    SIEVE_CHECK(y >= 0 && y < num_classes, "LossHistory::drop_learned_reference: label of example ", i, " is ", y,
                ", expected a class in [0, ", num_classes, ")");
    keep[i] = reference_learned(ring + i * static_cast<int64_t>(window), window, alpha) ? 0 : 1;
    if (keep[i]) ++class_counts[y];
  }
  for (int64_t p = 0; p < n_active; ++p) ++class_counts[num_classes + labels[active[p]]];
}

void reference_active_mask(const uint8_t* keep, const int32_t* labels, int64_t dataset_size, int num_classes,
                           const int32_t* active, int64_t n_active, const uint8_t* apply, uint8_t* mask) {
  (void)num_classes;  // the labels were checked by reference_keep
  for (int64_t i = 0; i < dataset_size; ++i)
    if (apply[labels[i]]) mask[i] = keep[i];
  for (int64_t p = 0; p < n_active; ++p)
    if (!apply[labels[active[p]]]) mask[active[p]] = 1;
}

}  // namespace sieve::cpu

// CREST's "dropping learned examples" (Yang, Kang, Mirzasoleiman 2023, Algorithm 1 line 12): a per-example ring of
// `window` loss slots on the device, and the set of examples still active, from which learned examples are removed
// by one of two rules (Note [drop rules] in sampling/crest.h): the reference's (record_at, drop_learned_reference) or
// sieve's window rule (record, drop_learned).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sieve {

// Copies are shallow, like Tensor's: they share the ring and the counts; drop_learned gives its object a new active
// tensor rather than writing the old one, so a copy taken before a drop keeps its own active set.
class LossHistory {
 public:
  // window >= 1; every example starts active and unseen (its ring slots hold NaN, its record count 0).
  LossHistory(int64_t dataset_size, int window, Device device);

  // Records losses[j] as the newest loss of example indices[j] (int32 [m] in [0, N), float32 [m], on the history's
  // device): one kernel, no host synchronisation. An index repeated within one call records each of its losses; on
  // the GPU their order among themselves is unspecified. An index out of range throws on the CPU and is ignored on
  // the GPU.
  void record(const Tensor& indices, const Tensor& losses);

  // The reference's ring: writes losses[j] into slot `slot` (in [0, window)) of example indices[j], replacing what the
  // slot held; the counts are left alone. One kernel, no host synchronisation. An index repeated within one call keeps
  // one of its losses (on the GPU, which one is unspecified). Index checks as record().
  void record_at(const Tensor& indices, const Tensor& losses, int slot);

  // Drops from the active set every example whose `window` most recent losses are all recorded and all < alpha,
  // keeping per class at least `min_per_class` and overall at least `min_active` active examples; where a guard binds,
  // the examples with the lowest largest-recent-loss go first (Note [drop order] in sampling/loss_history.cpp).
  // labels: int32 [N] in [0, num_classes) on the history's device. Compacts the active set on the device (CUB on the
  // GPU). Returns the number dropped now (reads a few counts on the host).
  int64_t drop_learned(float alpha, const Tensor& labels, int num_classes, int64_t min_per_class, int64_t min_active);

  // The reference's drop (trainers/crest_trainer.py, _drop_learned_data): over all N examples, an example is learned
  // when at least one slot holds a recorded loss and none holds one above alpha (reference_learned in crest_math.h);
  // the others are kept. Each class c whose kept examples number more than `min_per_class` becomes exactly its kept
  // examples; every other class keeps its current active examples. The result replaces the active set only if it
  // holds more than `min_active` examples; else nothing changes. The guards are all-or-nothing, and the new set is
  // computed from the ring, not from the current set, so an example recorded again with a loss above alpha returns.
  // Returns the active examples before minus after (reads 2 num_classes counts on the host).
  int64_t drop_learned_reference(float alpha, const Tensor& labels, int num_classes, int64_t min_per_class,
                                 int64_t min_active);

  const Tensor& active() const { return active_; }  // int32 [n_active], sorted ascending
  int64_t active_size() const { return active_.numel(); }
  int64_t dataset_size() const { return dataset_size_; }
  int window() const { return window_; }
  Device device() const { return device_; }

  // Checkpoint support: "ring" float32 [N, window], "count" int32 [N] (losses recorded per example; the next slot is
  // count % window), "active" int32 [n_active]. load_state checks names, shapes and dtypes and copies to the device.
  std::vector<std::pair<std::string, Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

 private:
  int64_t dataset_size_ = 0;
  int window_ = 0;
  Device device_;
  Tensor ring_;    // float32 [N, window]
  Tensor count_;   // int32 [N]
  Tensor active_;  // int32 [n_active]
};

// Backends.
namespace cpu {
void record_losses(float* ring, int32_t* count, int64_t dataset_size, int window, const int32_t* indices,
                   const float* losses, int64_t m);
// For each active position p: keys[p] = the largest of the last `window` losses of active[p] if all are recorded and
// < alpha (the example is learned), else +inf; keep[p] = 1 unless learned. class_counts [2 num_classes], zeroed by the
// caller, gets the active examples per class in [0, num_classes) and the learned ones in [num_classes, 2 num_classes).
void learned_keys(const float* ring, const int32_t* count, int window, const int32_t* active, int64_t n_active,
                  const int32_t* labels, int num_classes, float alpha, float* keys, uint8_t* keep,
                  int32_t* class_counts);
// out = the active[p] with keep[p] != 0, in order; *n_out their number.
void compact_active(const int32_t* active, int64_t n_active, const uint8_t* keep, int32_t* out, int32_t* n_out);
// ring[indices[j], slot] = losses[j].
void record_losses_at(float* ring, int64_t dataset_size, int window, int slot, const int32_t* indices,
                      const float* losses, int64_t m);
// For every example i in [0, N): keep[i] = 0 if reference_learned, else 1. class_counts [2 num_classes], zeroed by the
// caller, gets the kept examples per class in [0, num_classes) and the active ones in [num_classes, 2 num_classes).
void reference_keep(const float* ring, int window, int64_t dataset_size, const int32_t* labels, int num_classes,
                    float alpha, const int32_t* active, int64_t n_active, uint8_t* keep, int32_t* class_counts);
// mask [N], zeroed by the caller: mask[i] = keep[i] for every example of a class with apply[c] != 0, and 1 for the
// active examples of the other classes.
void reference_active_mask(const uint8_t* keep, const int32_t* labels, int64_t dataset_size, int num_classes,
                           const int32_t* active, int64_t n_active, const uint8_t* apply, uint8_t* mask);
}  // namespace cpu
namespace cuda {
void record_losses(float* ring, int32_t* count, int64_t dataset_size, int window, const int32_t* indices,
                   const float* losses, int64_t m);
void learned_keys(const float* ring, const int32_t* count, int window, const int32_t* active, int64_t n_active,
                  const int32_t* labels, int num_classes, float alpha, float* keys, uint8_t* keep,
                  int32_t* class_counts);
void compact_active(const int32_t* active, int64_t n_active, const uint8_t* keep, int32_t* out, int32_t* n_out);
void record_losses_at(float* ring, int64_t dataset_size, int window, int slot, const int32_t* indices,
                      const float* losses, int64_t m);
void reference_keep(const float* ring, int window, int64_t dataset_size, const int32_t* labels, int num_classes,
                    float alpha, const int32_t* active, int64_t n_active, uint8_t* keep, int32_t* class_counts);
void reference_active_mask(const uint8_t* keep, const int32_t* labels, int64_t dataset_size, int num_classes,
                           const int32_t* active, int64_t n_active, const uint8_t* apply, uint8_t* mask);
}  // namespace cuda

}  // namespace sieve

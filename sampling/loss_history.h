// CREST's "dropping learned examples" (Yang, Kang, Mirzasoleiman 2023, Algorithm 1 line 12): a per-example ring of the
// last `window` training losses on the device, and the set of examples still active, from which every example whose
// recent losses all lie below α is removed.
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

  // Drops from the active set every example whose `window` most recent losses are all recorded and all < alpha,
  // keeping per class at least `min_per_class` and overall at least `min_active` active examples; where a guard binds,
  // the examples with the lowest largest-recent-loss go first (Note [drop order] in sampling/loss_history.cpp).
  // labels: int32 [N] in [0, num_classes) on the history's device. Compacts the active set on the device (CUB on the
  // GPU). Returns the number dropped now (reads a few counts on the host).
  int64_t drop_learned(float alpha, const Tensor& labels, int num_classes, int64_t min_per_class, int64_t min_active);

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
}  // namespace cpu
namespace cuda {
void record_losses(float* ring, int32_t* count, int64_t dataset_size, int window, const int32_t* indices,
                   const float* losses, int64_t m);
void learned_keys(const float* ring, const int32_t* count, int window, const int32_t* active, int64_t n_active,
                  const int32_t* labels, int num_classes, float alpha, float* keys, uint8_t* keep,
                  int32_t* class_counts);
void compact_active(const int32_t* active, int64_t n_active, const uint8_t* keep, int32_t* out, int32_t* n_out);
}  // namespace cuda

}  // namespace sieve

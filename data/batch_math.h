// The per-element mathematics of gather_batch (data/batch.h) and its backend entry points. Free of Tensor and
// CUDA types so that batch_cuda.cu includes nothing heavy (Note [views, not Tensors]), and shared by both
// backends so that the CPU tests exercise the arithmetic the GPU runs (Note [one meaning]).
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace sieve {

constexpr int kMaxBatchChannels = 4;

// Note [batch gather args]: one plain struct carries everything a gather needs and is passed to the kernel by
// value (the per-channel constants travel as kernel parameters: no per-call device allocation). Augmentation
// (random crop with padding, horizontal flip) extends it with its options and a Philox (seed, offset); the
// per-sample draw then happens inside batch_pixel, where the output pixel is mapped to its source pixel, so
// the same fused kernel and the same CPU loop produce it, bit for bit alike.
struct BatchGatherArgs {
  const uint8_t* images = nullptr;  // (N, C, H, W)
  int64_t num_images = 0;           // N
  int channels = 0, height = 0, width = 0;
  const int32_t* indices = nullptr;  // (B,) rows of images
  int64_t batch = 0;                 // B
  float mean[kMaxBatchChannels] = {};
  float std[kMaxBatchChannels] = {};
  float* out = nullptr;  // (B, C, H, W)
};

// One pixel in units of [0, 1], normalised. No multiply feeds an add here, so no fused multiply-add can form
// and the host and the device round identically (IEEE division on both).
SIEVE_HD float normalize_pixel(uint8_t x, float mean, float std) {
  return (static_cast<float>(x) / 255.0f - mean) / std;
}

// out[b, c, y, x] for the element at offset `within` (= (c * H + y) * W + x) of batch row b. An index outside
// [0, N) gives zeros (the CPU backend rejects such indices before it gets here).
SIEVE_HD float batch_pixel(const BatchGatherArgs& a, int64_t b, int within) {
  const int hw = a.height * a.width;
  const int c = within / hw;
  const int64_t row = a.indices[b];
  if (row < 0 || row >= a.num_images) return 0.0f;
  // Augmentation maps (y, x) = (within % hw / W, within % W) to its source pixel here (Note [batch gather args]).
  const int source = within;
  return normalize_pixel(a.images[row * (static_cast<int64_t>(a.channels) * hw) + source], a.mean[c], a.std[c]);
}

namespace cpu {
// Fills a.out; throws sieve::Error for an index outside [0, N).
void gather_images(const BatchGatherArgs& a);
}  // namespace cpu

namespace cuda {
// Fills a.out on the current device's stream; indices are trusted (out of range: zeros).
void gather_images(const BatchGatherArgs& a);
}  // namespace cuda

}  // namespace sieve

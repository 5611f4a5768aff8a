// The per-element mathematics of gather_batch (data/batch.h) and its backend entry points. Free of Tensor and
// CUDA types so that batch_cuda.cu includes nothing heavy (Note [views, not Tensors]), and shared by both
// backends so that the CPU tests exercise the arithmetic the GPU runs (Note [one meaning]).
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "core/philox.h"

namespace sieve {

constexpr int kMaxBatchChannels = 4;

// Note [batch gather args]: one plain struct carries everything a gather needs and is passed to the kernel by
// value (the per-channel constants travel as kernel parameters: no per-call device allocation). Augmentation
// (random crop with padding, horizontal flip) adds its options and a Philox (seed, offset); the per-example
// draw happens in batch_transform and batch_pixel maps each output pixel to its source pixel, so the same
// fused kernel and the same CPU loop produce it, bit for bit alike (Note [crop and flip]).
struct BatchGatherArgs {
  const uint8_t* images = nullptr;  // (N, C, H, W)
  int64_t num_images = 0;           // N
  int channels = 0, height = 0, width = 0;
  const int32_t* indices = nullptr;  // (B,) rows of images
  int64_t batch = 0;                 // B
  float mean[kMaxBatchChannels] = {};
  float std[kMaxBatchChannels] = {};
  bool crop_flip = false;  // random crop with `pad` zero pixels of padding, then a horizontal flip with p = 1/2
  int pad = 0;
  uint64_t seed = 0, offset = 0;  // Philox stream; batch row b uses counter offset + b
  const uint64_t* offset_base = nullptr;  // in a captured graph, added to offset (Note [captured draws])
  float* out = nullptr;  // (B, C, H, W)
};

// One batch row's augmentation: out[c, y, x] = image[c, y + dy, x' + dx], x' = W - 1 - x when flipped, else x.
struct CropFlip {
  int dx = 0, dy = 0;  // in [-pad, pad]
  bool flip = false;
};

// Note [crop and flip]: torchvision's RandomCrop((H, W), padding=pad) then RandomHorizontalFlip(), applied to the
// raw uint8 image before ToTensor/Normalize: padded pixels are byte 0, so after normalisation they read
// (0 - mean[c]) / std[c], not 0. The crop's top-left corner (dy + pad, dx + pad) is uniform over
// [0, 2 pad]^2 of the padded image, each coordinate by multiply-shift of its own 32-bit Philox word (bias
// below (2 pad + 1) / 2^32); the flip is the top bit of a third word. The three words come from the one
// Philox block of counter offset + b, so a row's draw depends only on (seed, offset, b): the CPU and every
// GPU thread that touches the row compute the same one, and no buffer of draws is needed. The block's fourth
// counter word is a constant of its own, so these words differ from philox_word's even at equal counters.
SIEVE_HD CropFlip batch_transform(const BatchGatherArgs& a, int64_t b) {
  CropFlip t;
  if (!a.crop_flip) return t;
  const uint64_t c = philox_counter_offset(a.offset, a.offset_base) + static_cast<uint64_t>(b);
  const Philox4 r = philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0xC4F1u,
                               static_cast<uint32_t>(a.seed), static_cast<uint32_t>(a.seed >> 32));
  const uint64_t span = 2 * static_cast<uint64_t>(a.pad) + 1;
  t.dx = static_cast<int>((r.v[0] * span) >> 32) - a.pad;
  t.dy = static_cast<int>((r.v[1] * span) >> 32) - a.pad;
  t.flip = (r.v[2] >> 31) != 0;
  return t;
}

// One pixel in units of [0, 1], normalised. No multiply feeds an add here, so no fused multiply-add can form
// and the host and the device round identically (IEEE division on both).
SIEVE_HD float normalize_pixel(uint8_t x, float mean, float std) {
  return (static_cast<float>(x) / 255.0f - mean) / std;
}

// v[c] by constant indices: a kernel parameter indexed by a variable is copied to the thread's stack first (ptxas
// reported a 112-byte stack frame), a selection among constants is read straight from the parameter bank.
SIEVE_HD float channel_constant(const float (&v)[kMaxBatchChannels], int c) {
  static_assert(kMaxBatchChannels == 4, "one select per channel");
  return c == 0 ? v[0] : c == 1 ? v[1] : c == 2 ? v[2] : v[3];
}

// out[b, c, y, x] for the element at offset `within` (= (c * H + y) * W + x) of batch row b, whose draw is
// t = batch_transform(a, b). An index outside [0, N) gives zeros (the CPU backend rejects such indices
// before it gets here); a source pixel in the padding reads as byte 0 (Note [crop and flip]).
// Offset of output pixel (c, y, x)'s source within its image under transform t, or -1 for a padded pixel.
SIEVE_HD int source_offset(const BatchGatherArgs& a, CropFlip t, int c, int y, int x) {
  const int sy = y + t.dy, sx = (t.flip ? a.width - 1 - x : x) + t.dx;
  if (sy < 0 || sy >= a.height || sx < 0 || sx >= a.width) return -1;
  return (c * a.height + sy) * a.width + sx;
}

// Output pixel `within` (= (c * H + y) * W + x) of batch row b.
SIEVE_HD float batch_pixel(const BatchGatherArgs& a, int64_t b, int within, CropFlip t) {
  const int hw = a.height * a.width;
  const int c = within / hw;
  const int64_t row = a.indices[b];
  if (row < 0 || row >= a.num_images) return 0.0f;
  const int y = within % hw / a.width, x = within % a.width;
  const float mean = channel_constant(a.mean, c), std = channel_constant(a.std, c);
  const int source = source_offset(a, t, c, y, x);
  if (source < 0) return normalize_pixel(0, mean, std);
  return normalize_pixel(a.images[row * (static_cast<int64_t>(a.channels) * hw) + source], mean, std);
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

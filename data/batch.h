// Mini-batches from a device-resident Dataset: the hot path of every training step.
#pragma once

#include "core/random.h"
#include "core/tensor.h"
#include "data/batch_math.h"
#include "data/dataset.h"

namespace sieve {

// float32 [B, C, H, W] with out[b, c] = (images[indices[b], c] / 255 - mean[c]) / std[c], gathered and
// normalised by one fused pass on the dataset's device. indices: int32 [B] on the same device. On the CPU an
// index outside [0, N) throws; on the GPU indices are trusted (they come from selectors that draw them in
// range) and an out-of-range index yields a row of zeros.
Tensor gather_batch(const Dataset& d, const Tensor& indices);

// Training-time augmentation, fused with the gather (Note [crop and flip] in data/batch_math.h).
struct Augment {
  // Random crop of the image padded by `pad` zero pixels on each side (a shift (dx, dy) uniform in
  // [-pad, pad]^2, the uncovered pixels byte 0, i.e. -mean/std after normalisation), then a horizontal flip
  // with probability 1/2: torchvision's RandomCrop((H, W), padding=pad), RandomHorizontalFlip() on uint8 images.
  bool crop_flip = false;
  int pad = 4;  // 0 <= pad < min(H, W)
};

// gather_batch with augmentation: each batch row b draws its crop and flip from gen's Philox stream at
// counter offset + b, where offset = gen.advance(B) is reserved by this call when aug.crop_flip is on (off:
// gen is untouched and the result is gather_batch(d, indices)). The same seed and offset give the same batch
// on the CPU and the GPU. One kernel, no allocation beyond the output, no host synchronisation.
Tensor gather_batch(const Dataset& d, const Tensor& indices, const Augment& aug, Generator& gen);

// int32 [B]: labels[indices[b]], with the same index rules.
Tensor gather_labels(const Dataset& d, const Tensor& indices);

}  // namespace sieve

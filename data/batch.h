// Mini-batches from a device-resident Dataset: the hot path of every training step.
#pragma once

#include "core/tensor.h"
#include "data/batch_math.h"
#include "data/dataset.h"

namespace sieve {

// float32 [B, C, H, W] with out[b, c] = (images[indices[b], c] / 255 - mean[c]) / std[c], gathered and
// normalised by one fused pass on the dataset's device. indices: int32 [B] on the same device. On the CPU an
// index outside [0, N) throws; on the GPU indices are trusted (they come from selectors that draw them in
// range) and an out-of-range index yields a row of zeros.
Tensor gather_batch(const Dataset& d, const Tensor& indices);

// int32 [B]: labels[indices[b]], with the same index rules.
Tensor gather_labels(const Dataset& d, const Tensor& indices);

}  // namespace sieve

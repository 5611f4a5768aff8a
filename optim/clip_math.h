// The clipping factor of clip_grad_norm, shared by the CPU and CUDA backends (Note [one meaning]).
#pragma once

#include "core/host_device.h"

namespace sieve {

// torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), in float32.
SIEVE_HD float clip_coefficient(float norm, float max_norm) { return max_norm / (norm + 1e-6f); }

// PyTorch multiplies by clamp(clip_coef, max=1): a no-op at 1, and NaN stays NaN (a non-finite norm poisons the
// gradients rather than hiding). So the gradients change exactly when the factor is not >= 1.
SIEVE_HD bool clip_applies(float coefficient) { return !(coefficient >= 1.f); }

}  // namespace sieve

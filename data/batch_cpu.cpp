// The CPU reference of gather_batch: plain loops over data/batch_math.h.
#include "core/error.h"
#include "data/batch_math.h"

namespace sieve::cpu {

void gather_images(const BatchGatherArgs& a) {
  for (int64_t b = 0; b < a.batch; ++b)
    SIEVE_CHECK(a.indices[b] >= 0 && a.indices[b] < a.num_images, "gather_batch: index ", a.indices[b],
                " at position ", b, " is out of range for a data set of ", a.num_images, " images");
  const int sample = a.channels * a.height * a.width;
  for (int64_t b = 0; b < a.batch; ++b) {
    float* out = a.out + b * sample;  // (C, H, W)
    const CropFlip t = batch_transform(a, b);  // one draw per row (Note [crop and flip])
    for (int i = 0; i < sample; ++i) out[i] = batch_pixel(a, b, i, t);
  }
}

}  // namespace sieve::cpu

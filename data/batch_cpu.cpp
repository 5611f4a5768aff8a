// The CPU reference of gather_batch: plain loops over data/batch_math.h.
#include "core/error.h"
#include "data/batch_math.h"

namespace sieve::cpu {

void gather_images(const BatchGatherArgs& a) {
  for (int64_t b = 0; b < a.batch; ++b)
    SIEVE_CHECK(a.indices[b] >= 0 && a.indices[b] < a.num_images, "gather_batch: index ", a.indices[b],
                " at position ", b, " is out of range for a data set of ", a.num_images, " images");
  const int sample = a.channels * a.height * a.width;
  // The same arithmetic as batch_pixel (source_offset, normalize_pixel), walked by channel, row and column so that
  // no pixel pays for the index divisions the GPU's flat thread index needs.
  for (int64_t b = 0; b < a.batch; ++b) {
    float* out = a.out + b * sample;  // (C, H, W)
    const uint8_t* image = a.images + a.indices[b] * static_cast<int64_t>(sample);
    const CropFlip t = batch_transform(a, b);  // one draw per row (Note [crop and flip])
    for (int c = 0; c < a.channels; ++c) {
      const float mean = a.mean[c], std = a.std[c];
      for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x) {
          const int source = source_offset(a, t, c, y, x);
          *out++ = normalize_pixel(source < 0 ? 0 : image[source], mean, std);
        }
    }
  }
}

}  // namespace sieve::cpu

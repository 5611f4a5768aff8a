// CUDA gather_batch: one fused kernel gathers uint8 rows by index, crops and flips them (when asked) and
// normalises them.
#include "core/cuda_launch.cuh"
#include "core/host_device.h"
#include "data/batch_math.h"

namespace sieve::cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned int kMaxGridY = 65535;

// out[b, c, y, x] = (images[indices[b], c, y + dy_b, x' + dx_b] / 255 - mean[c]) / std[c], byte 0 outside the
// image, x' = x or W - 1 - x by the flip bit of row b (all zero shifts and no flip without augmentation).
// Grid: x covers the C*H*W elements of a sample (consecutive threads, consecutive bytes: coalesced, reversed
// within a row when flipped), y strides over batch rows, so no thread divides by the sample size.
// With augmentation every thread draws its row's (dx, dy, flip) itself: one Philox block, some 60 integer
// operations per output float, by arithmetic about as long as moving its 5 bytes on an H100 (microseconds for a
// batch of 128 CIFAR images), and no shared memory or barrier. Not yet timed on a GPU: if sieve-bench shows it
// matters, broadcast one draw per block through shared memory.
__global__ void gather_images_kernel(BatchGatherArgs a) {
  const int sample = a.channels * a.height * a.width;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= sample) return;
  const int within = static_cast<int>(t);
  for (int64_t b = blockIdx.y; b < a.batch; b += gridDim.y)
    a.out[b * sample + within] = batch_pixel(a, b, within, batch_transform(a, b));
}

}  // namespace

void gather_images(const BatchGatherArgs& a) {
  const int64_t sample = static_cast<int64_t>(a.channels) * a.height * a.width;
  if (a.batch == 0 || sample == 0) return;
  // The dispatcher keeps a sample below 2^31 elements, so grid.x needs no cap (no grid-stride along x).
  const dim3 grid(static_cast<unsigned int>((sample + kThreads - 1) / kThreads),
                  static_cast<unsigned int>(a.batch < kMaxGridY ? a.batch : kMaxGridY));
  launch_grid("gather_images_kernel", grid, kThreads, 0, gather_images_kernel, a);
}

}  // namespace sieve::cuda

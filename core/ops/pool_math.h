// Per-element pooling arithmetic shared by the CPU and CUDA backends (Note [one meaning]): one output of a
// window forward, one input's gradient backward (a gather over the windows that contain it).
#pragma once

#include <cstdint>

#include <math.h>

#include "core/host_device.h"
#include "core/ops/pool.h"

namespace sieve {

// The outputs o whose window [o·stride - padding, o·stride - padding + kernel) contains input position i:
// o in [lo, hi] (empty when lo > hi).
SIEVE_HD void pool_windows_containing(int64_t i, int kernel, int stride, int padding, int64_t out, int64_t* lo,
                                      int64_t* hi) {
  const int64_t p = i + padding;
  *lo = p < kernel ? 0 : (p - kernel) / stride + 1;  // ceil((p - kernel + 1) / stride)
  const int64_t last = p / stride;
  *hi = last < out - 1 ? last : out - 1;
}

// y = max over the window of output (oy, ox) in one plane, and the index of the winner in the plane (when
// `index` is not null).
SIEVE_HD void max_pool_window(const float* plane, const PoolGeometry& g, int64_t oy, int64_t ox, float* y,
                              int32_t* index) {
  float best = -INFINITY;
  int32_t best_index = -1;
  const int64_t y0 = oy * g.stride - g.padding, x0 = ox * g.stride - g.padding;
  for (int64_t yy = y0 < 0 ? 0 : y0; yy < y0 + g.kernel && yy < g.h; ++yy)
    for (int64_t xx = x0 < 0 ? 0 : x0; xx < x0 + g.kernel && xx < g.w; ++xx) {
      const float v = plane[yy * g.w + xx];
      if (best_index < 0 || v > best || (v != v && best == best)) {  // v != v: a NaN wins and stays
        best = v;
        best_index = static_cast<int32_t>(yy * g.w + xx);
      }
    }
  *y = best;
  if (index) *index = best_index;
}

// d loss / d x at (iy, ix) of one plane: the sum of the gradients of the outputs that chose it.
SIEVE_HD float max_pool_input_grad(const float* grad_plane, const int32_t* index_plane, const PoolGeometry& g,
                                   int64_t iy, int64_t ix) {
  int64_t oy0, oy1, ox0, ox1;
  pool_windows_containing(iy, g.kernel, g.stride, g.padding, g.out_h, &oy0, &oy1);
  pool_windows_containing(ix, g.kernel, g.stride, g.padding, g.out_w, &ox0, &ox1);
  const int32_t self = static_cast<int32_t>(iy * g.w + ix);
  float s = 0.f;
  for (int64_t oy = oy0; oy <= oy1; ++oy)
    for (int64_t ox = ox0; ox <= ox1; ++ox)
      if (index_plane[oy * g.out_w + ox] == self) s += grad_plane[oy * g.out_w + ox];
  return s;
}

// y = sum over the window's real positions / kernel^2 (count_include_pad: padded zeros count in the divisor).
SIEVE_HD float avg_pool_window(const float* plane, const PoolGeometry& g, int64_t oy, int64_t ox) {
  float s = 0.f;
  const int64_t y0 = oy * g.stride - g.padding, x0 = ox * g.stride - g.padding;
  for (int64_t yy = y0 < 0 ? 0 : y0; yy < y0 + g.kernel && yy < g.h; ++yy)
    for (int64_t xx = x0 < 0 ? 0 : x0; xx < x0 + g.kernel && xx < g.w; ++xx) s += plane[yy * g.w + xx];
  return s / static_cast<float>(g.kernel * g.kernel);
}

// d loss / d x at (iy, ix): sum of grad_y over the windows containing it, / kernel^2.
SIEVE_HD float avg_pool_input_grad(const float* grad_plane, const PoolGeometry& g, int64_t iy, int64_t ix) {
  int64_t oy0, oy1, ox0, ox1;
  pool_windows_containing(iy, g.kernel, g.stride, g.padding, g.out_h, &oy0, &oy1);
  pool_windows_containing(ix, g.kernel, g.stride, g.padding, g.out_w, &ox0, &ox1);
  float s = 0.f;
  for (int64_t oy = oy0; oy <= oy1; ++oy)
    for (int64_t ox = ox0; ox <= ox1; ++ox) s += grad_plane[oy * g.out_w + ox];
  return s / static_cast<float>(g.kernel * g.kernel);
}

// Global average backward: each of the plane's hw inputs receives grad_y / hw.
SIEVE_HD float global_avg_input_grad(float grad_y, int64_t hw) { return grad_y / static_cast<float>(hw); }

}  // namespace sieve

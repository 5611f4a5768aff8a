#include <algorithm>
#include <vector>

#include "core/ops/pool.h"
#include "core/ops/pool_math.h"

namespace sieve::cpu {
namespace {

// The outputs o in [lo, hi) whose window [o * stride - padding, o * stride - padding + kernel) lies wholly inside
// [0, size).
void inside_windows(int64_t size, int64_t out, const PoolGeometry& g, int64_t* lo, int64_t* hi) {
  *lo = std::min<int64_t>(out, (g.padding + g.stride - 1) / g.stride);
  const int64_t last = size - g.kernel + g.padding;  // the largest o * stride whose window fits
  *hi = std::max(*lo, last < 0 ? 0 : std::min<int64_t>(out, last / g.stride + 1));
}

// n >= 4 consecutive outputs of one row of a 2x2, stride-2 pooling whose windows lie inside the plane: output j's
// window is row0[2j], row0[2j + 1], row1[2j], row1[2j + 1], and row0[0] has index `first` in its plane of width
// w. A window without NaN has max_pool_window's winner under a plain `>` (a later tap wins only when larger;
// ties stay with the first), and these selects vectorise; the NaN rule (a NaN wins and stays) would not, so
// NaNs are only noticed here, and the caller recomputes such a row with max_pool_window. Returns whether the
// windows held a NaN. Blocks of exactly four outputs (the last block overlapping the one before, recomputing
// equal values) compile to straight-line vector code: a remainder loop would branch on the data again.
bool max_pool_row_2x2(const float* __restrict row0, const float* __restrict row1, int64_t n, int32_t first, int32_t w,
                      float* __restrict y, int32_t* __restrict index) {
  int32_t nans = 0;
  for (int64_t block = 0; block < n; block += 4) {
    const int64_t base = std::min(block, n - 4);
    for (int64_t j = base; j < base + 4; ++j) {
      const float a = row0[2 * j], b = row0[2 * j + 1], c = row1[2 * j], d = row1[2 * j + 1];
      nans |= (a != a) | (b != b) | (c != c) | (d != d);
      const int32_t i = first + 2 * static_cast<int32_t>(j);
      float best = a;
      int32_t best_index = i;
      best_index = b > best ? i + 1 : best_index;
      best = b > best ? b : best;
      best_index = c > best ? i + w : best_index;
      best = c > best ? c : best;
      best_index = d > best ? i + w + 1 : best_index;
      best = d > best ? d : best;
      y[j] = best;
      index[j] = best_index;
    }
  }
  return nans != 0;
}

}  // namespace

// Each output is max_pool_window's. The common 2x2, stride-2 pooling has a fast row loop for the windows wholly
// inside the plane (max_pool_row_2x2): the per-window loop ran several times slower on activations, mispredicting
// which input wins.
void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  const bool two_by_two = g.kernel == 2 && g.stride == 2;
  int64_t oy0 = 0, oy1 = 0, ox0 = 0, ox1 = 0;  // the fast loop's rows and columns (none unless two_by_two)
  if (two_by_two) {
    inside_windows(g.h, g.out_h, g, &oy0, &oy1);
    inside_windows(g.w, g.out_w, g, &ox0, &ox1);
    if (ox1 - ox0 < 4) oy1 = oy0;  // rows too short for the fast loop's blocks
  }
  std::vector<int32_t> scratch(indices ? 0 : g.out_w);  // one row's indices when the caller wants none
  for (int64_t p = 0; p < g.planes; ++p) {
    const float* plane = x + p * in_plane;
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      float* y_row = y + p * out_plane + oy * g.out_w;
      int32_t* index_row = indices ? indices + p * out_plane + oy * g.out_w : scratch.data();
      int64_t fast0 = 0, fast1 = 0;  // this row's outputs done by the fast loop
      if (oy >= oy0 && oy < oy1) {
        const int64_t first = (2 * oy - g.padding) * g.w + 2 * ox0 - g.padding;  // output ox0's first tap
        if (!max_pool_row_2x2(plane + first, plane + first + g.w, ox1 - ox0, static_cast<int32_t>(first),
                              static_cast<int32_t>(g.w), y_row + ox0, index_row + ox0)) {
          fast0 = ox0;
          fast1 = ox1;
        }
      }
      for (int64_t ox = 0; ox < g.out_w; ++ox)
        if (ox < fast0 || ox >= fast1) max_pool_window(plane, g, oy, ox, y_row + ox, index_row + ox);
    }
  }
}

// Note [max-pool indices] describes a gather per input; on the CPU a scatter from the stored indices is simpler
// and gives the same bits: each input receives the gradients of exactly the outputs that chose it, added to a
// zero in increasing output order, which is the gather's order too.
void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  std::fill(grad_x, grad_x + g.planes * in_plane, 0.f);
  for (int64_t p = 0; p < g.planes; ++p) {
    float* grad_plane = grad_x + p * in_plane;
    for (int64_t o = p * out_plane; o < (p + 1) * out_plane; ++o)
      if (indices[o] >= 0) grad_plane[indices[o]] += grad_y[o];  // -1 only for an empty window (never, see pool.h)
  }
}

void avg_pool2d_fwd(const float* x, float* y, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oy = 0; oy < g.out_h; ++oy)
      for (int64_t ox = 0; ox < g.out_w; ++ox)
        y[p * out_plane + oy * g.out_w + ox] = avg_pool_window(x + p * in_plane, g, oy, ox);
}

void avg_pool2d_bwd(const float* grad_y, float* grad_x, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t iy = 0; iy < g.h; ++iy)
      for (int64_t ix = 0; ix < g.w; ++ix)
        grad_x[p * in_plane + iy * g.w + ix] = avg_pool_input_grad(grad_y + p * out_plane, g, iy, ix);
}

void global_avg_pool_fwd(const float* x, float* y, int64_t planes, int64_t hw) {
  for (int64_t p = 0; p < planes; ++p) {
    float s = 0.f;  // hw is at most a few thousand: float accumulation is ample (as in the CUDA kernel)
    for (int64_t i = 0; i < hw; ++i) s += x[p * hw + i];
    y[p] = s / static_cast<float>(hw);
  }
}

void global_avg_pool_bwd(const float* grad_y, float* grad_x, int64_t planes, int64_t hw) {
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < hw; ++i) grad_x[p * hw + i] = global_avg_input_grad(grad_y[p], hw);
}

}  // namespace sieve::cpu

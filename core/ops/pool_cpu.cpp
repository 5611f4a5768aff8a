#include "core/ops/pool.h"
#include "core/ops/pool_math.h"

namespace sieve::cpu {

void max_pool2d_fwd(const float* x, float* y, int32_t* indices, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oy = 0; oy < g.out_h; ++oy)
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const int64_t o = p * out_plane + oy * g.out_w + ox;
        max_pool_window(x + p * in_plane, g, oy, ox, y + o, indices ? indices + o : nullptr);
      }
}

void max_pool2d_bwd(const float* grad_y, const int32_t* indices, float* grad_x, PoolGeometry g) {
  const int64_t in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t iy = 0; iy < g.h; ++iy)
      for (int64_t ix = 0; ix < g.w; ++ix)
        grad_x[p * in_plane + iy * g.w + ix] =
            max_pool_input_grad(grad_y + p * out_plane, indices + p * out_plane, g, iy, ix);
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

// CPU convolution: im2col of one image at a time, then one OpenBLAS GEMM per image.
//
// Note [conv im2col]: the columns of image n are col[(c, r, s), (p, q)] = x[n, c, p*stride_h - pad_h + r,
// q*stride_w - pad_w + s] (zero outside the image), a [C*R*S, P*Q] matrix, so that
//   forward        y_n  [K, PQ]   = W [K, CRS] @ col_n
//   input grad     col' [CRS, PQ] = W^T @ dy_n, then dx_n = col2im(col') (the adjoint of im2col: sums overlaps)
//   weight grad    dW   [K, CRS] += dy_n @ col_n^T
// The workspace is one image's columns (C*R*S*P*Q floats), never the whole batch's. A 1x1 kernel with stride 1
// and no padding has col_n = x_n, and skips the copy.
#include <algorithm>
#include <vector>

#include "core/ops/conv2d.h"
#include "core/ops/linear.h"

namespace sieve::cpu {
namespace {

bool is_pointwise(const Conv2dShape& s) {
  return s.r == 1 && s.s == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// col [C*R*S, P*Q] from one image x [C, H, W] (Note [conv im2col]).
void im2col(const Conv2dShape& sh, const float* x, float* col) {
  const int64_t P = sh.p(), Q = sh.q();
  for (int64_t c = 0; c < sh.c; ++c)
    for (int64_t r = 0; r < sh.r; ++r)
      for (int64_t s = 0; s < sh.s; ++s) {
        float* row = col + ((c * sh.r + r) * sh.s + s) * P * Q;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t ih = p * sh.stride_h - sh.pad_h + r;
          float* out = row + p * Q;
          if (ih < 0 || ih >= sh.h) {
            std::fill(out, out + Q, 0.f);
            continue;
          }
          const float* in = x + (c * sh.h + ih) * sh.w;
          for (int64_t q = 0; q < Q; ++q) {
            const int64_t iw = q * sh.stride_w - sh.pad_w + s;
            out[q] = iw >= 0 && iw < sh.w ? in[iw] : 0.f;
          }
        }
      }
}

// dx [C, H, W] = the sum of every column entry into the pixel it was copied from: the adjoint of im2col.
void col2im(const Conv2dShape& sh, const float* col, float* dx) {
  const int64_t P = sh.p(), Q = sh.q();
  std::fill(dx, dx + sh.c * sh.h * sh.w, 0.f);
  for (int64_t c = 0; c < sh.c; ++c)
    for (int64_t r = 0; r < sh.r; ++r)
      for (int64_t s = 0; s < sh.s; ++s) {
        const float* row = col + ((c * sh.r + r) * sh.s + s) * P * Q;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t ih = p * sh.stride_h - sh.pad_h + r;
          if (ih < 0 || ih >= sh.h) continue;
          float* out = dx + (c * sh.h + ih) * sh.w;
          const float* in = row + p * Q;
          for (int64_t q = 0; q < Q; ++q) {
            const int64_t iw = q * sh.stride_w - sh.pad_w + s;
            if (iw >= 0 && iw < sh.w) out[iw] += in[q];
          }
        }
      }
}

}  // namespace

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s;
  const bool pointwise = is_pointwise(s);
  std::vector<float> col(pointwise ? 0 : CRS * PQ);
  for (int64_t n = 0; n < s.n; ++n) {
    const float* xn = x + n * s.c * s.h * s.w;
    float* yn = y + n * s.k * PQ;
    if (!pointwise) im2col(s, xn, col.data());
    gemm(false, false, s.k, PQ, CRS, 1.f, w, pointwise ? xn : col.data(), 0.f, yn);
    if (bias)
      for (int64_t k = 0; k < s.k; ++k)
        for (int64_t i = 0; i < PQ; ++i) yn[k * PQ + i] += bias[k];
  }
}

void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s, CHW = s.c * s.h * s.w;
  const bool pointwise = is_pointwise(s);
  std::vector<float> col(pointwise ? 0 : CRS * PQ);
  for (int64_t n = 0; n < s.n; ++n) {
    // With a pointwise kernel, col' is dx_n itself.
    gemm(true, false, CRS, PQ, s.k, 1.f, w, dy + n * s.k * PQ, 0.f, pointwise ? dx + n * CHW : col.data());
    if (!pointwise) col2im(s, col.data(), dx + n * CHW);
  }
}

void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s, CHW = s.c * s.h * s.w;
  const bool pointwise = is_pointwise(s);
  std::vector<float> col(pointwise ? 0 : CRS * PQ);
  if (s.n == 0) std::fill(dw, dw + s.k * CRS, 0.f);
  for (int64_t n = 0; n < s.n; ++n) {
    if (!pointwise) im2col(s, x + n * CHW, col.data());
    // The first image overwrites dw, the others accumulate.
    gemm(false, true, s.k, CRS, PQ, 1.f, dy + n * s.k * PQ, pointwise ? x + n * CHW : col.data(), n == 0 ? 0.f : 1.f,
         dw);
  }
}

void conv2d_bwd_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  const int64_t PQ = s.p() * s.q();
  for (int64_t k = 0; k < s.k; ++k) {
    // Summed in double: n * P * Q terms (tens of thousands for a CIFAR batch) would lose digits in float.
    double total = 0.0;
    for (int64_t n = 0; n < s.n; ++n) {
      const float* row = dy + (n * s.k + k) * PQ;
      for (int64_t i = 0; i < PQ; ++i) total += row[i];
    }
    dbias[k] = static_cast<float>(total);
  }
}

}  // namespace sieve::cpu

// CPU convolution: oneDNN's (core/ops/onednn.cpp) or im2col of a group of images, then one OpenBLAS GEMM
// per group.
//
// The CPU's convolutions run on oneDNN by default (Note [cpu backends] in core/ops/cpu_backend.cpp;
// Note [onednn plans] in core/ops/onednn.cpp). im2col + OpenBLAS, below, is the reference and the implementation
// of bf16 products (Note [bf16 products]), which oneDNN's float32 kernels would not round as cuDNN does. The two
// differ by float rounding only (each sums the C*R*S products in its own order).
//
// Note [conv im2col]: the columns of image n are col[(c, r, s), (p, q)] = x[n, c, p*stride_h - pad_h + r,
// q*stride_w - pad_w + s] (zero outside the image), a [C*R*S, P*Q] matrix. A group of G images lays its columns
// side by side, col [CRS, G*PQ] (image i in columns i*PQ .. i*PQ + PQ), and its output gradients likewise,
// dy_g [K, G*PQ] (a copy of G blocks [K, PQ] of dy), so that
//   forward        y_g  [K, G*PQ]   = W [K, CRS] @ col, then scattered to y [G, K, PQ] (adding the bias)
//   input grad     col' [CRS, G*PQ] = W^T @ dy_g, then dx_i = col2im(col'_i) (the adjoint of im2col: sums overlaps)
//   weight grad    dW   [K, CRS]   += dy_g @ col^T
// Why groups: one GEMM per image is tiny for small images (the CNN's first layer is [32 x 9] @ [9 x 784]), and
// OpenBLAS's threads then spend more time waking and yielding between calls than multiplying; a group's GEMM is
// G times wider. The group is as many images as fit kWorkspaceBytes (col plus the [K, G*PQ] block; one image when
// even one does not fit), never the whole batch's columns regardless of size; the workspace is a thread_local
// vector, so steady-state calls allocate nothing. A 1x1 convolution goes through im2col too (a copy, small next
// to its GEMM), so that its group's GEMM is wide as well. Results differ from one GEMM per image only by float
// rounding (dW and the GEMMs' blocking sum in a different order).
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/ops/conv2d.h"
#include "core/ops/linear.h"
#include "core/ops/precision.h"

namespace sieve::cpu {
namespace {

// Measured on the CNN's two convolutions at batch 128 (2-core EPYC, 1 MiB L2, 32 MiB L3): 4 and 8 MiB were
// fastest, 32 MiB ~25% slower (the group's columns and output no longer stay in cache between im2col, GEMM and
// the copy out).
constexpr int64_t kWorkspaceBytes = int64_t{8} << 20;

// Images per group: as many as fit the budget (at least one), spread evenly so the last group is not a sliver.
int64_t group_size(const Conv2dShape& s) {
  const int64_t per_image = (s.c * s.r * s.s + s.k) * s.p() * s.q() * static_cast<int64_t>(sizeof(float));
  const int64_t fit =
      std::clamp<int64_t>(kWorkspaceBytes / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(s.n, 1));
  const int64_t groups = (s.n + fit - 1) / fit;
  return groups == 0 ? 1 : (s.n + groups - 1) / groups;
}

// The workspace of one group: col [CRS, G*PQ] then out [K, G*PQ]. Grown, never shrunk, per thread.
float* workspace(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

// The outputs o in [lo, hi) whose input o*stride + offset lies in [0, size); offset = kernel tap - padding.
void inside_range(int64_t offset, int64_t stride, int64_t size, int64_t out, int64_t* lo, int64_t* hi) {
  *lo = offset >= 0 ? 0 : std::min(out, (-offset + stride - 1) / stride);
  *hi = size - 1 - offset < 0 ? 0 : std::min(out, (size - 1 - offset) / stride + 1);
  *hi = std::max(*hi, *lo);
}

// Columns of one image x [C, H, W] into col [C*R*S, P*Q] whose rows are ld apart (Note [conv im2col]).
void image_to_columns(const Conv2dShape& sh, const float* x, float* col, int64_t ld) {
  const int64_t P = sh.p(), Q = sh.q();
  for (int64_t c = 0; c < sh.c; ++c)
    for (int64_t r = 0; r < sh.r; ++r)
      for (int64_t s = 0; s < sh.s; ++s) {
        float* row = col + ((c * sh.r + r) * sh.s + s) * ld;
        const int64_t off_w = s - sh.pad_w;
        int64_t q0, q1;
        inside_range(off_w, sh.stride_w, sh.w, Q, &q0, &q1);
        for (int64_t p = 0; p < P; ++p) {
          const int64_t ih = p * sh.stride_h - sh.pad_h + r;
          float* out = row + p * Q;
          if (ih < 0 || ih >= sh.h) {
            std::fill(out, out + Q, 0.f);
            continue;
          }
          const float* in = x + (c * sh.h + ih) * sh.w;  // column q reads in[q * stride_w + off_w]
          std::fill(out, out + q0, 0.f);
          if (sh.stride_w == 1)
            std::memcpy(out + q0, in + q0 + off_w, static_cast<size_t>(q1 - q0) * sizeof(float));
          else
            for (int64_t q = q0; q < q1; ++q) out[q] = in[q * sh.stride_w + off_w];
          std::fill(out + q1, out + Q, 0.f);
        }
      }
}

// dx [C, H, W] = the sum of every column entry (rows ld apart) into the pixel it was copied from: the adjoint
// of im2col.
void columns_to_image(const Conv2dShape& sh, const float* col, int64_t ld, float* dx) {
  const int64_t P = sh.p(), Q = sh.q();
  std::fill(dx, dx + sh.c * sh.h * sh.w, 0.f);
  for (int64_t c = 0; c < sh.c; ++c)
    for (int64_t r = 0; r < sh.r; ++r)
      for (int64_t s = 0; s < sh.s; ++s) {
        const float* row = col + ((c * sh.r + r) * sh.s + s) * ld;
        const int64_t off_w = s - sh.pad_w;
        int64_t q0, q1;
        inside_range(off_w, sh.stride_w, sh.w, Q, &q0, &q1);
        for (int64_t p = 0; p < P; ++p) {
          const int64_t ih = p * sh.stride_h - sh.pad_h + r;
          if (ih < 0 || ih >= sh.h) continue;
          float* out = dx + (c * sh.h + ih) * sh.w;  // column q came from out[q * stride_w + off_w]
          const float* in = row + p * Q;
          if (sh.stride_w == 1)  // a unit-stride loop the compiler vectorises
            for (int64_t q = q0; q < q1; ++q) out[q + off_w] += in[q];
          else
            for (int64_t q = q0; q < q1; ++q) out[q * sh.stride_w + off_w] += in[q];
        }
      }
}

// dy_g [K, G*PQ] from the g images of dy [n, K, PQ] starting at image n0.
void gather_dy(const Conv2dShape& s, const float* dy, int64_t n0, int64_t g, float* dy_g) {
  const int64_t PQ = s.p() * s.q();
  for (int64_t i = 0; i < g; ++i)
    for (int64_t k = 0; k < s.k; ++k)
      std::memcpy(dy_g + k * g * PQ + i * PQ, dy + ((n0 + i) * s.k + k) * PQ, static_cast<size_t>(PQ) * sizeof(float));
}

// A GEMM in the convolution's precision. In BF16 (Note [bf16 products]) the operands are rounded to bf16 by
// gemm_bf16 and the caller rounds the finished result (y before its bias, dx, dw) once, as cuDNN writes a bf16
// output; dw accumulates over groups in float32 before that rounding, as cuDNN accumulates over the batch.
void product(const Conv2dShape& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
             const float* b, float beta, float* c) {
  if (s.precision == MatmulPrecision::BF16)
    gemm_bf16(trans_a, trans_b, m, n, k, 1.f, a, b, beta, c);
  else
    gemm(trans_a, trans_b, m, n, k, 1.f, a, b, beta, c);
}

}  // namespace

namespace reference {

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s, CHW = s.c * s.h * s.w, G = group_size(s);
  float* col = workspace((CRS + s.k) * G * PQ);
  float* out = col + CRS * G * PQ;
  for (int64_t n0 = 0; n0 < s.n; n0 += G) {
    const int64_t g = std::min(G, s.n - n0), ld = g * PQ;
    for (int64_t i = 0; i < g; ++i) image_to_columns(s, x + (n0 + i) * CHW, col + i * PQ, ld);
    product(s, false, false, s.k, ld, CRS, w, col, 0.f, out);
    if (s.precision == MatmulPrecision::BF16) round_to_bf16(out, out, s.k * ld);
    for (int64_t i = 0; i < g; ++i)
      for (int64_t k = 0; k < s.k; ++k) {
        const float* from = out + k * ld + i * PQ;
        float* to = y + ((n0 + i) * s.k + k) * PQ;
        const float b = bias ? bias[k] : 0.f;
        for (int64_t j = 0; j < PQ; ++j) to[j] = from[j] + b;
      }
  }
}

void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s, CHW = s.c * s.h * s.w, G = group_size(s);
  float* col = workspace((CRS + s.k) * G * PQ);
  float* dy_g = col + CRS * G * PQ;
  for (int64_t n0 = 0; n0 < s.n; n0 += G) {
    const int64_t g = std::min(G, s.n - n0), ld = g * PQ;
    gather_dy(s, dy, n0, g, dy_g);
    product(s, true, false, CRS, ld, s.k, w, dy_g, 0.f, col);
    for (int64_t i = 0; i < g; ++i) columns_to_image(s, col + i * PQ, ld, dx + (n0 + i) * CHW);
  }
  if (s.precision == MatmulPrecision::BF16) round_to_bf16(dx, dx, s.n * CHW);
}

void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t PQ = s.p() * s.q(), CRS = s.c * s.r * s.s, CHW = s.c * s.h * s.w, G = group_size(s);
  float* col = workspace((CRS + s.k) * G * PQ);
  float* dy_g = col + CRS * G * PQ;
  if (s.n == 0) std::fill(dw, dw + s.k * CRS, 0.f);
  for (int64_t n0 = 0; n0 < s.n; n0 += G) {
    const int64_t g = std::min(G, s.n - n0), ld = g * PQ;
    for (int64_t i = 0; i < g; ++i) image_to_columns(s, x + (n0 + i) * CHW, col + i * PQ, ld);
    gather_dy(s, dy, n0, g, dy_g);
    // The first group overwrites dw, the others accumulate.
    product(s, false, true, s.k, CRS, ld, dy_g, col, n0 == 0 ? 0.f : 1.f, dw);
  }
  if (s.precision == MatmulPrecision::BF16) round_to_bf16(dw, dw, s.k * CRS);
}

}  // namespace reference

namespace {
// Whether a call runs on oneDNN: its products are float32 and the process chose oneDNN.
bool use_onednn(const Conv2dShape& s) {
  return s.precision == MatmulPrecision::F32 && cpu_backend() == CpuBackend::OneDnn;
}
}  // namespace

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  use_onednn(s) ? onednn::conv2d_fwd(s, x, w, bias, y) : reference::conv2d_fwd(s, x, w, bias, y);
}
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  use_onednn(s) ? onednn::conv2d_bwd_data(s, dy, w, dx) : reference::conv2d_bwd_data(s, dy, w, dx);
}
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  use_onednn(s) ? onednn::conv2d_bwd_filter(s, x, dy, dw) : reference::conv2d_bwd_filter(s, x, dy, dw);
}
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw) {
  if (use_onednn(s)) return onednn::conv2d_bwd(s, x, dy, w, dx, dw);
  if (dx != nullptr) reference::conv2d_bwd_data(s, dy, w, dx);
  if (dw != nullptr) reference::conv2d_bwd_filter(s, x, dy, dw);
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

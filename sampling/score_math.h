// Per-row and per-draw arithmetic of importance sampling, shared by the CPU and CUDA backends
// (Note [one meaning] in core/host_device.h): the score bound, the draw by prefix-sum search, and τ.
// Internal to sampling/; public code includes scores.h and sample.h.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "core/host_device.h"
#include "core/philox.h"

namespace sieve {

// ||softmax(z) - onehot(y)||_2 for one row z [cols] (eq. 20 of Katharopoulos & Fleuret 2018).
//
// With e_j = exp(z_j - max z) and S = sum_j e_j, p_j = e_j / S and
//   ||p - onehot(y)||^2 = sum_{j != y} p_j^2 + (1 - p_y)^2,   where 1 - p_y = sum_{j != y} e_j / S,
// so the score is sqrt(Q + R^2) / S with Q = sum_{j != y} e_j^2 and R = sum_{j != y} e_j. Writing 1 - p_y as R / S
// instead of subtracting avoids the cancellation that would round every well-classified example (p_y -> 1) to a
// score of exactly 0 and make it impossible to sample. The max shift keeps e_j <= 1 and S >= 1: no overflow for
// any finite logits. A label outside [0, cols) gives NaN (the CPU backend rejects it before).
SIEVE_HD float upper_bound_score_row(const float* z, int64_t cols, int32_t label) {
  if (label < 0 || label >= cols) return NAN;
  float m = z[0];
  for (int64_t j = 1; j < cols; ++j) m = fmaxf(m, z[j]);
  float s = 0.f, q = 0.f, r = 0.f;
  for (int64_t j = 0; j < cols; ++j) {
    const float e = expf(z[j] - m);
    s += e;
    if (j != label) {
      r += e;
      q += e * e;
    }
  }
  return sqrtf(q + r * r) / s;
}

// Note [draw by prefix sum]: a draw with P(i) = s_i / total is the first i whose inclusive prefix sum exceeds
// u = U * total, U uniform in [0, 1). With a sequential scan, a zero score repeats its predecessor's prefix exactly,
// so the first prefix above u always belongs to a positive score. Two rounding cases need care:
//  - U * total can round up to total itself, and then no prefix exceeds u: take the first prefix that reaches
//    total (a positive score by the same argument);
//  - a parallel scan (CUB) associates the additions differently at tile and warp boundaries, so the prefix at a
//    zero score can differ from its predecessor's by an ulp: a draw falling in that sliver is moved to the nearest
//    positive score, which keeps every weight total / (B s_i) finite.
// If total <= 0 (every score zero) the draw is uniform over [0, count) with weight 1.

// First i in [0, count) with prefix[i] > u, or count when there is none (prefix non-decreasing).
SIEVE_HD int64_t first_prefix_above(const float* prefix, int64_t count, float u) {
  int64_t lo = 0, hi = count;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (prefix[mid] > u) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// First i in [0, count) with prefix[i] >= v, or count when there is none.
SIEVE_HD int64_t first_prefix_reaching(const float* prefix, int64_t count, float v) {
  int64_t lo = 0, hi = count;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (prefix[mid] >= v) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// Draw j of the stream (seed, offset): its position in [0, count) and its weight (total / count) / s_i, the
// 1 / (B g_i) of Algorithm 1, line 9. scores and prefix have `count` entries; prefix is their inclusive scan.
SIEVE_HD void draw_by_prefix_sum(const float* scores, const float* prefix, int64_t count, uint64_t seed,
                                 uint64_t offset, int64_t j, int32_t* position, float* weight) {
  const float total = prefix[count - 1];
  const float unit = philox_uniform(seed, offset, static_cast<uint64_t>(j));
  if (!(total > 0.f)) {  // all scores zero: uniform fallback
    int64_t i = static_cast<int64_t>(unit * static_cast<float>(count));
    *position = static_cast<int32_t>(i < count ? i : count - 1);
    *weight = 1.f;
    return;
  }
  int64_t i = first_prefix_above(prefix, count, unit * total);
  if (i == count) i = first_prefix_reaching(prefix, count, total);
  if (i >= count) i = count - 1;  // only for a NaN total: keeps the position in range
  if (!(scores[i] > 0.f)) {       // a rounding sliver of a parallel scan (Note [draw by prefix sum])
    int64_t k = i + 1;
    while (k < count && !(scores[k] > 0.f)) ++k;
    if (k == count) {
      k = i;
      while (k > 0 && !(scores[k] > 0.f)) --k;
    }
    i = k;
  }
  *position = static_cast<int32_t>(i);
  *weight = (total / static_cast<float>(count)) / scores[i];
}

// τ from the sums of B scores: with g = s / sum(s) and u = 1 / B, ||g - u||^2 = sum g^2 - 1/B, so eq. 26 becomes
//   1 / τ = sqrt(1 - ||g - u||^2 / sum g^2) = sqrt(1 / (B sum g^2))   =>   τ = sqrt(B sum g^2) = sqrt(B sum s^2) / sum s.
// τ = 1 (no gain from importance sampling) when every score is zero.
SIEVE_HD float tau_from_sums(double sum, double sum_sq, int64_t count) {
  if (!(sum_sq <= DBL_MAX)) return NAN;  // a NaN or infinite score (Note [non-finite scores] in importance.h)
  if (!(sum > 0.0)) return 1.f;
  return static_cast<float>(sqrt(static_cast<double>(count) * sum_sq) / sum);
}

}  // namespace sieve

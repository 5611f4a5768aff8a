#include "core/ops/reduce.h"

#include "core/ops/nonfinite.h"

namespace sieve::cpu {

// Accumulates in double: the CPU is the reference, so it carries the smaller rounding error.
void sum(const float* x, int64_t n, float* out) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  out[0] = static_cast<float>(s);
}

void dot(const float* x, const float* w, int64_t n, float scale, float* out) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += (w ? static_cast<double>(w[i]) : 1.0) * x[i];
  out[0] = static_cast<float>(s * scale);
}

void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    int32_t best = 0;
    for (int64_t j = 1; j < cols; ++j)
      if (row[j] > row[best]) best = static_cast<int32_t>(j);
    out[r] = best;
  }
}

void record_first_nonfinite(const float* value, int64_t step, int64_t* first_step, float* first_value) {
  note_first_nonfinite(*value, step, first_step, first_value);
}

int64_t count_equal(const int32_t* a, const int32_t* b, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += a[i] == b[i];
  return c;
}

void broadcast_scaled(const float* g, float scale, const float* w, float* out, int64_t n) {
  const float s = g[0] * scale;
  for (int64_t i = 0; i < n; ++i) out[i] = w ? s * w[i] : s;
}

}  // namespace sieve::cpu

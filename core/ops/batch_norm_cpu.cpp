// Plain-loop reference for batch norm; statistics accumulate in double (Note [batch-norm statistics]).
#include "core/ops/batch_norm.h"
#include "core/ops/batch_norm_math.h"

namespace sieve::cpu {

void batch_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, float momentum, float eps, float* mean,
                      float* invstd, float* running_mean, float* running_var) {
  const int64_t count = n * hw;
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (const float* p = x + (i * c + ch) * hw; p != x + (i * c + ch + 1) * hw; ++p) sum += *p;
    const double m = sum / static_cast<double>(count);
    double sq = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (const float* p = x + (i * c + ch) * hw; p != x + (i * c + ch + 1) * hw; ++p) sq += (*p - m) * (*p - m);
    const float var = static_cast<float>(sq / static_cast<double>(count));
    mean[ch] = static_cast<float>(m);
    invstd[ch] = bn_invstd(var, eps);
    bn_update_running(running_mean + ch, running_var + ch, mean[ch], var, count, momentum);
  }
}

void batch_norm_invstd(const float* var, float* invstd, int64_t c, float eps) {
  for (int64_t ch = 0; ch < c; ++ch) invstd[ch] = bn_invstd(var[ch], eps);
}

void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* gamma, const float* beta,
                      float* y, int64_t n, int64_t c, int64_t hw) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t base = (i * c + ch) * hw;
      for (int64_t s = 0; s < hw; ++s) y[base + s] = bn_forward(x[base + s], mean[ch], invstd[ch], gamma[ch], beta[ch]);
    }
}

void batch_norm_bwd_reduce(const float* grad_y, const float* x, const float* mean, const float* invstd, int64_t n,
                           int64_t c, int64_t hw, float* sum_dy, float* sum_dy_xhat) {
  for (int64_t ch = 0; ch < c; ++ch) {
    double a = 0.0, b = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t base = (i * c + ch) * hw;
      for (int64_t s = 0; s < hw; ++s) {
        a += grad_y[base + s];
        b += static_cast<double>(grad_y[base + s]) * bn_xhat(x[base + s], mean[ch], invstd[ch]);
      }
    }
    sum_dy[ch] = static_cast<float>(a);
    sum_dy_xhat[ch] = static_cast<float>(b);
  }
}

void batch_norm_bwd_apply(const float* grad_y, const float* x, const float* mean, const float* invstd,
                          const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* grad_x, int64_t n,
                          int64_t c, int64_t hw, bool training) {
  const float inv_count = 1.f / static_cast<float>(n * hw);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t base = (i * c + ch) * hw;
      for (int64_t s = 0; s < hw; ++s)
        grad_x[base + s] = bn_backward(grad_y[base + s], x[base + s], mean[ch], invstd[ch], gamma[ch], sum_dy[ch],
                                       sum_dy_xhat[ch], inv_count, training);
    }
}

}  // namespace sieve::cpu

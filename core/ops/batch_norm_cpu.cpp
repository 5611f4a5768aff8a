// Plain-loop reference for batch norm; statistics accumulate in double (Note [batch-norm statistics]).
#include "core/ops/batch_norm.h"
#include "core/ops/batch_norm_math.h"
#include "core/ops/cpu_parallel.h"

namespace sieve::cpu {
namespace {

// A double sum kept as kLanes partial sums, term s of a run going to lane s % kLanes: one running sum is a chain
// of dependent additions (4 cycles each), while independent lanes pipeline and vectorise, several times faster
// over a channel's N*H*W terms. Only the order of the double additions changes, far below float resolution.
struct Lanes {
  static constexpr int64_t kLanes = 8;
  double lane[kLanes] = {};
  // Adds term(s) for s in [0, n); whole blocks of kLanes terms compile to straight-line vector code.
  template <typename Term>
  void add(int64_t n, Term term) {
    int64_t s = 0;
    for (; s + kLanes <= n; s += kLanes)
      for (int64_t j = 0; j < kLanes; ++j) lane[j] += term(s + j);
    for (int64_t j = 0; s < n; ++s, ++j) lane[j] += term(s);
  }
  double total() const {
    double t = 0.0;
    for (double v : lane) t += v;
    return t;
  }
};

}  // namespace

void batch_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, float momentum, float eps, float* mean,
                      float* invstd, float* running_mean, float* running_var) {
  const int64_t count = n * hw;
  SIEVE_PARALLEL_FOR(n * c * hw >= kParallelMin)  // whole channels per thread (Note [cpu threads])
  for (int64_t ch = 0; ch < c; ++ch) {
    Lanes sum;
    for (int64_t i = 0; i < n; ++i) {
      const float* plane = x + (i * c + ch) * hw;
      sum.add(hw, [plane](int64_t s) { return static_cast<double>(plane[s]); });
    }
    const double m = sum.total() / static_cast<double>(count);
    Lanes sq;
    for (int64_t i = 0; i < n; ++i) {
      const float* plane = x + (i * c + ch) * hw;
      sq.add(hw, [plane, m](int64_t s) { return (plane[s] - m) * (plane[s] - m); });
    }
    const float var = static_cast<float>(sq.total() / static_cast<double>(count));
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
  SIEVE_PARALLEL_FOR(n * c * hw >= kParallelMin)  // whole planes per thread (Note [cpu threads])
  for (int64_t plane = 0; plane < n * c; ++plane) {  // plane = image * c + channel
    const int64_t ch = plane % c, base = plane * hw;
    for (int64_t s = 0; s < hw; ++s) y[base + s] = bn_forward(x[base + s], mean[ch], invstd[ch], gamma[ch], beta[ch]);
  }
}

void batch_norm_bwd_reduce(const float* grad_y, const float* x, const float* mean, const float* invstd, int64_t n,
                           int64_t c, int64_t hw, float* sum_dy, float* sum_dy_xhat) {
  SIEVE_PARALLEL_FOR(n * c * hw >= kParallelMin)  // whole channels per thread (Note [cpu threads])
  for (int64_t ch = 0; ch < c; ++ch) {
    Lanes a, b;
    for (int64_t i = 0; i < n; ++i) {
      const float *dy = grad_y + (i * c + ch) * hw, *xp = x + (i * c + ch) * hw;
      a.add(hw, [dy](int64_t s) { return static_cast<double>(dy[s]); });
      b.add(hw, [dy, xp, m = mean[ch], is = invstd[ch]](int64_t s) {
        return static_cast<double>(dy[s]) * bn_xhat(xp[s], m, is);
      });
    }
    sum_dy[ch] = static_cast<float>(a.total());
    sum_dy_xhat[ch] = static_cast<float>(b.total());
  }
}

void batch_norm_bwd_apply(const float* grad_y, const float* x, const float* mean, const float* invstd,
                          const float* gamma, const float* sum_dy, const float* sum_dy_xhat, float* grad_x, int64_t n,
                          int64_t c, int64_t hw, bool training) {
  const float inv_count = 1.f / static_cast<float>(n * hw);
  SIEVE_PARALLEL_FOR(n * c * hw >= kParallelMin)  // whole planes per thread (Note [cpu threads])
  for (int64_t plane = 0; plane < n * c; ++plane) {  // plane = image * c + channel
    const int64_t ch = plane % c, base = plane * hw;
    for (int64_t s = 0; s < hw; ++s)
      grad_x[base + s] = bn_backward(grad_y[base + s], x[base + s], mean[ch], invstd[ch], gamma[ch], sum_dy[ch],
                                     sum_dy_xhat[ch], inv_count, training);
  }
}

}  // namespace sieve::cpu

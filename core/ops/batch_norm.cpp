#include "core/ops/batch_norm.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

void check_channel_vector(const Tensor& t, int64_t c, const Tensor& x, const char* what) {
  check_dtype(t, DType::F32, what);
  SIEVE_CHECK(t.dim() == 1 && t.size(0) == c, what, ": expected float32[", c, "] for ", c, " channels, found ",
              t.description());
  check_same_device(t, x, what);
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum, float eps) {
  check_dim(x, 4, "batch_norm2d input");
  check_dtype(x, DType::F32, "batch_norm2d input");
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  SIEVE_CHECK(c > 0 && n * hw > 0, "batch_norm2d: empty input ", x.description());
  check_channel_vector(gamma, c, x, "batch_norm2d weight (gamma)");
  check_channel_vector(beta, c, x, "batch_norm2d bias (beta)");
  check_channel_vector(running_mean, c, x, "batch_norm2d running_mean");
  check_channel_vector(running_var, c, x, "batch_norm2d running_var");
  SIEVE_CHECK(std::isfinite(eps) && eps > 0.f, "batch_norm2d: eps must be positive, got ", eps);
  SIEVE_CHECK(momentum >= 0.f && momentum <= 1.f, "batch_norm2d: momentum must be in [0, 1], got ", momentum);
  SIEVE_CHECK(!training || n * hw > 1, "batch_norm2d: training needs more than one value per channel, got ",
              x.description());

  // Snapshots of the statistics used, for backward: later steps update the running statistics in place.
  Tensor mean, invstd = Tensor::empty({c}, DType::F32, x.device());
  if (training) {
    mean = Tensor::empty({c}, DType::F32, x.device());
    SIEVE_DISPATCH(x.device(), batch_norm_stats, x.data<float>(), n, c, hw, momentum, eps, mean.data<float>(),
                   invstd.data<float>(), running_mean.data<float>(), running_var.data<float>());
  } else {
    mean = running_mean.clone();
    SIEVE_DISPATCH(x.device(), batch_norm_invstd, running_var.data<float>(), invstd.data<float>(), c, eps);
  }
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), batch_norm_apply, x.data<float>(), mean.data<float>(), invstd.data<float>(),
                 gamma.data<float>(), beta.data<float>(), y.data<float>(), n, c, hw);

  if (needs_grad({&x, &gamma, &beta})) {
    Tensor sx = x.detach(), sg = gamma.detach();  // Note [saved tensors]
    record(y, "batch_norm2d", {x, gamma, beta}, [sx, sg, mean, invstd, training](const Tensor& g) {
      const int64_t n = sx.size(0), c = sx.size(1), hw = sx.size(2) * sx.size(3);
      Tensor sum_dy = Tensor::empty({c}, DType::F32, g.device());
      Tensor sum_dy_xhat = Tensor::empty({c}, DType::F32, g.device());
      Tensor gx = Tensor::empty(sx.shape(), DType::F32, g.device());
      SIEVE_DISPATCH(g.device(), batch_norm_bwd_reduce, g.data<float>(), sx.data<float>(), mean.data<float>(),
                     invstd.data<float>(), n, c, hw, sum_dy.data<float>(), sum_dy_xhat.data<float>());
      SIEVE_DISPATCH(g.device(), batch_norm_bwd_apply, g.data<float>(), sx.data<float>(), mean.data<float>(),
                     invstd.data<float>(), sg.data<float>(), sum_dy.data<float>(), sum_dy_xhat.data<float>(),
                     gx.data<float>(), n, c, hw, training);
      return std::vector<Tensor>{gx, sum_dy_xhat, sum_dy};  // d/dx, d/dgamma, d/dbeta
    });
  }
  return y;
}

}  // namespace sieve

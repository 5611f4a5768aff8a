#include "core/ops/pool.h"

#include <limits>

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

PoolGeometry pool_geometry(const Tensor& x, int kernel, int stride, int padding, const char* name) {
  check_dim(x, 4, name);
  check_dtype(x, DType::F32, name);
  SIEVE_CHECK(kernel >= 1 && stride >= 1, name, ": kernel and stride must be at least 1, got kernel ", kernel,
              ", stride ", stride);
  SIEVE_CHECK(padding >= 0 && padding <= kernel / 2, name, ": padding must be in [0, kernel / 2] = [0, ", kernel / 2,
              "], got ", padding);
  PoolGeometry g;
  g.planes = x.size(0) * x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  SIEVE_CHECK(g.h * g.w <= std::numeric_limits<int32_t>::max(), name, ": planes of ", g.h, "x", g.w,
              " are too large for int32 indices");
  SIEVE_CHECK(g.h + 2 * padding >= kernel && g.w + 2 * padding >= kernel, name, ": kernel ", kernel,
              " is larger than the padded input (", x.description(), ", padding ", padding, ")");
  g.out_h = (g.h + 2 * padding - kernel) / stride + 1;
  g.out_w = (g.w + 2 * padding - kernel) / stride + 1;
  return g;
}

Shape out_shape(const Tensor& x, const PoolGeometry& g) { return {x.size(0), x.size(1), g.out_h, g.out_w}; }

}  // namespace

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "max_pool2d");
  Tensor y = Tensor::empty(out_shape(x, g), DType::F32, x.device());
  // Note [max-pool indices]; only kept for a backward pass (a no-grad scoring forward writes none).
  const bool grad = needs_grad({&x});
  Tensor indices = grad ? Tensor::empty(out_shape(x, g), DType::I32, x.device()) : Tensor();
  SIEVE_DISPATCH(x.device(), max_pool2d_fwd, x.data<float>(), y.data<float>(),
                 grad ? indices.data<int32_t>() : nullptr, g);
  if (grad) {
    const Shape in_shape = x.shape();
    record(y, "max_pool2d", {x}, [indices, g, in_shape](const Tensor& gy) {
      Tensor gx = Tensor::empty(in_shape, DType::F32, gy.device());
      SIEVE_DISPATCH(gy.device(), max_pool2d_bwd, gy.data<float>(), indices.data<int32_t>(), gx.data<float>(), g);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "avg_pool2d");
  Tensor y = Tensor::empty(out_shape(x, g), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), avg_pool2d_fwd, x.data<float>(), y.data<float>(), g);
  if (needs_grad({&x})) {
    const Shape in_shape = x.shape();
    record(y, "avg_pool2d", {x}, [g, in_shape](const Tensor& gy) {
      Tensor gx = Tensor::empty(in_shape, DType::F32, gy.device());
      SIEVE_DISPATCH(gy.device(), avg_pool2d_bwd, gy.data<float>(), gx.data<float>(), g);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  check_dim(x, 4, "global_avg_pool");
  check_dtype(x, DType::F32, "global_avg_pool");
  const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  SIEVE_CHECK(hw > 0, "global_avg_pool: empty planes in ", x.description());
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), global_avg_pool_fwd, x.data<float>(), y.data<float>(), planes, hw);
  if (needs_grad({&x})) {
    const Shape in_shape = x.shape();
    record(y, "global_avg_pool", {x}, [in_shape, planes, hw](const Tensor& gy) {
      Tensor gx = Tensor::empty(in_shape, DType::F32, gy.device());
      SIEVE_DISPATCH(gy.device(), global_avg_pool_bwd, gy.data<float>(), gx.data<float>(), planes, hw);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace sieve

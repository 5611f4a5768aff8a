#include "core/ops/dropout.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {

Tensor dropout(const Tensor& x, float p, Generator& gen, bool training) {
  check_dtype(x, DType::F32, "dropout input");
  SIEVE_CHECK(p >= 0.f && p < 1.f, "dropout: probability p must be in [0, 1), got ", p);  // false for NaN too
  if (!training || p == 0.f) return x;
  const PhiloxCounter c = gen.draw(static_cast<uint64_t>(x.numel()));
  const float scale = 1.f / (1.f - p);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), dropout_apply, x.data<float>(), y.data<float>(), x.numel(), c, p, scale);
  if (needs_grad({&x})) {
    record(y, "dropout", {x}, [c, p, scale](const Tensor& g) {  // Note [dropout mask]
      Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
      SIEVE_DISPATCH(g.device(), dropout_apply, g.data<float>(), gx.data<float>(), g.numel(), c, p, scale);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace sieve

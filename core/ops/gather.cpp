#include "core/ops/gather.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {

Tensor index_select(const Tensor& x, const Tensor& idx) {
  SIEVE_CHECK(x.defined() && x.dim() >= 1, "index_select: expected a tensor of at least one dimension, found ",
              x.description());
  check_dim(idx, 1, "index_select indices");
  SIEVE_CHECK(idx.dtype() == DType::I32 || idx.dtype() == DType::I64, "index_select: indices must be int32 or int64, found ",
              idx.description());
  check_same_device(x, idx, "index_select");
  Shape shape = x.shape();
  const int64_t src_rows = shape[0];
  const int64_t row_numel = src_rows ? x.numel() / src_rows : shape_numel(Shape(shape.begin() + 1, shape.end()));
  shape[0] = idx.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const int64_t row_bytes = row_numel * static_cast<int64_t>(dtype_size(x.dtype()));
  SIEVE_DISPATCH(x.device(), gather_rows, x.raw_data(), src_rows, row_bytes, idx.view(), out.raw_data());
  if (needs_grad({&x})) {
    Tensor sidx = idx.detach();
    const Shape in_shape = x.shape();
    record(out, "index_select", {x}, [sidx, in_shape, row_numel](const Tensor& g) {
      Tensor gx = Tensor::zeros(in_shape, DType::F32, g.device());
      SIEVE_DISPATCH(g.device(), scatter_add_rows, g.data<float>(), sidx.view(), row_numel, gx.data<float>(),
                     in_shape[0]);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

}  // namespace sieve

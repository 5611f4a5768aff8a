#include "core/ops/reduce.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/ops/nonfinite.h"

namespace sieve {
namespace {

// scale * sum_i w_i x_i as a 0-d tensor, with its gradient g scale w_i (w undefined: 1).
Tensor scaled_dot(const Tensor& x, const Tensor& w, float scale, const char* name) {
  check_dtype(x, DType::F32, name);
  if (w.defined()) {
    check_dtype(w, DType::F32, name);
    check_same_device(x, w, name);
    SIEVE_CHECK(w.numel() == x.numel(), name, ": ", w.numel(), " weights for ", x.numel(), " values");
  }
  Tensor out = Tensor::empty({}, DType::F32, x.device());
  const float* wp = w.defined() ? w.data<float>() : nullptr;
  SIEVE_DISPATCH(x.device(), dot, x.data<float>(), wp, x.numel(), scale, out.data<float>());
  if (needs_grad({&x})) {
    Tensor sw = w.defined() ? w.detach() : Tensor();
    const Shape shape = x.shape();
    record(out, name, {x}, [sw, shape, scale](const Tensor& g) {
      Tensor gx = Tensor::empty(shape, DType::F32, g.device());
      const float* wp = sw.defined() ? sw.data<float>() : nullptr;
      SIEVE_DISPATCH(g.device(), broadcast_scaled, g.data<float>(), scale, wp, gx.data<float>(), gx.numel());
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return scaled_dot(x, Tensor(), 1.f, "sum"); }

Tensor mean(const Tensor& x) {
  SIEVE_CHECK(x.numel() > 0, "mean of an empty tensor");
  return scaled_dot(x, Tensor(), 1.f / static_cast<float>(x.numel()), "mean");
}

Tensor weighted_mean(const Tensor& x, const Tensor& w) {
  check_dim(x, 1, "weighted_mean values");
  check_dim(w, 1, "weighted_mean weights");
  SIEVE_CHECK(x.numel() > 0, "weighted_mean of an empty tensor");
  return scaled_dot(x, w, 1.f / static_cast<float>(x.numel()), "weighted_mean");
}

Tensor argmax_rows(const Tensor& x) {
  check_dim(x, 2, "argmax_rows");
  check_dtype(x, DType::F32, "argmax_rows");
  SIEVE_CHECK(x.size(1) > 0, "argmax_rows: rows are empty in ", x.description());
  Tensor out = Tensor::empty({x.size(0)}, DType::I32, x.device());
  SIEVE_DISPATCH(x.device(), argmax_rows, x.data<float>(), out.data<int32_t>(), x.size(0), x.size(1));
  return out;
}

int64_t count_equal(const Tensor& a, const Tensor& b) {
  check_dtype(a, DType::I32, "count_equal");
  check_same_shape(a, b, "count_equal");
  int64_t result = 0;
  switch (a.device().type) {
    case DeviceType::CPU: result = cpu::count_equal(a.data<int32_t>(), b.data<int32_t>(), a.numel()); break;
    case DeviceType::CUDA: {
      DeviceGuard guard(a.device());
      result = cuda::count_equal(a.data<int32_t>(), b.data<int32_t>(), a.numel());
      break;
    }
  }
  return result;
}

void record_first_nonfinite(const Tensor& value, int64_t step, Tensor& first_step, Tensor& first_value) {
  check_dtype(value, DType::F32, "record_first_nonfinite value");
  check_dtype(first_step, DType::I64, "record_first_nonfinite first_step");
  check_dtype(first_value, DType::F32, "record_first_nonfinite first_value");
  SIEVE_CHECK(value.numel() == 1 && first_step.numel() == 1 && first_value.numel() == 1,
              "record_first_nonfinite: expected one-element tensors, found ", value.description(), ", ",
              first_step.description(), " and ", first_value.description());
  check_same_device(value, first_step, "record_first_nonfinite");
  check_same_device(value, first_value, "record_first_nonfinite");
  SIEVE_DISPATCH(value.device(), record_first_nonfinite, value.data<float>(), step, first_step.data<int64_t>(),
                 first_value.data<float>());
}

}  // namespace sieve

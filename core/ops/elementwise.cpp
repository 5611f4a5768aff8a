#include "core/ops/elementwise.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_dtype(a, DType::F32, name);
  check_same_shape(a, b, name);
  Tensor out = Tensor::empty(a.shape(), DType::F32, a.device());
  SIEVE_DISPATCH(a.device(), binary, op, a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::Add, a, b, "add");
  if (needs_grad({&a, &b}))
    // Distinct tensors for distinct inputs (Note [autograd] in core/autograd.h: gradients never alias).
    record(out, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g.clone()}; });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::Sub, a, b, "sub");
  if (needs_grad({&a, &b})) record(out, "sub", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, scale(g, -1.f)}; });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::Mul, a, b, "mul");
  if (needs_grad({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();  // Note [saved tensors]
    record(out, "mul", {a, b}, [sa, sb](const Tensor& g) { return std::vector<Tensor>{mul(g, sb), mul(g, sa)}; });
  }
  return out;
}

Tensor scale(const Tensor& a, float s) {
  check_dtype(a, DType::F32, "scale");
  Tensor out = Tensor::zeros(a.shape(), DType::F32, a.device());
  SIEVE_DISPATCH(a.device(), axpby, s, a.data<float>(), 0.f, out.data<float>(), a.numel());
  if (needs_grad({&a})) record(out, "scale", {a}, [s](const Tensor& g) { return std::vector<Tensor>{scale(g, s)}; });
  return out;
}

Tensor relu(const Tensor& x) {
  check_dtype(x, DType::F32, "relu");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), relu_fwd, x.data<float>(), y.data<float>(), x.numel());
  if (needs_grad({&x})) {
    Tensor saved = y.detach();
    record(y, "relu", {x}, [saved](const Tensor& g) {
      Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
      SIEVE_DISPATCH(g.device(), relu_bwd, saved.data<float>(), g.data<float>(), gx.data<float>(), g.numel());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

void fill_(Tensor& t, double value) {
  SIEVE_CHECK(t.defined(), "fill_: undefined tensor");
  SIEVE_DISPATCH(t.device(), fill, t.view(), value);
}

void axpy_(Tensor& y, float alpha, const Tensor& x) {
  check_dtype(y, DType::F32, "axpy_");
  check_same_shape(y, x, "axpy_");
  SIEVE_DISPATCH(y.device(), axpby, alpha, x.data<float>(), 1.f, y.data<float>(), y.numel());
}

void add_(Tensor& y, const Tensor& x) { axpy_(y, 1.f, x); }

void scale_(Tensor& y, float s) {
  check_dtype(y, DType::F32, "scale_");
  SIEVE_DISPATCH(y.device(), axpby, 0.f, y.data<float>(), s, y.data<float>(), y.numel());
}

}  // namespace sieve

#include "core/ops/linear.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/ops/precision.h"

namespace sieve {
namespace {

// Gradient of the bias of [rows, cols] outputs: the column sums of the output gradient.
Tensor bias_grad(const Tensor& g) {
  Tensor gb = Tensor::zeros({g.size(1)}, DType::F32, g.device());
  SIEVE_DISPATCH(g.device(), column_sums, g.data<float>(), gb.data<float>(), g.size(0), g.size(1), 0.f);
  return gb;
}

// C = op(A) op(B) in the given precision (Note [bf16 products]).
void gemm_as(MatmulPrecision precision, Device device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
             const float* a, const float* b, float* c) {
  if (precision == MatmulPrecision::BF16)
    SIEVE_DISPATCH(device, gemm_bf16, trans_a, trans_b, m, n, k, 1.f, a, b, 0.f, c);
  else
    SIEVE_DISPATCH(device, gemm, trans_a, trans_b, m, n, k, 1.f, a, b, 0.f, c);
}

// matmul in a given precision; the backward pass multiplies in the precision of its forward pass.
Tensor matmul_as(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, MatmulPrecision precision) {
  check_dim(a, 2, "matmul left operand");
  check_dim(b, 2, "matmul right operand");
  check_dtype(a, DType::F32, "matmul left operand");
  check_dtype(b, DType::F32, "matmul right operand");
  check_same_device(a, b, "matmul");
  const int64_t m = trans_a ? a.size(1) : a.size(0), k = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0), n = trans_b ? b.size(0) : b.size(1);
  SIEVE_CHECK(k == kb, "matmul: inner dimensions differ: ", a.description(), (trans_a ? "^T" : ""), " @ ",
              b.description(), (trans_b ? "^T" : ""));
  Tensor c = Tensor::empty({m, n}, DType::F32, a.device());
  gemm_as(precision, a.device(), trans_a, trans_b, m, n, k, a.data<float>(), b.data<float>(), c.data<float>());
  if (needs_grad({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();
    record(c, "matmul", {a, b}, [sa, sb, trans_a, trans_b, precision](const Tensor& g) {
      // C = A B: dA = G B^T, dB = A^T G; transposed operands swap roles accordingly.
      Tensor ga = trans_a ? matmul_as(sb, g, trans_b, true, precision) : matmul_as(g, sb, false, !trans_b, precision);
      Tensor gb = trans_b ? matmul_as(g, sa, true, trans_a, precision) : matmul_as(sa, g, !trans_a, false, precision);
      return std::vector<Tensor>{ga, gb};
    });
  }
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  return matmul_as(a, b, trans_a, trans_b, matmul_precision());
}

Tensor add_bias(const Tensor& x, const Tensor& bias) {
  check_dim(x, 2, "add_bias input");
  check_dim(bias, 1, "add_bias bias");
  check_dtype(x, DType::F32, "add_bias input");
  check_dtype(bias, DType::F32, "add_bias bias");
  check_same_device(x, bias, "add_bias");
  SIEVE_CHECK(bias.size(0) == x.size(1), "add_bias: bias ", bias.description(), " does not match input ",
              x.description());
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), bias_add, x.data<float>(), bias.data<float>(), y.data<float>(), x.size(0), x.size(1));
  if (needs_grad({&x, &bias}))
    record(y, "add_bias", {x, bias}, [](const Tensor& g) { return std::vector<Tensor>{g, bias_grad(g)}; });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_dim(x, 2, "linear input");
  check_dim(weight, 2, "linear weight");
  check_dtype(x, DType::F32, "linear input");
  check_dtype(weight, DType::F32, "linear weight");
  check_same_device(x, weight, "linear");
  SIEVE_CHECK(x.size(1) == weight.size(1), "linear: input ", x.description(), " does not match weight ",
              weight.description(), " (expected ", weight.size(1), " features)");
  const int64_t n = x.size(0), in = x.size(1), out = weight.size(0);
  if (bias.defined()) {
    check_dtype(bias, DType::F32, "linear bias");
    check_same_device(x, bias, "linear");
    SIEVE_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias ", bias.description(), " does not match ",
                out, " outputs");
  }
  const MatmulPrecision precision = matmul_precision();
  Tensor y = Tensor::empty({n, out}, DType::F32, x.device());
  gemm_as(precision, x.device(), false, true, n, out, in, x.data<float>(), weight.data<float>(), y.data<float>());
  if (bias.defined())
    SIEVE_DISPATCH(x.device(), bias_add, y.data<float>(), bias.data<float>(), y.data<float>(), n, out);
  if (needs_grad({&x, &weight, &bias})) {
    Tensor sx = x.detach(), sw = weight.detach();
    const bool has_bias = bias.defined();
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();  // the first layer's input needs none
    std::vector<Tensor> inputs{x, weight};
    if (has_bias) inputs.push_back(bias);
    record(y, "linear", inputs, [sx, sw, has_bias, need_x, need_w, precision](const Tensor& g) {
      std::vector<Tensor> grads{need_x ? matmul_as(g, sw, false, false, precision) : Tensor(),
                                need_w ? matmul_as(g, sx, true, false, precision) : Tensor()};
      if (has_bias) grads.push_back(bias_grad(g));
      return grads;
    });
  }
  return y;
}

}  // namespace sieve

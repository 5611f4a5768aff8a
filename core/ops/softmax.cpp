#include "core/ops/softmax.h"

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

Tensor softmax_impl(const Tensor& x, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_dim(x, 2, name);
  check_dtype(x, DType::F32, name);
  SIEVE_CHECK(x.size(1) > 0, name, ": rows are empty in ", x.description());
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), softmax_fwd, x.data<float>(), y.data<float>(), x.size(0), x.size(1), log);
  if (needs_grad({&x})) {
    Tensor saved = y.detach();
    record(y, name, {x}, [saved, log](const Tensor& g) {
      Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
      SIEVE_DISPATCH(g.device(), softmax_bwd, saved.data<float>(), g.data<float>(), gx.data<float>(), g.size(0),
                     g.size(1), log);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl(x, false); }
Tensor log_softmax(const Tensor& x) { return softmax_impl(x, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_dim(logits, 2, "cross_entropy logits");
  check_dtype(logits, DType::F32, "cross_entropy logits");
  check_dim(labels, 1, "cross_entropy labels");
  check_dtype(labels, DType::I32, "cross_entropy labels");
  check_same_device(logits, labels, "cross_entropy");
  const int64_t rows = logits.size(0), cols = logits.size(1);
  SIEVE_CHECK(labels.size(0) == rows, "cross_entropy: ", rows, " rows of logits but ", labels.size(0), " labels");
  SIEVE_CHECK(cols > 0, "cross_entropy: logits have no classes");
  if (labels.device().is_cpu()) {
    const int32_t* y = labels.data<int32_t>();
    for (int64_t i = 0; i < rows; ++i)
      SIEVE_CHECK(y[i] >= 0 && y[i] < cols, "cross_entropy: label ", y[i], " at row ", i, " is outside [0, ", cols, ")");
  }
  Tensor loss = Tensor::empty({rows}, DType::F32, logits.device());
  SIEVE_DISPATCH(logits.device(), cross_entropy_fwd, logits.data<float>(), labels.data<int32_t>(), loss.data<float>(),
                 rows, cols);
  if (needs_grad({&logits})) {
    Tensor sz = logits.detach(), sy = labels.detach();
    record(loss, "cross_entropy", {logits}, [sz, sy](const Tensor& g) {
      Tensor gz = Tensor::empty(sz.shape(), DType::F32, sz.device());
      SIEVE_DISPATCH(sz.device(), cross_entropy_bwd, sz.data<float>(), sy.data<int32_t>(), g.data<float>(),
                     gz.data<float>(), sz.size(0), sz.size(1));
      return std::vector<Tensor>{gz};
    });
  }
  return loss;
}

}  // namespace sieve

#include "core/ops/precision.h"

#include <atomic>

#include "core/ops/dispatch.h"

namespace sieve {
namespace {

std::atomic<MatmulPrecision> g_precision{MatmulPrecision::F32};  // Note [bf16 products]

}  // namespace

void set_matmul_precision(MatmulPrecision precision) { g_precision.store(precision); }
MatmulPrecision matmul_precision() { return g_precision.load(); }

const char* precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::F32: return "f32";
    case MatmulPrecision::BF16: return "bf16";
  }
  return "unknown";
}

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name.empty() || name == "none" || name == "f32") return MatmulPrecision::F32;
  if (name == "bf16") return MatmulPrecision::BF16;
  SIEVE_FAIL("mixed precision: expected none or bf16, got '", name, "'");
}

Tensor round_to_bf16(const Tensor& x) {
  check_dtype(x, DType::F32, "round_to_bf16 input");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  SIEVE_DISPATCH(x.device(), round_to_bf16, x.data<float>(), y.data<float>(), x.numel());
  return y;
}

}  // namespace sieve

#include "layers/norm.h"

#include <cmath>
#include <sstream>

#include "core/ops/batch_norm.h"

namespace sieve {

BatchNorm2d::BatchNorm2d(int64_t channels, const BatchNormOptions& options)
    : channels_(channels), momentum_(options.momentum), eps_(options.eps) {
  const float momentum = options.momentum, eps = options.eps;
  const Device device = options.device;
  SIEVE_CHECK(channels > 0, "BatchNorm2d: channels must be positive, got ", channels);
  SIEVE_CHECK(momentum >= 0.f && momentum <= 1.f, "BatchNorm2d: momentum must be in [0, 1], got ", momentum);
  SIEVE_CHECK(std::isfinite(eps) && eps > 0.f, "BatchNorm2d: eps must be positive, got ", eps);
  weight = Tensor::ones({channels}, DType::F32, device);
  bias = Tensor::zeros({channels}, DType::F32, device);
  running_mean = Tensor::zeros({channels}, DType::F32, device);
  running_var = Tensor::ones({channels}, DType::F32, device);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_);
}

std::string BatchNorm2d::describe() const {
  std::ostringstream os;
  os << "BatchNorm2d(" << channels_ << ", momentum " << momentum_ << ", eps " << eps_ << ")";
  return os.str();
}

}  // namespace sieve

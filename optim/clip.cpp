#include "optim/clip.h"

#include <cmath>

#include "core/ops/dispatch.h"

namespace sieve {

Tensor clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm) {
  SIEVE_CHECK(std::isfinite(max_norm) && max_norm > 0.f, "clip_grad_norm: max_norm must be finite and > 0, found ",
              max_norm);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < parameters.size(); ++i) {
    SIEVE_CHECK(parameters[i].defined(), "clip_grad_norm: parameter ", i, " is an undefined tensor");
    Tensor g = parameters[i].grad();
    if (!g.defined()) continue;
    SIEVE_CHECK(g.dtype() == DType::F32, "clip_grad_norm: the gradient of parameter ", i, " is ", g.description(),
                ", expected float32");
    SIEVE_CHECK(grads.empty() || g.device() == grads.front().device(),
                "clip_grad_norm: gradients on different devices (", grads.front().description(), " and, for parameter ",
                i, ", ", g.description(), ")");
    grads.push_back(g);
  }
  const Device device = !grads.empty()           ? grads.front().device()
                        : !parameters.empty()    ? parameters.front().device()
                                                 : Device::cpu();
  if (grads.empty()) return Tensor::zeros({}, DType::F32, device);

  const int64_t count = static_cast<int64_t>(grads.size()) * kNormPartials;
  Tensor partials = Tensor::empty({count}, DType::F32, device);
  Tensor norm = Tensor::empty({}, DType::F32, device);
  Tensor scale = Tensor::empty({}, DType::F32, device);
  float* slots = partials.data<float>();
  for (size_t k = 0; k < grads.size(); ++k)
    SIEVE_DISPATCH(device, sum_squares_partials, grads[k].data<float>(), grads[k].numel(),
                   slots + static_cast<int64_t>(k) * kNormPartials);
  SIEVE_DISPATCH(device, finish_grad_norm, slots, count, max_norm, norm.data<float>(), scale.data<float>());
  for (Tensor& g : grads) SIEVE_DISPATCH(device, scale_if_clipping, g.data<float>(), g.numel(), scale.data<float>());
  return norm;
}

}  // namespace sieve

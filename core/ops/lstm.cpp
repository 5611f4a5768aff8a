#include "core/ops/lstm.h"

#include <string>

#include "core/autograd.h"
#include "core/ops/dispatch.h"

namespace sieve {
namespace {

const char* const kParamNames[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

// Checks x and params against each other and returns the shape the backends take.
LstmShape lstm_shape(const Tensor& x, const std::vector<Tensor>& params) {
  check_dim(x, 3, "lstm input [B, T, I]");
  check_dtype(x, DType::F32, "lstm input");
  SIEVE_CHECK(!params.empty() && params.size() % 4 == 0, "lstm: expected 4 parameters per layer (weight_ih, "
              "weight_hh, bias_ih, bias_hh), found ", params.size());
  SIEVE_CHECK(params[1].defined() && params[1].dim() == 2, "lstm: weight_hh_l0 must be [4H, H], found ",
              params[1].defined() ? params[1].description() : std::string("an undefined tensor"));
  LstmShape s{x.size(0), x.size(1), x.size(2), params[1].size(1), static_cast<int64_t>(params.size() / 4)};
  SIEVE_CHECK(s.steps > 0 && s.input > 0, "lstm: empty sequences ", x.description(), " (need T >= 1 and I >= 1)");
  SIEVE_CHECK(s.hidden > 0, "lstm: hidden size must be positive, found weight_hh_l0 ", params[1].description());
  for (int64_t k = 0; k < s.layers; ++k) {
    const Shape expected[4] = {{4 * s.hidden, s.layer_input(k)}, {4 * s.hidden, s.hidden}, {4 * s.hidden},
                               {4 * s.hidden}};
    for (int j = 0; j < 4; ++j) {
      const Tensor& p = params[4 * k + j];
      const std::string name = std::string(kParamNames[j]) + "_l" + std::to_string(k);
      SIEVE_CHECK(p.defined(), "lstm: ", name, " is undefined");
      check_dtype(p, DType::F32, "lstm parameter");
      check_same_device(x, p, "lstm");
      SIEVE_CHECK(p.shape() == expected[j], "lstm: ", name, " should be ", shape_string(expected[j]), " for input ",
                  x.description(), " and hidden size ", s.hidden, ", found ", p.description());
    }
  }
  return s;
}

size_t reserve_bytes(Device device, const LstmShape& s) {
  if (device.is_cpu()) return cpu::lstm_reserve_bytes(s);
  DeviceGuard guard(device);
  return cuda::lstm_reserve_bytes(s);
}

std::vector<const float*> pointers(const std::vector<Tensor>& ts) {
  std::vector<const float*> out;
  for (const Tensor& t : ts) out.push_back(t.data<float>());
  return out;
}

}  // namespace

Tensor lstm(const Tensor& x, const std::vector<Tensor>& params) {
  const LstmShape s = lstm_shape(x, params);
  const Device device = x.device();
  Tensor y = Tensor::empty({s.batch, s.steps, s.hidden}, DType::F32, device);
  if (s.batch == 0) return y;  // an empty batch is a valid (empty) result; cuDNN rejects zero-sized descriptors
  bool grad = needs_grad({&x});
  for (const Tensor& p : params) grad = grad || needs_grad({&p});
  const std::vector<const float*> ps = pointers(params);
  if (!grad) {
    SIEVE_DISPATCH(device, lstm_fwd, s, x.data<float>(), ps.data(), y.data<float>(), nullptr);
    return y;
  }
  Tensor reserve = Tensor::empty({static_cast<int64_t>(reserve_bytes(device, s))}, DType::U8, device);
  SIEVE_DISPATCH(device, lstm_fwd, s, x.data<float>(), ps.data(), y.data<float>(), reserve.raw_data());
  // Detached inputs and output (Note [saved tensors]); the reserve is the op's own (Note [lstm reserve]).
  std::vector<Tensor> saved{x.detach()};
  for (const Tensor& p : params) saved.push_back(p.detach());
  const Tensor sy = y.detach();
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  record(y, "lstm", inputs, [s, saved, sy, reserve, device](const Tensor& g) {
    std::vector<Tensor> grads(saved.size());
    grads[0] = Tensor::empty({s.batch, s.steps, s.input}, DType::F32, device);
    std::vector<float*> dparams;
    for (size_t i = 1; i < saved.size(); ++i) {
      grads[i] = Tensor::empty(saved[i].shape(), DType::F32, device);
      dparams.push_back(grads[i].data<float>());
    }
    const std::vector<const float*> ps = pointers({saved.begin() + 1, saved.end()});
    SIEVE_DISPATCH(device, lstm_bwd, s, saved[0].data<float>(), ps.data(), sy.data<float>(), g.data<float>(),
                   reserve.raw_data(), grads[0].data<float>(), dparams.data());
    return grads;
  });
  return y;
}

Tensor select_step(const Tensor& y, int64_t t) {
  check_dim(y, 3, "select_step input [B, T, H]");
  check_dtype(y, DType::F32, "select_step input");
  const int64_t b = y.size(0), steps = y.size(1), width = y.size(2);
  const int64_t step = t < 0 ? t + steps : t;
  SIEVE_CHECK(step >= 0 && step < steps, "select_step: step ", t, " is outside a sequence of ", steps, " steps (",
              y.description(), ")");
  const Device device = y.device();
  Tensor out = Tensor::empty({b, width}, DType::F32, device);
  if (b > 0 && width > 0) SIEVE_DISPATCH(device, get_step, y.data<float>(), b, steps, width, step, out.data<float>());
  if (needs_grad({&y}))
    record(out, "select_step", {y}, [b, steps, width, step, device](const Tensor& g) {
      Tensor gy = Tensor::zeros({b, steps, width}, DType::F32, device);
      if (b > 0 && width > 0)
        SIEVE_DISPATCH(device, put_step, g.data<float>(), b, steps, width, step, gy.data<float>());
      return std::vector<Tensor>{gy};
    });
  return out;
}

}  // namespace sieve

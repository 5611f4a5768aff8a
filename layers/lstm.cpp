#include "layers/lstm.h"

#include <cmath>
#include <string>

namespace sieve {

Lstm::Lstm(int64_t input_size, int64_t hidden_size, int64_t layers, Generator& gen, Device device)
    : input_(input_size), hidden_(hidden_size), layers_(layers) {
  SIEVE_CHECK(input_size > 0 && hidden_size > 0 && layers > 0, "Lstm: sizes must be positive, got input ",
              input_size, ", hidden ", hidden_size, ", layers ", layers);
  const int64_t H = hidden_size;
  const float a = 1.f / std::sqrt(static_cast<float>(H));
  params_.reserve(4 * layers);  // registered by address below: no reallocation after this
  for (int64_t k = 0; k < layers; ++k) {
    const int64_t in = k == 0 ? input_size : H;
    const Shape shapes[4] = {{4 * H, in}, {4 * H, H}, {4 * H}, {4 * H}};
    for (const Shape& shape : shapes) params_.push_back(uniform(shape, gen, Device::cpu(), -a, a));
    // Forget-gate bias: b_ih_f + b_hh_f = 1 (b_ih_f = 1, b_hh_f = 0) instead of ~0, so that the cell state is
    // mostly kept from step to step at the start of training and gradients reach early steps (Gers et al. 2000;
    // Jozefowicz, Zaremba & Sutskever 2015 found it helps LSTMs on nearly every task). The gates are the blocks
    // i, f, g, o of 4H rows: f is rows [H, 2H).
    float* b_ih = params_[4 * k + 2].data<float>();
    float* b_hh = params_[4 * k + 3].data<float>();
    for (int64_t j = H; j < 2 * H; ++j) b_ih[j] = 1.f, b_hh[j] = 0.f;
  }
  const char* const names[4] = {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"};
  for (int64_t i = 0; i < 4 * layers; ++i) {
    params_[i] = params_[i].to(device);
    register_parameter(names[i % 4] + std::to_string(i / 4), &params_[i]);
  }
}

Tensor Lstm::forward(const Tensor& x) { return lstm(x, params_); }

std::string Lstm::describe() const {
  return "LSTM(" + std::to_string(input_) + " -> " + std::to_string(hidden_) +
         (layers_ == 1 ? "" : ", " + std::to_string(layers_) + " layers") + ")";
}

LstmClassifier::LstmClassifier(int64_t input_size, int64_t hidden_size, int64_t layers, int64_t classes,
                               Generator& gen, Device device)
    : lstm_(std::make_shared<Lstm>(input_size, hidden_size, layers, gen, device)),
      fc_(std::make_shared<Linear>(hidden_size, classes, gen,
          LinearOptions{.init = Init::GlorotUniform, .device = device})) {
  register_module("lstm", lstm_);
  register_module("fc", fc_);
}

Tensor LstmClassifier::forward(const Tensor& x) {
  SIEVE_CHECK(x.dim() >= 2, "LstmClassifier: expected a batch [B, ...], found ", x.description());
  const int64_t per_example = shape_numel(Shape(x.shape().begin() + 1, x.shape().end()));
  const int64_t in = lstm_->input_size();
  SIEVE_CHECK(per_example > 0 && per_example % in == 0, "LstmClassifier: each example of ", x.description(),
              " has ", per_example, " values, not a whole number of steps of ", in);
  const Tensor seq = x.reshape({x.size(0), per_example / in, in});
  return fc_->forward(select_step(lstm_->forward(seq), -1));
}

std::string LstmClassifier::describe() const {
  return "LstmClassifier(" + lstm_->describe() + ", " + fc_->describe() + ")";
}

}  // namespace sieve

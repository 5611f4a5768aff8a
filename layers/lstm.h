// LSTM layers over batch-first sequences (the op is core/ops/lstm.h), and the sequence classifier built on them.
#pragma once

#include <memory>
#include <vector>

#include "core/ops/lstm.h"
#include "core/random.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace sieve {

class Lstm : public Module {
 public:
  // Parameters named as in PyTorch's nn.LSTM (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._l1, ...) and
  // initialised like it, U(-1/sqrt(H), 1/sqrt(H)), except the forget gate's biases (see lstm.cpp).
  Lstm(int64_t input_size, int64_t hidden_size, int64_t layers, Generator& gen, Device device = Device::cpu());
  Tensor forward(const Tensor& x) override;  // [B, T, input_size] -> [B, T, hidden_size]
  std::string describe() const override;     // e.g. "LSTM(1 -> 128, 2 layers)"

  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }
  int64_t layers() const { return layers_; }
  // 4 per layer, in the order core/ops/lstm.h's lstm() takes them.
  const std::vector<Tensor>& params() const { return params_; }

 private:
  int64_t input_, hidden_, layers_;
  std::vector<Tensor> params_;
};

// An LSTM read to the end, then a linear classifier on its last hidden state: each example's values (any shape,
// T * input_size of them) are read as T steps of input_size values, in row-major order (pixel by pixel for an
// image with input_size 1).
class LstmClassifier : public Module {
 public:
  LstmClassifier(int64_t input_size, int64_t hidden_size, int64_t layers, int64_t classes, Generator& gen,
                 Device device = Device::cpu());
  Tensor forward(const Tensor& x) override;  // [B, ...] -> [B, classes]
  std::string describe() const override;

  Lstm& lstm() { return *lstm_; }
  Linear& classifier() { return *fc_; }

 private:
  std::shared_ptr<Lstm> lstm_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace sieve

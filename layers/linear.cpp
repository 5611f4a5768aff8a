#include "layers/linear.h"

#include "core/ops.h"
#include "layers/init.h"

namespace sieve {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, const LinearOptions& options)
    : in_(in_features), out_(out_features) {
  const Device device = options.device;
  SIEVE_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got ", in_features, " -> ",
              out_features);
  weight = options.init == Init::KaimingNormal ? init::kaiming_normal({out_, in_}, in_, gen, device)
                                       : init::glorot_uniform({out_, in_}, in_, out_, gen, device);
  register_parameter("weight", &weight);
  if (options.bias) {
    bias = Tensor::zeros({out_}, DType::F32, device);
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) + (bias.defined() ? "" : ", no bias") + ")";
}

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor Flatten::forward(const Tensor& x) {
  SIEVE_CHECK(x.dim() >= 1, "Flatten: expected a batch, found ", x.description());
  return x.dim() == 2 ? x : x.reshape({x.size(0), -1});
}

void Sequential::add(std::shared_ptr<Module> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

std::string Sequential::describe() const {
  std::string s = "Sequential(";
  for (size_t i = 0; i < layers_.size(); ++i) s += (i ? ", " : "") + layers_[i]->describe();
  return s + ")";
}

}  // namespace sieve

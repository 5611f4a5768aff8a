// Affine layer y = x W^T + b, and the stateless layers of an MLP.
#pragma once

#include "core/random.h"
#include "layers/module.h"

namespace sieve {

enum class Init { KaimingNormal, GlorotUniform };

// A Linear's settings by name: Linear(128, 10, gen, {.init = Init::GlorotUniform, .device = d}).
struct LinearOptions {
  Init init = Init::KaimingNormal;  // Kaiming-normal for layers followed by a ReLU, Glorot-uniform for a classifier
  bool bias = true;
  Device device = Device::cpu();
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, const LinearOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined without bias

 private:
  int64_t in_, out_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "ReLU"; }
};

// [n, d1, d2, ...] -> [n, d1 * d2 * ...]
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Flatten"; }
};

class Sequential : public Module {
 public:
  Sequential() = default;
  void add(std::shared_ptr<Module> layer);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace sieve

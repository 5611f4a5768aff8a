// Affine layer y = x W^T + b, and the stateless layers of an MLP.
#pragma once

#include "core/random.h"
#include "layers/module.h"

namespace sieve {

enum class Init { KaimingNormal, GlorotUniform };

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, Init init = Init::KaimingNormal, bool bias = true,
         Device device = Device::cpu());
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

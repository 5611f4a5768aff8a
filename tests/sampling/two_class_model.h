// A fake two-class classifier for the importance-sampling tests: example i has logit margin(i) on its label and 0 on
// the other class, so its upper-bound score ||p - onehot(y)|| is sqrt(2) / (1 + e^margin) and its cross-entropy
// log(1 + e^-margin), both known in closed form. context() is a ScoringContext over it that records the candidates
// of the last scoring pass.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "sampling/selector.h"
#include "tests/test_util.h"

namespace sieve::testing {

struct TwoClassModel {
  int64_t size = 0;
  Device device;
  std::function<float(int64_t)> margin;
  Tensor labels;                          // int32 [size] on device, random from labels_seed
  std::vector<int32_t> last_candidates;  // the indices of the last logits() call
  int calls = 0;

  TwoClassModel(int64_t n, Device d, std::function<float(int64_t)> m, uint64_t labels_seed)
      : size(n), device(d), margin(std::move(m)) {
    labels = random_labels(n, 2, labels_seed, d);
  }
  Tensor logits_of(const Tensor& indices) const {
    const std::vector<int32_t> idx = indices.to_vector<int32_t>();
    const std::vector<int32_t> y = labels.to_vector<int32_t>();
    std::vector<float> z(idx.size() * 2, 0.f);
    for (size_t j = 0; j < idx.size(); ++j) z[2 * j + y[idx[j]]] = margin(idx[j]);
    return Tensor::from_vector(z, {static_cast<int64_t>(idx.size()), 2}, device);
  }
  double score(int64_t i) const { return std::sqrt(2.0) / (1.0 + std::exp(static_cast<double>(margin(i)))); }
  double loss(int64_t i) const { return std::log1p(std::exp(-static_cast<double>(margin(i)))); }
  ScoringContext context() {
    ScoringContext ctx;
    ctx.logits = [this](const Tensor& indices) {
      ++calls;
      last_candidates = indices.to_vector<int32_t>();
      return logits_of(indices);
    };
    ctx.labels = labels;
    ctx.dataset_size = size;
    ctx.device = device;
    return ctx;
  }
};

}  // namespace sieve::testing

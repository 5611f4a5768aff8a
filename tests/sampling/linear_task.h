// A linear softmax classifier on N random examples of C classes whose features carry the label, with the
// ScoringContext the training loop would give a selector over it (instrumented: scoring passes and gradient
// evaluations are counted) and a hand-written SGD step. For the selector tests that need a real gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "sampling/selector.h"
#include "tests/test_util.h"

namespace sieve::testing {

struct LinearTask {
  int64_t n, d, c;
  Device device;
  Tensor x, y, w, b;
  int64_t scored = 0, gradient_calls = 0;
  std::vector<std::vector<int32_t>> logits_calls;  // the indices of every scoring pass, in order

  LinearTask(int64_t n_, int64_t d_, int64_t c_, uint64_t seed, Device dev, float signal = 1.f)
      : n(n_), d(d_), c(c_), device(dev) {
    y = random_labels(n, static_cast<int>(c), seed, dev);
    std::vector<float> xs = random_tensor({n, d}, seed + 1, Device::cpu()).to_vector<float>();
    const std::vector<int32_t> ys = y.to(Device::cpu()).to_vector<int32_t>();
    for (int64_t i = 0; i < n; ++i) xs[i * d + ys[i] % d] += signal;
    x = Tensor::from_vector(xs, {n, d}, dev);
    w = random_tensor({c, d}, seed + 2, dev, -0.1f, 0.1f).set_requires_grad();
    b = Tensor::zeros({c}, DType::F32, dev).set_requires_grad();
  }
  ScoringContext context() {
    ScoringContext ctx;
    ctx.labels = y;
    ctx.dataset_size = n;
    ctx.device = device;
    ctx.parameters = {w, b};
    ctx.logits = [this](const Tensor& idx) {
      NoGradGuard no_grad;
      scored += idx.numel();
      logits_calls.push_back(idx.to(Device::cpu()).to_vector<int32_t>());
      return linear(index_select(x, idx), w, b);
    };
    ctx.loss_gradient = [this](const Tensor& idx, const Tensor& weights) {
      ++gradient_calls;
      w.zero_grad();
      b.zero_grad();
      Tensor loss = weighted_mean(cross_entropy(linear(index_select(x, idx), w, b), index_select(y, idx)), weights);
      loss.backward();
      LossGradient r{loss.detach(), {w.grad(), b.grad()}};
      w.zero_grad();
      b.zero_grad();
      return r;
    };
    return ctx;
  }
  // One SGD step on the selection, as the training loop would.
  void train(const Selection& s, float lr) {
    Tensor loss = weighted_mean(cross_entropy(linear(index_select(x, s.indices), w, b), index_select(y, s.indices)),
                                s.weights);
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    Tensor wd = w.detach(), bd = b.detach();
    axpy_(wd, -lr, w.grad());
    axpy_(bd, -lr, b.grad());
    w.zero_grad();
    b.zero_grad();
  }
};

}  // namespace sieve::testing

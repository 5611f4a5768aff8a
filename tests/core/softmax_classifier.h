// A linear softmax classifier L(W, b) = (1/n) Σ_i CE(W x_i + b, y_i), whose gradient the engine computes and whose
// Hessian is known in closed form: with p_i = softmax(z_i), A_i = diag(p_i) − p_i p_iᵀ and x̃_i = (x_i, 1),
//   H = (1/n) Σ_i A_i ⊗ x̃_i x̃_iᵀ,
// over the parameters ordered as W row by row, then b. For the tests of Hessian-vector products and Hutchinson.
#pragma once

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/hvp.h"
#include "core/ops.h"
#include "tests/test_util.h"

namespace sieve::testing {

struct SoftmaxClassifier {
  int64_t n, d, c;
  Tensor x, y;  // [n, d] float32, [n] int32, on the device
  Tensor w, b;  // [c, d], [c], requiring gradients

  SoftmaxClassifier(int64_t n_, int64_t d_, int64_t c_, uint64_t seed, Device device) : n(n_), d(d_), c(c_) {
    x = random_tensor({n, d}, seed, device, -1.f, 1.f);
    y = random_labels(n, static_cast<int>(c), seed + 1, device);
    w = random_tensor({c, d}, seed + 2, device, -0.7f, 0.7f).set_requires_grad();
    b = random_tensor({c}, seed + 3, device, -0.3f, 0.3f).set_requires_grad();
  }
  std::vector<Tensor> params() const { return {w, b}; }
  int64_t size() const { return c * d + c; }

  LossGradient loss_gradient() {
    Tensor loss = mean(cross_entropy(linear(x, w, b), y));
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    LossGradient r{loss.detach(), {w.grad(), b.grad()}};
    w.zero_grad();
    b.zero_grad();
    return r;
  }
  double loss() const {
    NoGradGuard no_grad;
    return mean(cross_entropy(linear(x, w, b), y)).item();
  }

  // The exact Hessian [size, size] in double, at the current parameters.
  std::vector<double> hessian() const {
    const std::vector<float> xs = x.to(Device::cpu()).to_vector<float>();
    const std::vector<int32_t> ys = y.to(Device::cpu()).to_vector<int32_t>();
    const std::vector<float> ws = w.detach().to(Device::cpu()).to_vector<float>();
    const std::vector<float> bs = b.detach().to(Device::cpu()).to_vector<float>();
    const int64_t m = size();
    std::vector<double> h(static_cast<size_t>(m * m), 0.0);
    auto index = [&](int64_t cls, int64_t feature) { return feature == d ? c * d + cls : cls * d + feature; };
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> xt(static_cast<size_t>(d + 1), 1.0), z(static_cast<size_t>(c)), p(static_cast<size_t>(c));
      for (int64_t k = 0; k < d; ++k) xt[k] = xs[i * d + k];
      double zmax = -1e300;
      for (int64_t a = 0; a < c; ++a) {
        z[a] = bs[a];
        for (int64_t k = 0; k < d; ++k) z[a] += static_cast<double>(ws[a * d + k]) * xt[k];
        zmax = std::max(zmax, z[a]);
      }
      double total = 0;
      for (int64_t a = 0; a < c; ++a) total += (p[a] = std::exp(z[a] - zmax));
      for (int64_t a = 0; a < c; ++a) p[a] /= total;
      for (int64_t a = 0; a < c; ++a)
        for (int64_t a2 = 0; a2 < c; ++a2) {
          const double aa = (a == a2 ? p[a] : 0.0) - p[a] * p[a2];
          for (int64_t k = 0; k <= d; ++k)
            for (int64_t k2 = 0; k2 <= d; ++k2)
              h[index(a, k) * m + index(a2, k2)] += aa * xt[k] * xt[k2] / static_cast<double>(n);
        }
    }
    return h;
  }

  // Flattens per-parameter tensors (W then b) into one host vector, and back.
  static std::vector<double> flatten(const std::vector<Tensor>& ts) {
    std::vector<double> out;
    for (const Tensor& t : ts)
      for (float v : t.detach().to(Device::cpu()).to_vector<float>()) out.push_back(v);
    return out;
  }
};

}  // namespace sieve::testing

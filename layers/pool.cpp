#include "layers/pool.h"

#include <sstream>

#include "core/ops/dropout.h"
#include "core/ops/pool.h"

namespace sieve {
namespace {

// Arguments are checked when the layer is built, not at its first forward pass: a bad model spec fails early.
void check_window(int kernel, int stride, int padding, const char* name) {
  SIEVE_CHECK(kernel >= 1 && stride >= 1, name, ": kernel and stride must be at least 1, got kernel ", kernel,
              ", stride ", stride);
  SIEVE_CHECK(padding >= 0 && padding <= kernel / 2, name, ": padding must be in [0, kernel / 2] = [0, ", kernel / 2,
              "], got ", padding);
}

std::string window_string(const char* name, int kernel, int stride, int padding) {
  std::ostringstream os;
  os << name << "(kernel " << kernel << ", stride " << stride;
  if (padding) os << ", padding " << padding;
  os << ")";
  return os.str();
}

}  // namespace

MaxPool2d::MaxPool2d(int kernel, int stride, int padding) : kernel_(kernel), stride_(stride), padding_(padding) {
  check_window(kernel, stride, padding, "MaxPool2d");
}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_); }
std::string MaxPool2d::describe() const { return window_string("MaxPool2d", kernel_, stride_, padding_); }

AvgPool2d::AvgPool2d(int kernel, int stride, int padding) : kernel_(kernel), stride_(stride), padding_(padding) {
  check_window(kernel, stride, padding, "AvgPool2d");
}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_, stride_, padding_); }
std::string AvgPool2d::describe() const { return window_string("AvgPool2d", kernel_, stride_, padding_); }

Tensor GlobalAvgPool::forward(const Tensor& x) { return global_avg_pool(x); }

Dropout::Dropout(float p, uint64_t seed) : p_(p), gen_(seed) {
  SIEVE_CHECK(p >= 0.f && p < 1.f, "Dropout: probability p must be in [0, 1), got ", p);
}
Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, gen_, is_training()); }
std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(p " << p_ << ")";
  return os.str();
}

}  // namespace sieve

// Model builders, and the parser of sieve-train's --model spec.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "layers/linear.h"

namespace sieve {

// Flatten, then Linear + ReLU for each hidden width (Kaiming-initialised), then a Glorot-initialised
// Linear to `classes` logits.
std::shared_ptr<Sequential> make_mlp(int64_t inputs, const std::vector<int64_t>& hidden, int64_t classes,
                                     Generator& gen, Device device = Device::cpu());

// Conv(32)-BN-ReLU-MaxPool-Conv(64)-BN-ReLU-MaxPool-Linear(128)-ReLU-Linear: a small network for 28x28 images.
std::shared_ptr<Sequential> make_cnn(int64_t in_channels, int64_t height, int64_t width, int64_t classes,
                                     Generator& gen, Device device = Device::cpu());

// A parsed --model spec: the family and its integer arguments (e.g. mlp:512,256 -> {"mlp", {512, 256}}).
struct ModelSpec {
  std::string kind;
  std::vector<int64_t> args;
};
// Checks the spec without building anything, so that a program can reject it before loading data.
ModelSpec parse_model_spec(const std::string& spec);

// "mlp" (default widths), "mlp:H1,H2,...", "cnn", "wrn-D-K", "resnet18", "resnet34", "resnet50", or "lstm:H" /
// "lstm:H,L" (an LstmClassifier of L layers, default 1, of H units that reads a [1, h, w] image one pixel per step,
// h * w steps in row-major order). `sample_shape` is one example's shape, e.g. {1, 28, 28}.
std::shared_ptr<Module> make_model(const std::string& spec, const Shape& sample_shape, int64_t classes, Generator& gen,
                                   Device device = Device::cpu());

inline const std::vector<int64_t> kDefaultMlpHidden = {512, 256};

}  // namespace sieve

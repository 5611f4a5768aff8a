#include "layers/models.h"

#include <sstream>

#include "layers/conv.h"
#include "layers/lstm.h"
#include "layers/norm.h"
#include "layers/pool.h"
#include "layers/resnet.h"
#include "layers/wide_resnet.h"

namespace sieve {
namespace {

std::vector<int64_t> parse_widths(const std::string& spec, const std::string& text) {
  std::vector<int64_t> widths;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long w = 0;
    try {
      w = std::stoll(item, &used);
    } catch (const std::logic_error&) {
      used = 0;
    }
    SIEVE_CHECK(used == item.size() && !item.empty() && w > 0, "bad --model '", spec,
                "': hidden widths must be positive integers separated by commas, e.g. mlp:512,256");
    widths.push_back(w);
  }
  return widths;
}

}  // namespace

std::shared_ptr<Sequential> make_mlp(int64_t inputs, const std::vector<int64_t>& hidden, int64_t classes,
                                     Generator& gen, Device device) {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Flatten>());
  int64_t width = inputs;
  for (int64_t h : hidden) {
    net->add(std::make_shared<Linear>(width, h, gen, LinearOptions{.device = device}));
    net->add(std::make_shared<ReLU>());
    width = h;
  }
  net->add(std::make_shared<Linear>(width, classes, gen, LinearOptions{.init = Init::GlorotUniform, .device = device}));
  return net;
}

ModelSpec parse_model_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  ModelSpec m{spec.substr(0, colon), {}};
  const std::string args = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (m.kind == "mlp") {
    m.args = args.empty() ? kDefaultMlpHidden : parse_widths(spec, args);
    return m;
  }
  if (m.kind == "cnn" && args.empty()) return m;
  if (m.kind == "lstm") {
    SIEVE_CHECK(!args.empty(), "bad --model '", spec, "': lstm needs a hidden size, e.g. lstm:128 (or lstm:128,2 for "
                "two layers)");
    m.args = parse_widths(spec, args);
    SIEVE_CHECK(m.args.size() <= 2, "bad --model '", spec, "': expected lstm:H or lstm:H,L (hidden size, layers)");
    if (m.args.size() == 1) m.args.push_back(1);
    return m;
  }
  if (m.kind == "resnet18" || m.kind == "resnet34" || m.kind == "resnet50") {
    if (args.empty()) return {"resnet", {std::stoll(m.kind.substr(6))}};
  }
  if (m.kind.rfind("wrn-", 0) == 0 && args.empty()) {
    // wrn-D-K
    const std::string rest = m.kind.substr(4);
    const size_t dash = rest.find('-');
    if (dash != std::string::npos) {
      const std::vector<int64_t> dk = parse_widths(spec, rest.substr(0, dash) + "," + rest.substr(dash + 1));
      if (dk.size() == 2) {
        SIEVE_CHECK(dk[0] >= 10 && (dk[0] - 4) % 6 == 0, "bad --model '", spec,
                    "': a Wide-ResNet's depth is 6n + 4 (10, 16, 22, 28, 40, ...)");
        return {"wrn", dk};
      }
    }
  }
  SIEVE_FAIL("unknown --model '", spec, "': expected mlp[:H1,H2,...], cnn, wrn-D-K (e.g. wrn-28-2), resnet18, "
             "resnet34, resnet50 or lstm:H[,L]");
}

std::shared_ptr<Sequential> make_cnn(int64_t in_channels, int64_t height, int64_t width, int64_t classes,
                                     Generator& gen, Device device) {
  SIEVE_CHECK(height % 4 == 0 && width % 4 == 0 && height >= 8 && width >= 8, "cnn: expects images whose sides are "
              "multiples of 4 (e.g. 28x28 or 32x32), found ", height, "x", width);
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(in_channels, 32, 3, gen,
      Conv2dOptions{.padding = 1, .bias = false, .device = device}));
  net->add(std::make_shared<BatchNorm2d>(32, BatchNormOptions{.device = device}));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<MaxPool2d>(2, 2));
  net->add(std::make_shared<Conv2d>(32, 64, 3, gen, Conv2dOptions{.padding = 1, .bias = false, .device = device}));
  net->add(std::make_shared<BatchNorm2d>(64, BatchNormOptions{.device = device}));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<MaxPool2d>(2, 2));
  net->add(std::make_shared<Flatten>());
  net->add(std::make_shared<Linear>(64 * (height / 4) * (width / 4), 128, gen, LinearOptions{.device = device}));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<Linear>(128, classes, gen, LinearOptions{.init = Init::GlorotUniform, .device = device}));
  return net;
}

std::shared_ptr<Module> make_model(const std::string& spec, const Shape& sample_shape, int64_t classes, Generator& gen,
                                   Device device) {
  const ModelSpec m = parse_model_spec(spec);
  SIEVE_CHECK(sample_shape.size() == 3, "make_model: expected an example shape [C, H, W], found ",
              shape_string(sample_shape));
  const int64_t c = sample_shape[0], h = sample_shape[1], w = sample_shape[2];
  if (m.kind == "mlp") return make_mlp(shape_numel(sample_shape), m.args, classes, gen, device);
  if (m.kind == "cnn") return make_cnn(c, h, w, classes, gen, device);
  if (m.kind == "lstm") {
    SIEVE_CHECK(c == 1, "lstm models read one pixel per step; use a single-channel data set (found examples of shape ",
                shape_string(sample_shape), ")");
    return std::make_shared<LstmClassifier>(1, m.args[0], m.args[1], classes, gen, device);
  }
  if (m.kind == "wrn") return std::make_shared<WideResNet>(static_cast<int>(m.args[0]), static_cast<int>(m.args[1]), c,
                                                           classes, gen, device);
  return std::make_shared<ResNet>(static_cast<int>(m.args[0]), c, classes, gen, device);
}

}  // namespace sieve

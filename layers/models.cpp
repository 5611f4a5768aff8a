#include "layers/models.h"

#include <sstream>

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
    net->add(std::make_shared<Linear>(width, h, gen, Init::KaimingNormal, true, device));
    net->add(std::make_shared<ReLU>());
    width = h;
  }
  net->add(std::make_shared<Linear>(width, classes, gen, Init::GlorotUniform, true, device));
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
  SIEVE_FAIL("unknown --model '", spec, "': expected mlp or mlp:H1,H2,...");
}

std::shared_ptr<Module> make_model(const std::string& spec, const Shape& sample_shape, int64_t classes, Generator& gen,
                                   Device device) {
  const ModelSpec m = parse_model_spec(spec);
  return make_mlp(shape_numel(sample_shape), m.args, classes, gen, device);
}

}  // namespace sieve

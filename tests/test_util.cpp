#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/autograd.h"
#include "core/ops/reduce.h"
#include "sampling/selector.h"

namespace sieve::testing {

double stat(const std::vector<std::pair<std::string, double>>& stats, const std::string& key) {
  for (const auto& [k, v] : stats)
    if (k == key) return v;
  ADD_FAILURE() << "no stat " << key;
  return 0;
}

double stat(const Selector& selector, const std::string& key) { return stat(selector.stats(), key); }

Tensor random_tensor(const Shape& shape, uint64_t seed, Device device, float lo, float hi) {
  Generator gen(seed);
  return uniform(shape, gen, Device::cpu(), lo, hi).to(device);
}

Tensor random_labels(int64_t n, int classes, uint64_t seed, Device device) {
  Generator gen(seed);
  return randint({n}, classes, gen, Device::cpu()).to(device);
}

TwinParameters twin_parameters(const std::vector<Shape>& shapes, uint64_t seed) {
  TwinParameters out;
  for (size_t t = 0; t < shapes.size(); ++t) {
    Tensor p = random_tensor(shapes[t], seed + t);
    Tensor q = p.to(Device::cuda(0));
    p.set_requires_grad();
    q.set_requires_grad();
    out.cpu.push_back(p);
    out.gpu.push_back(q);
  }
  return out;
}

void set_twin_gradients(TwinParameters& params, uint64_t seed, float lo, float hi) {
  for (size_t t = 0; t < params.cpu.size(); ++t) {
    const Tensor g = random_tensor(params.cpu[t].shape(), seed + t, Device::cpu(), lo, hi);
    params.cpu[t].set_grad(g);
    params.gpu[t].set_grad(g.to(Device::cuda(0)));
  }
}

CommandResult run_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool have_fashion_mnist() { return std::filesystem::is_directory(default_data_dir("fashion-mnist")); }

std::vector<CpuBackend> cpu_backends_built() {
  std::vector<CpuBackend> backends{CpuBackend::Reference};
  if (cpu::onednn::available()) backends.push_back(CpuBackend::OneDnn);
  return backends;
}

DataSplits fashion_mnist_subset(int64_t train, int64_t test, uint64_t seed) {
  DataSplits data = load_dataset(parse_data_spec("fashion-mnist"));
  Generator g(seed);
  if (train > 0) data.train = data.train.subset(randint({train}, data.train.size(), g));
  if (test > 0) data.test = data.test.subset(randint({test}, data.test.size(), g));
  return data;
}

TempDir::TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = "sieve-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
                     std::to_string(getpid());
  std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests are named "Suite/Name/Param"
  path_ = (std::filesystem::temp_directory_path() / name).string();
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
std::string TempDir::str() const { return path_; }

Tensor weighted_total(const Tensor& t, uint64_t seed) {
  Tensor flat = t.reshape({-1});
  return weighted_mean(flat, random_tensor(flat.shape(), seed, t.device(), 0.5f, 2.f));
}

Dataset random_dataset(int64_t n, int c, int h, int w, uint32_t seed, Device device) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> pixels(static_cast<size_t>(n * c * h * w));
  for (auto& p : pixels) p = static_cast<uint8_t>(rng() & 0xFF);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (auto& l : labels) l = static_cast<int32_t>(rng() % 10);
  Dataset d;
  d.name = "random";
  d.num_classes = 10;
  d.images = Tensor::from_vector(pixels, {n, c, h, w}, device);
  d.labels = Tensor::from_vector(labels, {n}, device);
  for (int ch = 0; ch < c; ++ch) {
    d.mean.push_back(0.45f + 0.02f * ch);
    d.std.push_back(0.25f + 0.01f * ch);
  }
  return d;
}

::testing::AssertionResult all_close(const std::vector<float>& actual, const std::vector<float>& expected, float atol,
                                     float rtol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "sizes differ: " << actual.size() << " vs " << expected.size();
  double worst = 0.0;
  int64_t worst_index = -1, first_bad = -1, bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const double diff = std::abs(a - e);
    const bool ok = diff <= atol + rtol * std::abs(e) || (std::isnan(a) && std::isnan(e));
    if (!ok || std::isnan(diff)) {
      if (!ok) {
        ++bad;
        if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      }
    }
    if (diff > worst || (std::isnan(diff) && !(std::isnan(a) && std::isnan(e)))) {
      worst = std::isnan(diff) ? INFINITY : diff;
      worst_index = static_cast<int64_t>(i);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os << bad << " of " << actual.size() << " values differ (atol " << atol << ", rtol " << rtol
     << "); largest difference " << worst << " at " << worst_index << " (" << actual[worst_index] << " vs "
     << expected[worst_index] << "); first at " << first_bad << " (" << actual[first_bad] << " vs "
     << expected[first_bad] << ")";
  return ::testing::AssertionFailure() << os.str();
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, float atol, float rtol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << actual.description() << " vs "
                                         << expected.description();
  return all_close(actual.to_vector<float>(), expected.to_vector<float>(), atol, rtol);
}

Evaluation evaluate(const DeviceCase& c, Device device) {
  std::vector<Tensor> inputs;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    Tensor t = c.inputs[k].to(device).clone();
    const bool no_grad = std::find(c.no_grad.begin(), c.no_grad.end(), k) != c.no_grad.end();
    if (t.dtype() == DType::F32 && !no_grad) t.set_requires_grad(true);
    inputs.push_back(t);
  }
  const std::vector<Tensor> outputs = c.forward(inputs);
  Evaluation e;
  e.upstream.resize(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& y = outputs[i];
    if (!y.defined() || !y.requires_grad()) continue;
    // Drawn on the host and copied, so that every device backpropagates the same values.
    e.upstream[i] = random_tensor(y.shape(), c.upstream.seed + i, Device::cpu(), c.upstream.lo, c.upstream.hi);
    y.backward(e.upstream[i].to(device));
  }
  for (const Tensor& y : outputs) e.outputs.push_back(y.defined() ? y.detach().to(Device::cpu()) : Tensor());
  for (const Tensor& t : inputs) e.gradients.push_back(t.grad().defined() ? t.grad().to(Device::cpu()) : Tensor());
  return e;
}

::testing::AssertionResult matches_cpu(const DeviceCase& c, Device device) {
  const Evaluation ref = evaluate(c, Device::cpu()), got = evaluate(c, device);
  std::ostringstream failures;
  auto tolerance = [&](const std::map<size_t, Tolerance>& overrides, size_t i) {
    const auto found = overrides.find(i);
    return found == overrides.end() ? c.tolerance : found->second;
  };
  // A case that compares nothing, or names a tolerance for nothing, is a defect of the test: it cannot fail.
  if (ref.outputs.empty()) failures << "\n  no outputs";
  for (const auto& [i, t] : c.output_tolerance)
    if (i >= ref.outputs.size()) failures << "\n  a tolerance for output " << i << ", which does not exist";
  for (const auto& [k, t] : c.gradient_tolerance)
    if (k >= ref.gradients.size() || !ref.gradients[k].defined())
      failures << "\n  a tolerance for the gradient of input " << k << ", which receives none";
  if (got.outputs.size() != ref.outputs.size()) {
    failures << "\n  " << got.outputs.size() << " outputs, " << ref.outputs.size() << " on the CPU";
  } else {
    for (size_t i = 0; i < ref.outputs.size(); ++i) {
      if (!got.outputs[i].defined() || !ref.outputs[i].defined()) {
        failures << "\n  output " << i << " is undefined";
        continue;
      }
      const Tolerance t = tolerance(c.output_tolerance, i);
      if (auto r = all_close(got.outputs[i], ref.outputs[i], t.atol, t.rtol); !r)
        failures << "\n  output " << i << ": " << r.message();
    }
  }
  for (size_t k = 0; k < ref.gradients.size(); ++k) {
    const bool on_device = got.gradients[k].defined(), on_cpu = ref.gradients[k].defined();
    if (on_device != on_cpu) {
      failures << "\n  gradient of input " << k << ": " << (on_cpu ? "none on the device" : "none on the CPU");
    } else if (on_cpu) {
      const Tolerance t = tolerance(c.gradient_tolerance, k);
      if (auto r = all_close(got.gradients[k], ref.gradients[k], t.atol, t.rtol); !r)
        failures << "\n  gradient of input " << k << ": " << r.message();
    }
  }
  if (failures.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "case \"" << c.name << "\" on " << to_string(device) << " against the CPU:"
                                       << failures.str();
}

::testing::AssertionResult throws_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& p : parts)
      if (message.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << message << "\" lacks \"" << p << "\"";
    if (message.find('\n') != std::string::npos)
      return ::testing::AssertionFailure() << "message spans lines: \"" << message << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-sieve exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

::testing::AssertionResult gradient_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                          std::vector<Tensor> inputs, float h, float atol, float rtol) {
  for (Tensor& t : inputs) {
    t.zero_grad();
    t.set_requires_grad(true);
  }
  Tensor out = f(inputs);
  if (out.numel() != 1) return ::testing::AssertionFailure() << "f must return a scalar, got " << out.description();
  out.backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.grad().defined()) return ::testing::AssertionFailure() << "input " << k << " received no gradient";
    const std::vector<float> analytic = x.grad().to_vector<float>();
    std::vector<float> numeric(analytic.size());
    float* p = x.data<float>();
    NoGradGuard no_grad;
    for (size_t i = 0; i < numeric.size(); ++i) {
      const float saved = p[i];
      p[i] = saved + h;
      const double up = f(inputs).item();
      p[i] = saved - h;
      const double down = f(inputs).item();
      p[i] = saved;
      numeric[i] = static_cast<float>((up - down) / (2.0 * h));
    }
    auto r = all_close(analytic, numeric, atol, rtol);
    if (!r) return ::testing::AssertionFailure() << "gradient of input " << k << ": " << r.message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace sieve::testing

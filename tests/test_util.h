// Shared test helpers: the {CPU, CUDA} parameterisation, seeded random tensors, tolerant comparison, the one harness
// that compares a device with the CPU (DeviceCase, matches_cpu) and finite-difference gradient checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <concepts>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/ops/cpu_backend.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace sieve {
class Selector;
}

namespace sieve::testing {

// One named value of a selector's stats() (or of a record's selector_stats): a test failure, and 0, without it.
double stat(const std::vector<std::pair<std::string, double>>& stats, const std::string& key);
double stat(const Selector& selector, const std::string& key);

// Where no GPU is present, GPU tests skip; with SIEVE_REQUIRE_GPU=1 in the environment (scripts/gpu-check)
// they fail instead, so that a GPU run cannot pass by skipping.
#define SIEVE_SKIP_OR_FAIL_WITHOUT_GPU()                                                          \
  do {                                                                                     \
    if (std::getenv("SIEVE_REQUIRE_GPU")) FAIL() << "SIEVE_REQUIRE_GPU is set but no CUDA GPU is usable"; \
    GTEST_SKIP() << "no CUDA GPU present";                                                 \
  } while (0)

// One test body over both backends: TEST_P(DeviceTest, ...) with GetParam() the device. The CUDA instance
// skips (not fails) where no GPU is present.
class DeviceTest : public ::testing::TestWithParam<DeviceType> {
 protected:
  void SetUp() override {
    if (GetParam() == DeviceType::CUDA && !cuda_available()) SIEVE_SKIP_OR_FAIL_WITHOUT_GPU();
  }
  Device device() const { return GetParam() == DeviceType::CUDA ? Device::cuda(0) : Device::cpu(); }
};

// Use in a test file: SIEVE_INSTANTIATE_DEVICE_TESTS(MyFixture);
#define SIEVE_INSTANTIATE_DEVICE_TESTS(fixture)                                                      \
  INSTANTIATE_TEST_SUITE_P(Devices, fixture,                                                          \
                           ::testing::Values(::sieve::DeviceType::CPU, ::sieve::DeviceType::CUDA), \
                           [](const auto& info) { return info.param == ::sieve::DeviceType::CPU ? "CPU" : "CUDA"; })

// A fixture for tests that only make sense on a GPU (comparisons of a CUDA path with its CPU twin).
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) SIEVE_SKIP_OR_FAIL_WITHOUT_GPU();
  }
};

// Seeded random values in [lo, hi) on the host, then moved to `device` (never zeros unless asked for).
Tensor random_tensor(const Shape& shape, uint64_t seed, Device device = Device::cpu(), float lo = -1.f, float hi = 1.f);
Tensor random_labels(int64_t n, int classes, uint64_t seed, Device device = Device::cpu());

// The same random parameters (values from seed + t for shape t) on the CPU and copied to cuda:0, all requiring
// gradients: the two sides of an optimizer's GPU-versus-CPU test.
struct TwinParameters {
  std::vector<Tensor> cpu, gpu;
};
TwinParameters twin_parameters(const std::vector<Shape>& shapes, uint64_t seed);
// Gives parameter t on both sides the same random gradient, values in [lo, hi) from seed + t.
void set_twin_gradients(TwinParameters& params, uint64_t seed, float lo = -1.f, float hi = 1.f);

// The exit status and the output (stdout and stderr together) of a shell command; status -1 when it could not
// run or did not exit normally.
struct CommandResult {
  int status;
  std::string output;
};
CommandResult run_command(const std::string& command);

// Whether Debian's dataset-fashion-mnist (or $SIEVE_DATA_DIR/fashion-mnist) is there.
bool have_fashion_mnist();

// The CPU backends this build has (Note [cpu backends]): the reference always, oneDNN where sieve was built with it.
std::vector<CpuBackend> cpu_backends_built();
// Fashion-MNIST with `train` training and `test` test examples drawn at random (with a generator seeded with
// `seed`, training examples first); 0 keeps a whole split.
DataSplits fashion_mnist_subset(int64_t train, int64_t test, uint64_t seed);

// A fresh directory named after the running test, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const;
  std::string str() const;

 private:
  std::string path_;
};

// A scalar from any tensor with random positive weights, so that every output element matters to a gradient
// check (a plain sum of a batch-normalised tensor has zero gradient in training mode).
Tensor weighted_total(const Tensor& t, uint64_t seed);

// Random pixels and labels (10 classes); per-channel constants that differ between channels and stay away from
// 0 and 1, so that a padded pixel (-mean / std) is not 0.
Dataset random_dataset(int64_t n, int c, int h, int w, uint32_t seed, Device device);

// |a - b| <= atol + rtol * |b| elementwise; on failure reports the largest difference and the first index.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, float atol, float rtol);
::testing::AssertionResult all_close(const std::vector<float>& actual, const std::vector<float>& expected, float atol,
                                     float rtol);

// f must throw sieve::Error with a one-line message containing every one of `parts`.
::testing::AssertionResult throws_error(const std::function<void()>& f, const std::vector<std::string>& parts);
// One expected part. Not a plain std::string parameter: a braced pair {"a", "b"} would also match std::string's
// iterator-pair constructor; a template parameter is never deduced from a braced list.
inline ::testing::AssertionResult throws_error(const std::function<void()>& f, const char* part) {
  return throws_error(f, std::vector<std::string>{part});
}
template <typename S>
  requires(std::same_as<S, std::string>)
::testing::AssertionResult throws_error(const std::function<void()>& f, const S& part) {
  return throws_error(f, std::vector<std::string>{part});
}

// One device against the CPU, in the spirit of ggml's test-backend-ops: a case builds its inputs once, on the host;
// each run copies them onto its device (fresh copies, so that an op which updates an input in place, as batch norm
// does its running statistics, starts every run from the same values), runs `forward`, and backpropagates into
// every output that requires a gradient an upstream gradient drawn from a seed. The CPU's run is the reference
// (docs/ARCHITECTURE.md, "How a GPU path is verified").
struct Tolerance {
  float atol = 0.f, rtol = 0.f;  // |device - cpu| <= atol + rtol |cpu| elementwise (all_close)
};
// The gradient backpropagated into output i: values in [lo, hi) from seed + i, as random_tensor draws them (never
// zeros, so that every output element reaches the input gradients).
struct UpstreamGradient {
  uint64_t seed = 0;
  float lo = 0.5f, hi = 1.5f;
};
struct DeviceCase {
  std::string name;            // reported with every difference
  std::vector<Tensor> inputs;  // on the host
  // Every float32 input requires a gradient in each run, and its gradient is compared, except those listed here.
  std::vector<size_t> no_grad;
  // The outputs (float32) from the inputs on the run's device; an updated input may be returned as an output.
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> forward;
  UpstreamGradient upstream;
  Tolerance tolerance;  // every output and gradient, unless overridden below
  std::map<size_t, Tolerance> output_tolerance;    // by output index
  std::map<size_t, Tolerance> gradient_tolerance;  // by input index
};
// A case's outputs, input gradients and the upstream gradients it drew, from one run, on the host. A gradient is
// undefined where its input received none (every input in `no_grad`, and inputs the outputs do not depend on), an
// upstream gradient where its output requires none.
struct Evaluation {
  std::vector<Tensor> outputs, gradients, upstream;
};
Evaluation evaluate(const DeviceCase& c, Device device);
// Runs `c` on the CPU and on `device` and compares every output and every input gradient, with the case's
// tolerances; a gradient must be defined on both or on neither. On failure names the case, the device and each
// output or gradient that differs, with its largest difference and the values there.
::testing::AssertionResult matches_cpu(const DeviceCase& c, Device device);

// Checks d f(inputs)/d inputs[k] from autograd against central differences (double-sided, step h) on the CPU.
// f must return a scalar. Inputs are float32 CPU tensors that require gradients.
::testing::AssertionResult gradient_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                          std::vector<Tensor> inputs, float h = 1e-2f, float atol = 2e-3f,
                                          float rtol = 2e-2f);

}  // namespace sieve::testing

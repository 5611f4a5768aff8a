// sieve-bench: times sieve's kernels and one training step in isolation, and reports achieved bandwidth against
// the device's measured copy bandwidth (DESIGN.md, "Measured, not assumed").
#include <CLI/CLI.hpp>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/trainer.h"
#include "core/allocator.h"
#include "core/cuda_check.h"
#include "core/ops.h"
#include "data/batch.h"
#include "optim/sgd.h"
#include "sampling/sample.h"
#include "sampling/scores.h"

namespace {

using namespace sieve;

struct Options {
  Device device;
  int repeats = 30;
  int warmup = 5;
  std::string filter;
  std::string csv;
};

// Median seconds of `repeats` runs of fn after `warmup` runs: CUDA events around each run on a GPU (device time,
// not launch time), the steady clock on the CPU.
double time_median(const Options& o, const std::function<void()>& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  synchronize(o.device);
  std::vector<double> seconds;
  if (o.device.is_cuda()) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    // The events go on sieve's compute stream: the legacy default stream would not order them with the work.
    for (int i = 0; i < o.repeats; ++i) {
      cudaEventRecord(start, cuda::stream());
      fn();
      cudaEventRecord(stop, cuda::stream());
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      seconds.push_back(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  } else {
    for (int i = 0; i < o.repeats; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

struct Row {
  std::string name, size;
  double seconds = 0;
  double bytes = 0;        // minimum bytes the kernel must move
  double items = 0;        // examples (or elements) processed, for a rate
  std::string item_unit;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  void add(const std::string& name, const std::string& size, double bytes, double items, const std::string& unit,
           const std::function<void()>& fn) {
    if (!o_.filter.empty() && name.find(o_.filter) == std::string::npos) return;
    Row r{name, size, time_median(o_, fn), bytes, items, unit};
    rows_.push_back(r);
    print(r);
  }

  void header(double copy_gbs) {
    copy_gbs_ = copy_gbs;
    std::cout << "sieve-bench on " << to_string(o_.device) << " (" << device_name() << "), median of " << o_.repeats
              << " runs after " << o_.warmup << " warm-up runs\n";
    std::cout << "reference: device copy bandwidth " << std::fixed << std::setprecision(1) << copy_gbs
              << " GB/s (read + write, measured)\n\n";
    std::cout << std::left << std::setw(30) << "kernel" << std::setw(22) << "size" << std::right << std::setw(12)
              << "time (us)" << std::setw(12) << "GB/s" << std::setw(10) << "% copy" << std::setw(20) << "rate"
              << "\n";
  }

  void write_csv() const {
    if (o_.csv.empty()) return;
    std::ofstream f(o_.csv);
    SIEVE_CHECK(f.good(), o_.csv, ": cannot open for writing");
    f << "device,kernel,size,time_us,gb_per_s,percent_of_copy,rate,unit\n";
    for (const Row& r : rows_) {
      const double gbs = r.bytes / r.seconds / 1e9;
      f << to_string(o_.device) << "," << r.name << ",\"" << r.size << "\"," << r.seconds * 1e6 << "," << gbs << ","
        << 100 * gbs / copy_gbs_ << "," << r.items / r.seconds << "," << r.item_unit << "\n";
    }
  }

 private:
  std::string device_name() const {
    if (o_.device.is_cpu()) return "host CPU";
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, o_.device.index);
    return prop.name;
  }

  void print(const Row& r) const {
    const double gbs = r.bytes / r.seconds / 1e9;
    std::ostringstream rate;
    if (r.items > 0) rate << std::fixed << std::setprecision(0) << r.items / r.seconds << " " << r.item_unit;
    std::cout << std::left << std::setw(30) << r.name << std::setw(22) << r.size << std::right << std::fixed
              << std::setprecision(1) << std::setw(12) << r.seconds * 1e6 << std::setw(12) << std::setprecision(2)
              << (r.bytes > 0 ? gbs : 0.0) << std::setw(9) << std::setprecision(1)
              << (r.bytes > 0 ? 100 * gbs / copy_gbs_ : 0.0) << "%" << std::setw(20) << rate.str() << std::endl;
  }

  Options o_;
  std::vector<Row> rows_;
  double copy_gbs_ = 1;
};

// A synthetic Fashion-MNIST-shaped data set: the bench needs no files.
DataSplits synthetic_data(int64_t n, Device device) {
  Generator gen(42);
  std::vector<uint8_t> pixels(static_cast<size_t>(n * 784));
  for (auto& p : pixels) p = static_cast<uint8_t>(gen.advance(1) * 2654435761u >> 24);
  DataSplits d;
  d.train.name = "synthetic";
  d.train.images = Tensor::from_vector(pixels, {n, 1, 28, 28}, device);
  d.train.labels = randint({n}, 10, gen, device);
  d.train.num_classes = 10;
  d.train.mean = {0.5f};
  d.train.std = {0.3f};
  d.test = d.train.subset(randint({1000}, n, gen, device));
  return d;
}

void run_benchmarks(const Options& o) {
  Bench bench(o);
  const Device dev = o.device;
  {
    const int64_t n = 64 << 20;
    Tensor a = Tensor::zeros({n}, DType::U8, dev), b = Tensor::zeros({n}, DType::U8, dev);
    const double s = time_median(o, [&] { b.copy_(a); });
    bench.header(2.0 * n / s / 1e9);
  }
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{640, 10}, {65536, 10}, {65536, 100}}) {
    Tensor logits = normal({rows, cols}, *std::make_unique<Generator>(1), dev, 0.f, 3.f);
    Generator lg(2);
    Tensor labels = randint({rows}, cols, lg, dev);
    const std::string size = std::to_string(rows) + " x " + std::to_string(cols);
    bench.add("upper_bound_scores", size, rows * cols * 4.0 + rows * 8.0, rows, "rows/s",
              [&] { upper_bound_scores(logits, labels); });
  }
  for (auto [B, b] : {std::pair<int64_t, int64_t>{640, 128}, {65536, 8192}}) {
    Generator sg(3);
    Tensor scores = uniform({B}, sg, dev, 0.01f, 1.f);
    const std::string size = "B " + std::to_string(B) + ", b " + std::to_string(b);
    bench.add("sample_with_replacement", size, B * 12.0 + b * 8.0, b, "draws/s",
              [&] { sample_with_replacement(scores, b, sg); });
    bench.add("tau_estimate", "B " + std::to_string(B), B * 4.0, B, "scores/s", [&] { tau_estimate(scores); });
  }
  DataSplits data = synthetic_data(60000, dev);
  for (int64_t b : {128, 1024}) {
    Generator ig(4);
    Tensor idx = randint({b}, data.train.size(), ig, dev);
    bench.add("gather_batch", "b " + std::to_string(b) + " x 1x28x28", b * 784 * 5.0 + b * 4.0, b, "images/s",
              [&] { gather_batch(data.train, idx); });
  }
  {
    Generator pg(5);
    const int64_t n = 784 * 512 + 512 * 256 + 256 * 10;
    Tensor p = normal({n}, pg, dev).set_requires_grad(true);
    p.set_grad(normal({n}, pg, dev));
    Sgd sgd({p}, SgdOptions{0.01f, 0.9f, 5e-4f, true});
    bench.add("sgd_update (nesterov, wd)", std::to_string(n) + " params", n * 20.0, n, "params/s", [&] { sgd.step(); });
  }
  for (const std::string sampler : {"uniform", "upper-bound"}) {
    TrainOptions t;
    t.sampler = sampler;
    t.selection.batch = 128;
    t.selection.presample = 256;  // sieve-train's default B
    t.selection.tau_th = 0.5f;  // τ >= 1 always, so importance sampling is on from the second step
    t.schedule = "constant";
    t.iterations = 1 << 30;
    Trainer trainer(t, data, dev);
    trainer.step();
    const std::string size = sampler == "uniform" ? "mlp:512,256 b 128" : "mlp:512,256 b 128 B 256";
    bench.add("train_step " + sampler, size, 0, 128, "examples/s", [&] { trainer.step(); });
  }
  bench.write_csv();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sieve-bench: time sieve's kernels and training step in isolation (CUDA events on a GPU, the steady "
               "clock on the CPU; median after warm-up) and report bandwidth against the device's copy bandwidth."};
  std::string device_name = "auto";
  Options o;
  app.add_option("--device", device_name, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--repeats", o.repeats, "timed runs per case")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed runs before timing")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--filter", o.filter, "only cases whose name contains this text");
  app.add_option("--csv", o.csv, "also write the table to this CSV file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    o.device = parse_device(device_name);
    DeviceGuard guard(o.device);
    run_benchmarks(o);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sieve-bench: error: %s\n", e.what());
    return 1;
  }
}

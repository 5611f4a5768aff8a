// sieve-bench: times sieve's kernels, convolutions and training steps in isolation, and reports them against the
// device's measured copy bandwidth and matrix rate (docs/ARCHITECTURE.md, "How a GPU path is verified").
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "apps/bench.h"
#include "apps/blas_kernels.h"
#include "apps/trainer.h"
#include "core/ops.h"
#include "data/batch.h"
#include "optim/sgd.h"
#include "sampling/sample.h"
#include "sampling/scores.h"

namespace {

using namespace sieve;
using namespace sieve::bench;

// A WRN-28-2 step takes about a second on a CPU (the paper's b 128 and B 640 take ten): there, a smaller step
// with the paper's ratio B / b, timed a few times, keeps the default run near half a minute.
constexpr int64_t kCpuWrnBatch = 16, kCpuWrnPresample = 64;
constexpr int kCpuWrnRepeats = 5, kCpuWrnWarmup = 2;  // as scripts/pytorch-cpu-reference.py times them

// Random uint8 images [n, c, h, w] with the given normalisation constants: the bench needs no files.
DataSplits synthetic_data(const std::string& name, int64_t n, const Shape& image, std::vector<float> mean,
                          std::vector<float> std, Device device) {
  const int64_t numel = n * shape_numel(image);
  std::vector<uint8_t> pixels(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(i * 2654435761u >> 24);
  Generator gen(42);
  DataSplits d;
  d.train.name = name;
  d.train.images = Tensor::from_vector(pixels, {n, image[0], image[1], image[2]}, device);
  d.train.labels = randint({n}, 10, gen, device);
  d.train.num_classes = 10;
  d.train.mean = std::move(mean);
  d.train.std = std::move(std);
  d.test = d.train.subset(randint({1000}, n, gen, device));
  return d;
}

double copy_bytes_per_s(const Options& o) {
  const int64_t n = 64 << 20;
  Tensor a = Tensor::zeros({n}, DType::U8, o.device), b = Tensor::zeros({n}, DType::U8, o.device);
  return 2.0 * n / time_median(o.device, o.repeats, o.warmup, [&] { b.copy_(a); });
}

void kernel_cases(Table& t, const Options& o, const DataSplits& mnist, const DataSplits& cifar) {
  const Device dev = o.device;
  t.section("kernels", "% ref = % of the copy bandwidth");
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{640, 10}, {65536, 10}, {65536, 100}}) {
    Generator lg(1);
    Tensor logits = normal({rows, cols}, lg, dev, 0.f, 3.f);
    Tensor labels = randint({rows}, cols, lg, dev);
    t.add({.name = "upper_bound_scores", .size = std::to_string(rows) + " x " + std::to_string(cols),
           .bytes = rows * cols * 4.0 + rows * 8.0, .items = double(rows), .unit = "rows/s"},
          [&] { upper_bound_scores(logits, labels); });
  }
  for (auto [B, b] : {std::pair<int64_t, int64_t>{640, 128}, {65536, 8192}}) {
    Generator sg(3);
    Tensor scores = uniform({B}, sg, dev, 0.01f, 1.f);
    t.add({.name = "sample_with_replacement", .size = "B " + std::to_string(B) + ", b " + std::to_string(b),
           .bytes = B * 12.0 + b * 8.0, .items = double(b), .unit = "draws/s"},
          [&] { sample_with_replacement(scores, b, sg); });
    t.add({.name = "tau_estimate", .size = "B " + std::to_string(B), .bytes = B * 4.0, .items = double(B),
           .unit = "scores/s"},
          [&] { tau_estimate(scores); });
  }
  // A gather reads each uint8 pixel and writes it as a float: 5 bytes a pixel, plus the index.
  auto gather_case = [&](const std::string& name, const DataSplits& d, int64_t b, const std::string& extra,
                         const std::function<void(const Tensor&)>& gather) {
    const int64_t pixels = d.train.sample_numel();
    const std::string size = "b " + std::to_string(b) + " x " + std::to_string(d.train.channels()) + "x" +
                             std::to_string(d.train.height()) + "x" + std::to_string(d.train.width()) + extra;
    Generator ig(4);
    Tensor idx = randint({b}, d.train.size(), ig, dev);
    t.add({.name = name, .size = size, .bytes = b * pixels * 5.0 + b * 4.0, .items = double(b), .unit = "images/s"},
          [&] { gather(idx); });
  };
  for (int64_t b : {128, 1024})
    gather_case("gather_batch", mnist, b, "", [&](const Tensor& idx) { gather_batch(mnist.train, idx); });
  gather_case("gather_batch", cifar, 128, "", [&](const Tensor& idx) { gather_batch(cifar.train, idx); });
  // Crop and flip read no more than the plain gather (the padding is not read), so its bytes are an upper bound.
  Generator ag(6);
  const Augment augment{.crop_flip = true, .pad = 4};
  gather_case("gather_batch crop+flip", cifar, 128, " pad 4",
              [&](const Tensor& idx) { gather_batch(cifar.train, idx, augment, ag); });
  {
    Generator pg(5);
    const int64_t n = 784 * 512 + 512 * 256 + 256 * 10;
    Tensor p = normal({n}, pg, dev).set_requires_grad(true);
    p.set_grad(normal({n}, pg, dev));
    Sgd sgd({p}, SgdOptions{0.01f, 0.9f, 5e-4f, true});
    t.add({.name = "sgd_update (nesterov, wd)", .size = std::to_string(n) + " params", .bytes = n * 20.0,
           .items = double(n), .unit = "params/s"},
          [&] { sgd.step(); });
  }
}

bool importance_on(Trainer& trainer) {
  for (const auto& [key, value] : trainer.selector().stats())
    if (key == "importance_on") return value != 0;
  return false;
}

// sieve-train's GPU options a training-step row runs with.
struct StepVariant {
  std::string mixed_precision;   // --mixed-precision
  bool cudnn_benchmark = false;  // --cudnn-benchmark
  bool cuda_graphs = false;      // --cuda-graphs
};

// One step of Trainer (select, gather, forward, backward, update), as sieve-train runs it, b images a step.
void train_step_case(Table& t, const Options& o, const DataSplits& data, const std::string& model,
                     const std::string& sampler, int64_t b, int64_t B, int repeats, int warmup,
                     const StepVariant& v = {}) {
  const bool uniform = sampler == "uniform";
  const std::string name = "train_step " + sampler + (v.mixed_precision.empty() ? "" : " " + v.mixed_precision) +
                           (v.cudnn_benchmark ? " cudnn-benchmark" : "") + (v.cuda_graphs ? " cuda-graphs" : "");
  const std::string size = model + " b " + std::to_string(b) + (uniform ? "" : " B " + std::to_string(B));
  if (!t.wants(name, size)) return;
  TrainOptions opt;
  opt.model = model;
  opt.sampler = sampler;
  opt.selection.batch = b;
  opt.selection.presample = B;
  // τ starts at 0 and is positive once the first step's estimate is folded in: importance sampling is on from the
  // second step, so the timed steps score B and train on b.
  opt.selection.tau_th = 0.f;
  opt.schedule = "constant";
  opt.iterations = int64_t{1} << 30;
  opt.mixed_precision = v.mixed_precision;
  opt.cudnn_benchmark = v.cudnn_benchmark;
  opt.cuda_graphs = v.cuda_graphs;
  opt.tf32 = allow_tf32();  // the Trainer applies its options' settings: keep --no-tf32 and --no-winograd
  opt.winograd = allow_winograd();
  const MatmulPrecisionScope restore(matmul_precision());  // the Trainer sets the process-wide precision
  struct RestoreBenchmark {  // and the convolutions' algorithm choice
    ~RestoreBenchmark() { set_conv_benchmark(false); }
  } restore_benchmark;
  Trainer trainer(opt, data, o.device);
  trainer.step();
  if (!uniform) {
    for (int i = 0; i < 5 && !importance_on(trainer); ++i) trainer.step();
    SIEVE_CHECK(importance_on(trainer), "sieve-bench: importance sampling did not switch on for ", size);
  }
  if (v.cuda_graphs) {  // the second pass of each size captures its graph (Note [captured steps])
    trainer.step();
    trainer.step();
  }
  t.add({.name = name, .size = size, .items = double(b), .unit = "images/s", .repeats = repeats, .warmup = warmup},
        [&] { trainer.step(); });
}

void training_step_cases(Table& t, const Options& o, const DataSplits& mnist, const DataSplits& cifar) {
  const bool cpu = o.device.is_cpu();
  // Printed with the first row, once a Trainer has applied its TF32 setting.
  t.section("training steps", [&o, cpu] {
    std::string note = "Trainer on synthetic data";
    note += o.device.is_cuda() ? std::string(", TF32 convolutions ") + (allow_tf32() ? "on" : "off")
                               : std::string(", Winograd convolutions ") + (allow_winograd() ? "allowed" : "off");
    if (o.quick) return note + "; --quick: no WRN-28-2";
    if (cpu)
      note += "; WRN-28-2 at b " + std::to_string(kCpuWrnBatch) + ", B " + std::to_string(kCpuWrnPresample) +
              ", at most " + std::to_string(kCpuWrnRepeats) + " runs on the CPU";
    return note;
  });
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, mnist, "mlp:512,256", sampler, 128, 256, 0, -1);  // sieve-train's default B
  if (o.quick) return;
  // The small CNN of --model cnn (few repeats on the CPU, where a step takes tens of milliseconds).
  train_step_case(t, o, mnist, "cnn", "uniform", 128, 256, cpu ? std::min(o.repeats, 10) : 0, cpu ? 1 : -1);
  const int64_t b = cpu ? kCpuWrnBatch : 128, B = cpu ? kCpuWrnPresample : 640;  // the paper's CIFAR b and B
  const int repeats = cpu ? std::min(o.repeats, kCpuWrnRepeats) : 0;
  const int warmup = cpu ? std::min(o.warmup, kCpuWrnWarmup) : -1;
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, cifar, "wrn-28-2", sampler, b, B, repeats, warmup);
  if (cpu) return;  // bf16 products emulated on the CPU are no faster (Note [bf16 products])
  // --cudnn-benchmark against the heuristics' algorithms above (the plans are timed in the untimed first step).
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, cifar, "wrn-28-2", sampler, b, B, repeats, warmup, {.cudnn_benchmark = true});
  // --cuda-graphs: the training pass replayed as one graph (the selection stays outside, Note [captured steps]).
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, mnist, "mlp:512,256", sampler, 128, 256, 0, -1, {.cuda_graphs = true});
  train_step_case(t, o, mnist, "cnn", "uniform", 128, 256, 0, -1, {.cuda_graphs = true});
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, cifar, "wrn-28-2", sampler, b, B, repeats, warmup,
                    {.cudnn_benchmark = true, .cuda_graphs = true});
  train_step_case(t, o, mnist, "cnn", "uniform", 128, 256, 0, -1, {.mixed_precision = "bf16"});
  for (const std::string sampler : {"uniform", "upper-bound"})
    train_step_case(t, o, cifar, "wrn-28-2", sampler, b, B, repeats, warmup, {.mixed_precision = "bf16"});
}

void run_benchmarks(const Options& o) {
  // Under mpirun every rank runs every case (the all-reduce needs them all) and rank 0 prints.
  const std::shared_ptr<Communicator> comm = bench_communicator(o);
  if (comm && !comm->is_root()) std::cout.setstate(std::ios::failbit);
  Table table(o);
  std::string matmul_what;
  const double copy = copy_bytes_per_s(o);
  const double matmul = matmul_flops_per_s(o, &matmul_what);
  table.set_references(copy, matmul, matmul_what);
  table.print_preamble();
  const DataSplits mnist = synthetic_data("synthetic fashion-mnist", 60000, {1, 28, 28}, {0.5f}, {0.3f}, o.device);
  const DataSplits cifar = synthetic_data("synthetic cifar10", 50000, {3, 32, 32}, {0.49f, 0.48f, 0.45f},
                                          {0.25f, 0.24f, 0.26f}, o.device);
  kernel_cases(table, o, mnist, cifar);
  selector_cases(table, o);
  convolution_cases(table, o);
  lstm_cases(table, o);
  hutchinson_cases(table, o);
  crest_cases(table, o);
  allreduce_cases(table, o, comm);
  training_step_cases(table, o, mnist, cifar);
  if (!comm || comm->is_root()) table.write_csv();
}

}  // namespace

int main(int argc, char** argv) {
  use_better_blas_kernels(argv);  // Note [openblas kernels] in core/ops/linear.h
  CLI::App app{"sieve-bench: time sieve's kernels, convolutions and training steps in isolation (CUDA events on a "
               "GPU, the steady clock on the CPU; median after warm-up) and report them against the device's "
               "measured copy bandwidth and sgemm rate."};
  std::string device_name = "auto";
  Options o;
  app.add_option("--device", device_name, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--repeats", o.repeats,
                 "timed runs per case (at most " + std::to_string(kCpuWrnRepeats) + " for WRN-28-2 steps on a CPU)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed runs before timing")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--filter", o.filter, "only cases whose name or size contains this text");
  app.add_option("--csv", o.csv, "also write the table to this CSV file");
  app.add_flag("--quick", o.quick, "skip the WRN-28-2 training steps (seconds each on a CPU)");
  bool no_tf32 = false;
  app.add_flag("--no-tf32", no_tf32,
               "TF32 off (float32 FMA math) in the LSTM and the training steps' convolutions; the convolution "
               "section times both settings, and matrix products never use TF32");
  bool no_winograd = false;
  app.add_flag("--no-winograd", no_winograd,
               "CPU: direct convolutions only in the training steps (oneDNN may choose Winograd by default, Note "
               "[conv winograd]); the convolution section times both");
  std::string cpu_backend_choice = cpu::onednn::available() ? "onednn" : "reference";
  app.add_option("--cpu-backend", cpu_backend_choice,
                 "the CPU's convolutions and LSTM outside the convolution section: onednn (the default where sieve "
                 "was built with it) or reference (sieve's own over OpenBLAS); the convolution section times both")
      ->check(CLI::IsMember({"onednn", "reference"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    o.device = parse_device(device_name);
    DeviceGuard guard(o.device);
    if (no_tf32) set_allow_tf32(false);
    if (no_winograd) set_allow_winograd(false);
    set_cpu_backend(cpu_backend_choice == "onednn" ? CpuBackend::OneDnn : CpuBackend::Reference);
    run_benchmarks(o);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sieve-bench: error: %s\n", e.what());
    return 1;
  }
}

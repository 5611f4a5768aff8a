// sieve-bench's arithmetic cases: the sgemm reference rate, and the convolutions of a WRN-28-2 on CIFAR-shaped
// images, each direction timed through its backend alone (no autograd, no allocation of the output).
#include <cmath>
#include <string>
#include <vector>

#include "apps/bench.h"
#include "core/ops.h"

namespace sieve::bench {
namespace {

// Convolutions on the CPU run at this batch (the GPU at the training batch, 128), so that the run stays short.
constexpr int64_t kCpuConvBatch = 8;
constexpr int64_t kCpuWinogradBatch = 16;  // the CPU's WRN-28-2 training step's batch
constexpr int64_t kGpuConvBatch = 128;

// Every distinct convolution of WRN-28-2 (layers/wide_resnet.cpp) on 32x32 images, batch n: the stem, then per
// group the first block's 3x3 (strided in groups 2 and 3) and its 1x1 shortcut, and the 3x3 at the group's width
// that the remaining seven convolutions of the group repeat.
std::vector<Conv2dShape> wrn_28_2_shapes(int64_t n) {
  auto conv = [n](int64_t c, int64_t k, int64_t hw, int64_t rs, int64_t stride) {
    return Conv2dShape{n, c, hw, hw, k, rs, rs, stride, stride, rs / 2, rs / 2};
  };
  return {conv(3, 16, 32, 3, 1),    // stem
          conv(16, 32, 32, 3, 1),   conv(16, 32, 32, 1, 1),  conv(32, 32, 32, 3, 1),     // group 1, 32x32
          conv(32, 64, 32, 3, 2),   conv(32, 64, 32, 1, 2),  conv(64, 64, 16, 3, 1),     // group 2, 16x16
          conv(64, 128, 16, 3, 2),  conv(64, 128, 16, 1, 2), conv(128, 128, 8, 3, 1)};  // group 3, 8x8
}

// e.g. "n128 32->64 3x3/2 @32x32": batch, channels in and out, kernel/stride (stride 1 left out), input size.
std::string describe(const Conv2dShape& s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  return "n" + str(s.n) + " " + str(s.c) + "->" + str(s.k) + " " + str(s.r) + "x" + str(s.s) +
         (s.stride_h == 1 ? "" : "/" + str(s.stride_h)) + " @" + str(s.h) + "x" + str(s.w);
}

enum class Pass { Forward, BackwardData, BackwardFilter };

// The backend call of one pass; the CUDA device is already current (main's DeviceGuard).
void run_pass(Device device, Pass pass, const Conv2dShape& s, const Tensor& x, const Tensor& w, const Tensor& dy,
              Tensor& y, Tensor& dx, Tensor& dw) {
  const bool gpu = device.is_cuda();
  switch (pass) {
    case Pass::Forward:
      (gpu ? cuda::conv2d_fwd : cpu::conv2d_fwd)(s, x.data<float>(), w.data<float>(), nullptr, y.data<float>());
      break;
    case Pass::BackwardData:
      (gpu ? cuda::conv2d_bwd_data : cpu::conv2d_bwd_data)(s, dy.data<float>(), w.data<float>(), dx.data<float>());
      break;
    case Pass::BackwardFilter:
      (gpu ? cuda::conv2d_bwd_filter : cpu::conv2d_bwd_filter)(s, x.data<float>(), dy.data<float>(),
                                                               dw.data<float>());
      break;
  }
}

// `math` names the rows; `precision` is the products' (Note [bf16 products]: each has its own cuDNN plans). With
// `winograd_shapes`, only the shapes for which oneDNN chooses Winograd when allowed (Note [conv winograd]).
void convolution_section(Table& t, const Options& o, const std::string& math,
                         MatmulPrecision precision = MatmulPrecision::F32, int64_t batch = 0,
                         bool winograd_shapes = false) {
  const Device dev = o.device;
  const int64_t n = batch > 0 ? batch : dev.is_cuda() ? kGpuConvBatch : kCpuConvBatch;
  const struct {
    Pass pass;
    const char* name;
  } passes[] = {{Pass::Forward, "conv2d_fwd"}, {Pass::BackwardData, "conv2d_bwd_data"},
                {Pass::BackwardFilter, "conv2d_bwd_filter"}};
  for (Conv2dShape s : wrn_28_2_shapes(n)) {
    s.precision = precision;
    const std::string size = describe(s);
    if (winograd_shapes) {
      const AllowWinogradScope allowed(true);
      if (cpu::onednn::conv2d_kernel(s).find("wino") == std::string::npos) continue;
    }
    bool wanted = false;
    for (const auto& p : passes) wanted = wanted || t.wants(std::string(p.name) + " " + math, size);
    if (!wanted) continue;
    Generator gen(7);
    // Inputs of unit scale, weights of the He-initialised scale: values like a training step's.
    Tensor x = normal({s.n, s.c, s.h, s.w}, gen, dev);
    Tensor w = normal({s.k, s.c, s.r, s.s}, gen, dev, 0.f, std::sqrt(2.f / static_cast<float>(s.c * s.r * s.s)));
    Tensor dy = normal({s.n, s.k, s.p(), s.q()}, gen, dev, 0.f, 1e-3f);
    Tensor y = Tensor::empty({s.n, s.k, s.p(), s.q()}, DType::F32, dev);
    Tensor dx = Tensor::empty({s.n, s.c, s.h, s.w}, DType::F32, dev);
    Tensor dw = Tensor::empty({s.k, s.c, s.r, s.s}, DType::F32, dev);
    // The same multiply-adds in each direction: 2 N K C R S P Q flops.
    const double flops = 2.0 * s.n * s.k * s.c * s.r * s.s * s.p() * s.q();
    for (const auto& p : passes)
      t.add({.name = std::string(p.name) + " " + math, .size = size, .flops = flops, .items = double(s.n),
             .unit = "images/s"},
            [&] { run_pass(dev, p.pass, s, x, w, dy, y, dx, dw); });
  }
}

}  // namespace

double matmul_flops_per_s(const Options& o, std::string* what) {
  // Large enough for the library to reach its peak; on the CPU small enough to take tens of milliseconds.
  const int64_t n = o.device.is_cuda() ? 4096 : 1024;
  Generator gen(11);
  const Tensor a = normal({n, n}, gen, o.device), b = normal({n, n}, gen, o.device);
  const double s = time_median(o.device, o.repeats, o.warmup, [&] { matmul(a, b); });
  // core's matmul calls cublasSgemm in the handle's default math mode, which never uses TF32 tensor cores.
  // On the CPU matmul runs on the backend's sgemm (Note [cpu backends]).
  const std::string cpu_library = cpu_backend() == CpuBackend::OneDnn
                                      ? std::string(" (oneDNN's sgemm; OpenBLAS for the reference: ")
                                      : std::string(" (OpenBLAS: ");
  *what = "sgemm " + std::to_string(n) + "^3 through matmul, FP32" +
          (o.device.is_cuda() ? " (cuBLAS default math: TF32 off)"
                              : cpu_library + cpu_blas_kernels() + " kernels)");
  return 2.0 * n * n * n / s;
}

void convolution_cases(Table& t, const Options& o) {
  const std::string note = "2NKCRSPQ FLOP per pass; % ref = % of the FP32 sgemm rate";
  if (o.device.is_cpu()) {
    // Each implementation of the CPU (Note [cpu backends]); the rows are named by it, the default's last.
    const std::string batch = "batch " + std::to_string(kCpuConvBatch) + " on the CPU; " + note;
    {
      CpuBackendScope reference(CpuBackend::Reference);
      t.section("convolutions, FP32, reference: im2col + OpenBLAS", batch);
      convolution_section(t, o, "im2col");
    }
    if (cpu::onednn::available()) {
      CpuBackendScope onednn(CpuBackend::OneDnn);
      {
        AllowWinogradScope direct(false);
        t.section("convolutions, FP32, oneDNN, direct", batch);
        convolution_section(t, o, "onednn");
      }
      // oneDNN chooses Winograd (Note [conv winograd]) at the training step's batch, not at kCpuConvBatch: both
      // algorithms at that batch, for the shapes where it does.
      t.section("convolutions, FP32, oneDNN, direct against Winograd",
                "batch " + std::to_string(kCpuWinogradBatch) + ", the shapes for which oneDNN chooses Winograd; " +
                    note);
      for (const bool winograd : {false, true}) {
        AllowWinogradScope setting(winograd);
        convolution_section(t, o, winograd ? "onednn-winograd" : "onednn-direct", MatmulPrecision::F32,
                            kCpuWinogradBatch, true);
      }
    }
    return;
  }
  // Note [conv tf32] in core/ops/conv2d.h: each setting has its own cached cuDNN plans.
  {
    AllowTf32Scope exact(false);
    t.section("convolutions, TF32 off", note);
    convolution_section(t, o, "fp32");
  }
  {
    AllowTf32Scope tf32(true);
    t.section("convolutions, TF32 on", note + ", so it may pass 100%");
    convolution_section(t, o, "tf32");
  }
  // Inputs cast to bf16, float32 accumulation (Note [bf16 products]); the casts are timed with the product.
  t.section("convolutions, BF16 products", note + "; casts to and from bf16 included, so it may pass 100%");
  convolution_section(t, o, "bf16", MatmulPrecision::BF16);
  const int64_t n = 4096;
  if (t.wants("matmul bf16", std::to_string(n) + "^3")) {
    Generator gen(11);
    const Tensor a = normal({n, n}, gen, o.device), b = normal({n, n}, gen, o.device);
    t.add({.name = "matmul bf16", .size = std::to_string(n) + "^3", .flops = 2.0 * n * n * n, .items = double(n),
           .unit = "rows/s"},
          [&] {
            const MatmulPrecisionScope bf16(MatmulPrecision::BF16);
            matmul(a, b);
          });
  }
}

}  // namespace sieve::bench

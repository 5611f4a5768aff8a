// Note [cpu backends]: the CPU has two implementations of its convolutions, LSTMs and float32 matrix products.
// oneDNN's (Debian's libdnnl 2.6, the library PyTorch's CPU convolutions run on; optional,
// Note [optional backends]) is the default wherever sieve was built with it: JIT-compiled kernels on
// channel-blocked copies of the tensors for convolutions, its LSTM primitive layer by layer (Note [onednn plans]
// and Note [onednn lstm] in core/ops/onednn.cpp), and its sgemm for cpu::gemm (linear layers, matmul): at the
// MLP's shapes (b 128, 784-512-256-10) it took 15-20% less time than OpenBLAS's SkylakeX kernels on 2 cores, and a
// step's threads are then one OpenMP team instead of libgomp's beside OpenBLAS's own pool. The reference is
// sieve's own: im2col + OpenBLAS for convolutions (core/ops/conv2d_cpu.cpp), per-step OpenBLAS products and
// vectorised cell loops for the LSTM (core/ops/lstm_cpu.cpp), OpenBLAS for matrix products. The reference is
// always built; the tests hold oneDNN's results against it and run the finite-difference checks on both; bf16
// convolutions (Note [bf16 products]) always run on it. Both are float32 and differ by rounding only.
#include "core/ops/cpu_backend.h"

#include <atomic>

#include "core/error.h"

namespace sieve {
namespace {
std::atomic<CpuBackend> g_cpu_backend{cpu::onednn::available() ? CpuBackend::OneDnn : CpuBackend::Reference};
}  // namespace

void set_cpu_backend(CpuBackend backend) {
  SIEVE_CHECK(backend != CpuBackend::OneDnn || cpu::onednn::available(),
              "sieve was built without oneDNN (install libdnnl-dev, scripts/install-deps, then reconfigure)");
  g_cpu_backend.store(backend);
}

CpuBackend cpu_backend() { return g_cpu_backend.load(); }

const char* cpu_backend_name(CpuBackend backend) { return backend == CpuBackend::OneDnn ? "oneDNN" : "reference"; }

}  // namespace sieve

// Which implementation the CPU runs for convolutions, LSTMs and matrix products (Note [cpu backends] in
// core/ops/cpu_backend.cpp).
#pragma once

#include <cstdint>

#include "core/setting_scope.h"

namespace sieve {

// OneDnn: Debian's oneDNN, the default wherever sieve was built with it. Reference: sieve's own loops over
// OpenBLAS (im2col for convolutions), always built, the implementation the tests hold oneDNN's against.
enum class CpuBackend { OneDnn, Reference };

// A process-wide setting read at each call (an LSTM's backward pass uses its forward pass's backend, whatever
// the setting then); setting OneDnn in a build without oneDNN throws one line saying what to install.
void set_cpu_backend(CpuBackend backend);
CpuBackend cpu_backend();
const char* cpu_backend_name(CpuBackend backend);  // "oneDNN", "reference"

// set_cpu_backend for a scope.
using CpuBackendScope = SettingScope<CpuBackend, cpu_backend, set_cpu_backend>;

namespace cpu::onednn {
bool available();  // whether sieve was built with oneDNN (Note [optional backends])
// Row-major C = alpha op(A) op(B) + beta C through oneDNN's sgemm (cpu::gemm's route with the oneDNN backend, Note
// [cpu backends]); m, n, k > 0.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c);
}  // namespace cpu::onednn

}  // namespace sieve

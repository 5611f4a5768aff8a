// Internal, for .cu files only (host-compiled files never see CUDA syntax): how every kernel is launched and how its
// threads cover their elements. A launcher is one call,
//
//   launch("relu_fwd_kernel", n, 256, relu_fwd_kernel, x, y, n);
//
// which launches nothing for n == 0, runs blocks_for(n, 256) blocks of 256 threads (grid capped, so the kernel must
// visit its elements with SIEVE_GRID_STRIDE) on the device's compute stream, and checks the launch, an error naming
// the kernel and the line of the launcher. Kernels that need their own grid (one block per channel, a 2-D grid, a
// single block, a fixed number of partial sums) use launch_grid, which checks alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>

#include "core/cuda_check.h"

// Thread t of a grid of T threads visits i = t, t + T, t + 2T, ... while i < n (int64_t indices; n is evaluated
// every step, so it must not change inside the loop).
#define SIEVE_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Warp w of a grid of W warps visits p = w, w + W, w + 2W, ... while p < n: one item per warp, every lane of a warp
// on the same item, so warp shuffles in the body see all 32 lanes. blockDim.x must be a multiple of 32 (launch_warps).
#define SIEVE_WARP_STRIDE(p, n)                                                                      \
  for (int64_t p = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; p < (n); \
       p += static_cast<int64_t>(gridDim.x) * (blockDim.x / 32))

namespace sieve::cuda {

// A kernel's name for the launch error, and the launch site: converted from the string literal at the call, so
// `where` is the launcher's line, not this header's.
struct KernelName {
  const char* name;
  std::source_location where;
  KernelName(const char* kernel, std::source_location site = std::source_location::current())
      : name(kernel), where(site) {}
};

// kernel<<<grid, block, shared_bytes, stream()>>>(args...), then the launch check naming the kernel.
template <typename... Params, typename... Args>
void launch_grid(KernelName name, dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(Params...),
                 const Args&... args) {
  kernel<<<grid, block, shared_bytes, stream()>>>(args...);
  check_launch(name.name, name.where.file_name(), static_cast<int>(name.where.line()));
}

// One thread per element, grid-stride: nothing for n <= 0, else blocks_for(n, threads) blocks of `threads`.
template <typename... Params, typename... Args>
void launch(KernelName name, int64_t n, int threads, void (*kernel)(Params...), const Args&... args) {
  if (n <= 0) return;
  launch_grid(name, dim3(blocks_for(n, threads)), dim3(threads), 0, kernel, args...);
}

// One warp per item (SIEVE_WARP_STRIDE): nothing for items <= 0, else blocks_for(32 items, threads) blocks of
// `threads`, a multiple of 32.
template <typename... Params, typename... Args>
void launch_warps(KernelName name, int64_t items, int threads, void (*kernel)(Params...), const Args&... args) {
  if (items <= 0) return;
  launch_grid(name, dim3(blocks_for(items * 32, threads)), dim3(threads), 0, kernel, args...);
}

}  // namespace sieve::cuda

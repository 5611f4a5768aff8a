#include <algorithm>

#include <cub/block/block_reduce.cuh>

#include "core/allocator.h"
#include "core/cuda_launch.cuh"
#include "core/ops/nonfinite.h"
#include "core/ops/reduce.h"

namespace sieve::cuda {
namespace {

constexpr int kThreads = 512;

// out[0] = scale * sum_i w_i x_i (w null: 1). One block: reductions here are over a batch or an evaluation
// chunk (10^2 to 10^4 values), where a single block is launch-bound rather than bandwidth-bound.
__global__ void dot_kernel(const float* x, const float* w, int64_t n, float scale, float* out) {
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += w ? w[i] * x[i] : x[i];
  const float total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) out[0] = total * scale;
}

// out_r = argmax_j x[r, j] (first on ties)
__global__ void argmax_rows_kernel(const float* x, int32_t* out, int64_t rows, int64_t cols) {
  SIEVE_GRID_STRIDE(r, rows) {
    const float* row = x + r * cols;
    int32_t best = 0;
    for (int64_t j = 1; j < cols; ++j)
      if (row[j] > row[best]) best = static_cast<int32_t>(j);
    out[r] = best;
  }
}

// count[0] += #{i : a_i == b_i}
__global__ void count_equal_kernel(const int32_t* a, const int32_t* b, int64_t n, unsigned long long* count) {
  using BlockReduce = cub::BlockReduce<unsigned long long, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  unsigned long long c = 0;
  SIEVE_GRID_STRIDE(i, n)
    c += a[i] == b[i];
  const unsigned long long total = BlockReduce(temp).Sum(c);
  if (threadIdx.x == 0) atomicAdd(count, total);
}

// One thread: the whole of Note [divergence flag]'s rule on one value.
__global__ void record_first_nonfinite_kernel(const float* value, int64_t step, int64_t* first_step,
                                              float* first_value) {
  note_first_nonfinite(*value, step, first_step, first_value);
}

// out_i = g[0] scale w_i
__global__ void broadcast_scaled_kernel(const float* g, float scale, const float* w, float* out, int64_t n) {
  const float s = g[0] * scale;
  SIEVE_GRID_STRIDE(i, n)
    out[i] = w ? s * w[i] : s;
}

}  // namespace

void sum(const float* x, int64_t n, float* out) { dot(x, nullptr, n, 1.f, out); }

void dot(const float* x, const float* w, int64_t n, float scale, float* out) {
  launch_grid("dot_kernel", 1, kThreads, 0, dot_kernel, x, w, n, scale, out);
}

void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols) {
  launch("argmax_rows_kernel", rows, 128, argmax_rows_kernel, x, out, rows, cols);
}

int64_t count_equal(const int32_t* a, const int32_t* b, int64_t n) {
  if (n == 0) return 0;
  int device = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device));
  auto* count = static_cast<unsigned long long*>(device_malloc(sizeof(unsigned long long), device));
  SIEVE_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(unsigned long long), stream()));
  launch_grid("count_equal_kernel", std::min(blocks_for(n, kThreads), 1024u), kThreads, 0, count_equal_kernel, a, b, n,
              count);
  unsigned long long host = 0;
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(&host, count, sizeof(host), cudaMemcpyDeviceToHost, stream()));
  SIEVE_CUDA_CHECK(cudaStreamSynchronize(stream()));
  device_free(count, device);
  return static_cast<int64_t>(host);
}

void record_first_nonfinite(const float* value, int64_t step, int64_t* first_step, float* first_value) {
  launch_grid("record_first_nonfinite_kernel", 1, 1, 0, record_first_nonfinite_kernel, value, step, first_step,
              first_value);
}

void broadcast_scaled(const float* g, float scale, const float* w, float* out, int64_t n) {
  launch("broadcast_scaled_kernel", n, 256, broadcast_scaled_kernel, g, scale, w, out, n);
}

}  // namespace sieve::cuda

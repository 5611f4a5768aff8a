// Threads for the CPU's own memory-bound loops (elementwise and batch norm) on large tensors.
#pragma once

#include <cstdint>

namespace sieve::cpu {

// Note [cpu threads]: the CPU's elementwise and batch-norm loops split large tensors across OpenMP threads, the
// same libgomp team that oneDNN's convolutions use (Note [cpu backends]), so no second pool appears. Only tensors
// of at least kParallelMin elements (1 MiB of floats: a convolutional network's activations) are split: below it
// a team's wake-up costs more than it saves, and the MLP, whose activations are smaller, never wakes a team that
// would then spin beside OpenBLAS's threads. Each thread takes whole channels or whole contiguous ranges, so every
// sum is taken in the same order as by one thread: results are bit-identical whatever the thread count.
// Built without OpenMP the loops run on one thread.
constexpr int64_t kParallelMin = int64_t{1} << 18;

}  // namespace sieve::cpu

#define SIEVE_PRAGMA(x) _Pragma(#x)
// `SIEVE_PARALLEL_FOR(cond)` before a for loop: its iterations split statically across threads when cond holds.
#if defined(_OPENMP)
#define SIEVE_PARALLEL_FOR(cond) SIEVE_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define SIEVE_PARALLEL_FOR(cond)
#endif

// Memory for tensors: a caching allocator per CUDA device, aligned host memory, and pinned staging buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sieve {

// Device memory from a per-device cache of freed blocks: no cudaMalloc/cudaFree per operation.
// Out-of-memory first empties the cache and retries, then throws sieve::Error with the sizes involved.
void* device_malloc(size_t bytes, int device);
void device_free(void* ptr, int device);

// 64-byte aligned host memory.
void* host_malloc(size_t bytes);
void host_free(void* ptr);

// Page-locked host memory for fast, asynchronous transfers (falls back to ordinary memory without a GPU).
void* pinned_malloc(size_t bytes);
void pinned_free(void* ptr);

struct AllocatorStats {
  size_t in_use_bytes = 0;     // handed out and not yet freed
  size_t cached_bytes = 0;     // freed, kept for reuse
  size_t peak_in_use_bytes = 0;
  uint64_t device_mallocs = 0; // calls that reached cudaMalloc
  uint64_t requests = 0;       // all device_malloc calls
};
AllocatorStats allocator_stats(int device);

// Returns every cached block of every device to the driver.
void empty_device_cache();

// Note [capture pools]: the memory of a captured CUDA graph (core/cuda_graph.h). A graph's kernels use the
// addresses they were captured with at every replay, so the blocks they touch must never go to anyone else while
// the graph lives. Between capture_pool_begin and capture_pool_end the calling thread's device_malloc calls on
// `device` are served from pool `pool` (its own freed blocks, else fresh ones), and a block allocated outside the
// pool but freed during the capture joins the pool (a kernel captured earlier may still read it at replay). A
// pool block freed after the capture goes back to the pool, not to the device's cache. capture_pool_release (the
// graph destroyed) hands the pool's free blocks to the device's cache; its live ones go there when freed. Pools
// are numbered from 1; fresh blocks during a capture come from cudaMalloc in the relaxed capture mode, which the
// capture's own mode forbids. No device synchronisation happens during a capture: out of memory there fails.
uint64_t capture_pool_create();
void capture_pool_begin(uint64_t pool, int device);
void capture_pool_end();
void capture_pool_release(uint64_t pool, int device);

}  // namespace sieve

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

}  // namespace sieve

#include "core/allocator.h"
#include "core/block_cache.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"

namespace sieve {
namespace {

// Note [stream-ordered reuse]: every kernel of a device runs on that device's single compute stream, so a
// block freed by one operation and handed to the next is only touched after the earlier work in stream order.
// A block that was used on another stream must be synchronised before it is freed (sieve never does this).
constexpr size_t kRound = 512;

size_t round_up(size_t bytes) { return (bytes + kRound - 1) / kRound * kRound; }

// The capture pool this thread allocates from, and on which device (Note [capture pools]).
thread_local uint64_t t_capture_pool = 0;
thread_local int t_capture_device = -1;
uint64_t g_next_pool = 1;  // under Caches::mutex

struct Caches {
  std::mutex mutex;
  std::vector<BlockCache> devices;
  BlockCache& at(int device) {
    if (device >= static_cast<int>(devices.size())) devices.resize(device + 1);
    return devices[device];
  }
};

Caches& caches() {
  static Caches* c = new Caches();  // never destroyed: frees may arrive during static destruction
  return *c;
}

void release_cached(BlockCache& cache, int device) {
  if (cache.free_count(0) == 0) return;
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(device);
  cudaDeviceSynchronize();
  for (auto& [size, ptr] : cache.drain()) cudaFree(ptr);
  cudaSetDevice(previous);
}

}  // namespace

std::multimap<size_t, void*>& BlockCache::free_list(uint64_t pool) { return free_[pool]; }

void* BlockCache::take(size_t size, uint64_t pool) {
  std::multimap<size_t, void*>& list = free_list(pool);
  auto it = list.lower_bound(size);
  if (it == list.end() || it->first > 2 * size) return nullptr;
  void* ptr = it->second;
  const size_t block = it->first;
  list.erase(it);
  stats.cached_bytes -= block;
  add(ptr, block, pool);
  return ptr;
}

void BlockCache::add(void* ptr, size_t size, uint64_t pool) {
  live_[ptr] = Live{size, pool};
  stats.in_use_bytes += size;
  stats.peak_in_use_bytes = std::max(stats.peak_in_use_bytes, stats.in_use_bytes);
}

bool BlockCache::give_back(void* ptr, uint64_t capturing) {
  auto it = live_.find(ptr);
  if (it == live_.end()) return false;
  Live block = it->second;
  live_.erase(it);
  stats.in_use_bytes -= block.size;
  stats.cached_bytes += block.size;
  if (block.pool == 0) block.pool = capturing;
  auto pool = free_.find(block.pool);
  (pool != free_.end() ? pool->second : free_list(0)).emplace(block.size, ptr);
  return true;
}

void BlockCache::open_pool(uint64_t pool) { free_list(pool); }

void BlockCache::close_pool(uint64_t pool) {
  auto it = free_.find(pool);
  if (pool == 0 || it == free_.end()) return;
  free_list(0).merge(it->second);
  free_.erase(it);
  for (auto& [ptr, block] : live_)
    if (block.pool == pool) block.pool = 0;
}

std::multimap<size_t, void*> BlockCache::drain() {
  std::multimap<size_t, void*> out;
  out.swap(free_list(0));
  for (const auto& [size, ptr] : out) stats.cached_bytes -= size;
  return out;
}

size_t BlockCache::free_count(uint64_t pool) const {
  auto it = free_.find(pool);
  return it == free_.end() ? 0 : it->second.size();
}

void* device_malloc(size_t bytes, int device) {
  const size_t size = round_up(bytes == 0 ? 1 : bytes);
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  BlockCache& cache = c.at(device);
  cache.stats.requests++;
  const uint64_t pool = t_capture_device == device ? t_capture_pool : 0;
  if (void* ptr = cache.take(size, pool)) return ptr;
  int previous = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&previous));
  SIEVE_CUDA_CHECK(cudaSetDevice(device));
  void* ptr = nullptr;
  cudaError_t status = cudaSuccess;
  if (pool) {
    // A capture forbids cudaMalloc in its own mode; it is safe here (the block is not part of the graph's work).
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    cudaThreadExchangeStreamCaptureMode(&mode);
    status = cudaMalloc(&ptr, size);
    cudaThreadExchangeStreamCaptureMode(&mode);
  } else {
    status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state
      release_cached(cache, device);
      status = cudaMalloc(&ptr, size);
    }
  }
  cudaSetDevice(previous);
  if (status != cudaSuccess) {
    cudaGetLastError();
    SIEVE_FAIL("out of GPU memory on cuda:", device, pool ? " while capturing a CUDA graph" : "", ": requested ",
               size / (1024.0 * 1024.0), " MiB with ", cache.stats.in_use_bytes / (1024.0 * 1024.0), " MiB in use (",
               cudaGetErrorString(status), ")");
  }
  cache.stats.device_mallocs++;
  cache.add(ptr, size, pool);
  return ptr;
}

void device_free(void* ptr, int device) {
  if (ptr == nullptr) return;
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  // A block unknown to the cache is ignored rather than corrupting it.
  c.at(device).give_back(ptr, t_capture_device == device ? t_capture_pool : 0);
}

uint64_t capture_pool_create() {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  return g_next_pool++;
}

void capture_pool_begin(uint64_t pool, int device) {
  SIEVE_CHECK(pool != 0 && t_capture_pool == 0, "capture_pool_begin: pool ", pool, " while pool ", t_capture_pool,
              " is capturing on this thread");
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.at(device).open_pool(pool);
  t_capture_pool = pool;
  t_capture_device = device;
}

void capture_pool_end() {
  t_capture_pool = 0;
  t_capture_device = -1;
}

void capture_pool_release(uint64_t pool, int device) {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  // The graph is gone, and every replay of it was queued before the blocks' next users on the same stream.
  c.at(device).close_pool(pool);
}

AllocatorStats allocator_stats(int device) {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.at(device).stats;
}

void empty_device_cache() {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (size_t d = 0; d < c.devices.size(); ++d) release_cached(c.devices[d], static_cast<int>(d));
}

// Note [host block cache]: large host blocks (activations of a training step) are kept for reuse like device
// blocks. Fresh large allocations are mmap'ed by the C library and every page is faulted in and zeroed by the
// kernel on first touch: for a convolutional network on the CPU that was a third of the step's time.
namespace {
constexpr size_t kHostCacheMin = size_t{64} << 10;

struct HostCache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> live_blocks;
};

HostCache& host_cache() {
  static HostCache* c = new HostCache();  // never destroyed, like the device caches
  return *c;
}
}  // namespace

void* host_malloc(size_t bytes) {
  const size_t size = (bytes + 63) / 64 * 64;
  if (size >= kHostCacheMin) {
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.lower_bound(size);
    if (it != c.free_blocks.end() && it->first <= 2 * size) {
      void* ptr = it->second;
      c.live_blocks[ptr] = it->first;
      c.free_blocks.erase(it);
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(64, size == 0 ? 64 : size);
  if (ptr == nullptr && size >= kHostCacheMin) {  // give the cache back and try once more
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [block_size, block] : c.free_blocks) std::free(block);
    c.free_blocks.clear();
    ptr = std::aligned_alloc(64, size);
  }
  if (ptr == nullptr) SIEVE_FAIL("out of host memory: requested ", bytes / (1024.0 * 1024.0), " MiB");
  if (size >= kHostCacheMin) {
    HostCache& c = host_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.live_blocks[ptr] = size;
  }
  return ptr;
}

void host_free(void* ptr) {
  if (ptr == nullptr) return;
  HostCache& c = host_cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.live_blocks.find(ptr);
    if (it != c.live_blocks.end()) {
      c.free_blocks.emplace(it->second, ptr);
      c.live_blocks.erase(it);
      return;
    }
  }
  std::free(ptr);
}

void* pinned_malloc(size_t bytes) {
  void* ptr = nullptr;
  if (cudaMallocHost(&ptr, bytes == 0 ? 1 : bytes) != cudaSuccess) {
    cudaGetLastError();
    return host_malloc(bytes);  // no driver: ordinary memory serves (transfers are then synchronous anyway)
  }
  return ptr;
}

void pinned_free(void* ptr) {
  if (ptr == nullptr) return;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) == cudaSuccess && attr.type == cudaMemoryTypeHost) {
    cudaFreeHost(ptr);
  } else {
    cudaGetLastError();
    host_free(ptr);
  }
}

}  // namespace sieve

// Internal: the bookkeeping of a device's caching allocator (core/allocator.cpp) without its CUDA calls, so that
// its rules, capture pools included (Note [capture pools] in core/allocator.h), are tested on any machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

#include "core/allocator.h"

namespace sieve {

// Blocks are either live (handed out) or free; each belongs to the cache (pool 0) or to a capture pool.
class BlockCache {
 public:
  // A free block of pool `pool` (0: the cache) of at least `size` bytes and at most twice that (a larger one would
  // pin memory), best fit, now live; nullptr when there is none.
  void* take(size_t size, uint64_t pool);
  // A block fresh from the driver, live in `pool`.
  void add(void* ptr, size_t size, uint64_t pool);
  // A live block handed back: to the free blocks of its pool; a block of the cache goes to `capturing`, the pool of a
  // capture under way (0: none), since the captured graph may read it at replay. False for a block it does not know.
  bool give_back(void* ptr, uint64_t capturing);
  // A capture pool starts (before its capture, so that frees during it find it) and ends (its graph is gone): its
  // free blocks go to the cache, and its live ones belong to the cache from then on.
  void open_pool(uint64_t pool);
  void close_pool(uint64_t pool);
  // The cache's free blocks, taken out (to return them to the driver); the capture pools keep theirs.
  std::multimap<size_t, void*> drain();
  // How many free blocks pool `pool` (0: the cache) holds.
  size_t free_count(uint64_t pool) const;

  AllocatorStats stats;

 private:
  struct Live {
    size_t size = 0;
    uint64_t pool = 0;
  };
  std::multimap<size_t, void*>& free_list(uint64_t pool);
  std::map<uint64_t, std::multimap<size_t, void*>> free_;  // by pool; pool 0 is the cache
  std::unordered_map<void*, Live> live_;
};

}  // namespace sieve

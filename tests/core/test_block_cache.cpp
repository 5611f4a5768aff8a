// The caching allocator's bookkeeping (core/block_cache.h) on stand-in addresses: reuse within twice the request, and
// the rules of capture pools (Note [capture pools] in core/allocator.h), which no GPU is needed to check.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/block_cache.h"

namespace sieve {
namespace {

void* address(uintptr_t i) { return reinterpret_cast<void*>(i * 4096); }

TEST(BlockCache, ReusesTheBestFitWithinTwiceTheRequest) {
  BlockCache cache;
  cache.add(address(1), 1024, 0);
  cache.add(address(2), 4096, 0);
  EXPECT_TRUE(cache.give_back(address(1), 0));
  EXPECT_TRUE(cache.give_back(address(2), 0));
  EXPECT_FALSE(cache.give_back(address(3), 0));  // not one of its blocks: ignored
  EXPECT_EQ(cache.take(1500, 0), nullptr);       // 4096 is more than twice 1500; 1024 too small
  EXPECT_EQ(cache.take(2048, 0), address(2));
  EXPECT_EQ(cache.take(600, 0), address(1));
  EXPECT_EQ(cache.stats.in_use_bytes, 5120u);
  EXPECT_EQ(cache.stats.cached_bytes, 0u);
  EXPECT_EQ(cache.stats.peak_in_use_bytes, 5120u);
}

// During a capture the pool allocates from its own blocks only; a cache block freed during the capture joins the pool
// (the graph may read it at replay); pool blocks freed later stay in the pool; nothing of it reaches the cache until
// the pool is closed, when its free blocks join the cache and its live ones belong to the cache.
TEST(BlockCache, CapturePoolsKeepTheirBlocksUntilClosed) {
  BlockCache cache;
  const uint64_t pool = 7;
  cache.add(address(1), 1024, 0);  // allocated before the capture: say, the previous step's gradient
  cache.add(address(2), 1024, 0);
  EXPECT_TRUE(cache.give_back(address(2), 0));  // in the cache's free list before the capture
  cache.open_pool(pool);
  EXPECT_EQ(cache.take(1024, pool), nullptr);  // the cache's block is not the pool's
  cache.add(address(3), 1024, pool);           // fresh, during the capture
  EXPECT_TRUE(cache.give_back(address(1), pool));  // freed during the capture: joins the pool
  EXPECT_EQ(cache.free_count(pool), 1u);
  EXPECT_EQ(cache.take(1024, pool), address(1));   // and serves the capture's later allocations
  EXPECT_TRUE(cache.give_back(address(1), pool));
  // The capture ends. Eager work gets the cache's block, never the pool's.
  EXPECT_EQ(cache.take(1024, 0), address(2));
  EXPECT_EQ(cache.take(1024, 0), nullptr);
  EXPECT_TRUE(cache.give_back(address(3), 0));  // a pool block freed after the capture stays in the pool
  EXPECT_EQ(cache.free_count(pool), 2u);
  EXPECT_EQ(cache.free_count(0), 0u);
  cache.add(address(4), 1024, pool);  // a block allocated during the capture and still live at its end
  cache.close_pool(pool);
  EXPECT_EQ(cache.free_count(0), 2u);
  EXPECT_EQ(cache.free_count(pool), 0u);
  EXPECT_TRUE(cache.give_back(address(4), 0));  // belongs to the cache now
  EXPECT_EQ(cache.free_count(0), 3u);
  const auto drained = cache.drain();
  EXPECT_EQ(drained.size(), 3u);
  EXPECT_EQ(cache.stats.cached_bytes, 0u);
  EXPECT_EQ(cache.stats.in_use_bytes, 1024u);  // address(2), still live
}

}  // namespace
}  // namespace sieve

// The MPI backend between processes (tests/mpi/main.cpp runs these on every rank). Each rank's inputs are random,
// from a stream of its own (Generator(kSeed).fork(purpose * 1024 + rank)), so every rank can compute every other
// rank's inputs and with them the expected result of a collective, in any world size of 2 or more.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "core/distributed.h"
#include "core/distributed_backends.h"
#include "core/random.h"
#include "tests/mpi/world.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::throws_error;
using testing::world;

constexpr uint64_t kSeed = 2024;

Generator stream_of(uint64_t purpose, int rank) { return Generator(kSeed).fork(purpose * 1024 + rank); }

// Rank `rank`'s input for `purpose`: uniform floats in [-2, 2), or integers made from them (int64 ones beyond 32
// bits), different on every rank.
Tensor input(DType dtype, const Shape& shape, uint64_t purpose, int rank) {
  Generator gen = stream_of(purpose, rank);
  const Tensor f = uniform(shape, gen, Device::cpu(), -2.f, 2.f);
  if (dtype == DType::F32) return f;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  for (float v : f.to_vector<float>()) {
    i32.push_back(static_cast<int32_t>(v * 100000) + rank + 1);
    i64.push_back(static_cast<int64_t>(v * 100000) * (int64_t{1} << 33) + rank + 1);
  }
  return dtype == DType::I32 ? Tensor::from_vector(i32, shape) : Tensor::from_vector(i64, shape);
}

template <typename T>
T combine(T a, T b, ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return a + b;
    case ReduceOp::Max: return a > b ? a : b;
    case ReduceOp::Min: return a < b ? a : b;
  }
  return a;
}

template <typename T>
std::vector<T> expected_reduce(DType dtype, const Shape& shape, uint64_t purpose, ReduceOp op) {
  std::vector<T> acc = input(dtype, shape, purpose, 0).to_vector<T>();
  for (int r = 1; r < world().size(); ++r) {
    const std::vector<T> x = input(dtype, shape, purpose, r).to_vector<T>();
    for (size_t i = 0; i < acc.size(); ++i) acc[i] = combine(acc[i], x[i], op);
  }
  if (op == ReduceOp::Avg)
    for (T& v : acc) v /= static_cast<T>(world().size());
  return acc;
}

// Float sums may be added in another order by MPI than here: a tolerance of a few roundings. Integers are exact.
::testing::AssertionResult reduced_as_expected(const Tensor& t, const Shape& shape, uint64_t purpose, ReduceOp op) {
  switch (t.dtype()) {
    case DType::F32:
      return all_close(t.to_vector<float>(), expected_reduce<float>(DType::F32, shape, purpose, op), 1e-5f, 1e-5f);
    case DType::I32:
      if (t.to_vector<int32_t>() == expected_reduce<int32_t>(DType::I32, shape, purpose, op))
        return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "int32 values differ";
    case DType::I64:
      if (t.to_vector<int64_t>() == expected_reduce<int64_t>(DType::I64, shape, purpose, op))
        return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "int64 values differ";
    case DType::U8: break;
  }
  return ::testing::AssertionFailure() << "not a collective dtype";
}

TEST(MpiCollectives, WorldIsTheLaunchersRun) {
  const DistributedEnvironment env = DistributedEnvironment::detect();
  EXPECT_TRUE(env.launched);
  EXPECT_EQ(world().backend(), "mpi");
  EXPECT_EQ(world().device(), Device::cpu());
  EXPECT_EQ(world().rank(), env.rank);
  EXPECT_EQ(world().size(), env.size);
  EXPECT_EQ(world().is_root(), env.rank == 0);
  EXPECT_TRUE(built_with_mpi());
  // A second communicator shares the one initialisation of MPI, and works.
  const auto second = make_communicator(env, Device::cpu());
  std::vector<double> one = {1.0};
  second->all_reduce(one, ReduceOp::Sum);
  EXPECT_EQ(one[0], world().size());
}

TEST(MpiCollectives, AllReduceEveryOpAndDtype) {
  const Shape shape = {3, 5};
  uint64_t purpose = 100;
  for (DType dtype : {DType::F32, DType::I32, DType::I64}) {
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) {
      ++purpose;
      if (op == ReduceOp::Avg && dtype != DType::F32) continue;
      Tensor t = input(dtype, shape, purpose, world().rank());
      world().all_reduce(t, op);
      EXPECT_TRUE(reduced_as_expected(t, shape, purpose, op)) << to_string(dtype) << " " << detail::to_string(op);
    }
  }
}

// Beyond the shared-memory transport's eager limit (a few KiB): the large-message protocol too.
TEST(MpiCollectives, AllReduceLargeAndEmptyTensors) {
  const Shape large = {300000};
  Tensor t = input(DType::F32, large, 150, world().rank());
  world().all_reduce(t, ReduceOp::Avg);
  EXPECT_TRUE(reduced_as_expected(t, large, 150, ReduceOp::Avg));
  Tensor empty = Tensor::empty({0, 4});
  world().all_reduce(empty, ReduceOp::Sum);
  EXPECT_EQ(empty.shape(), (Shape{0, 4}));
}

TEST(MpiCollectives, BroadcastFromTheLastRank) {
  const int root = world().size() - 1;
  const Shape shape = {4, 3};
  for (DType dtype : {DType::F32, DType::I32, DType::I64}) {
    Tensor t = input(dtype, shape, 200, world().rank());
    world().broadcast(t, root);
    const Tensor expected = input(dtype, shape, 200, root);
    switch (dtype) {
      case DType::F32: EXPECT_EQ(t.to_vector<float>(), expected.to_vector<float>()); break;
      case DType::I32: EXPECT_EQ(t.to_vector<int32_t>(), expected.to_vector<int32_t>()); break;
      default: EXPECT_EQ(t.to_vector<int64_t>(), expected.to_vector<int64_t>()); break;
    }
  }
}

TEST(MpiCollectives, AllGatherInRankOrder) {
  const int size = world().size();
  const Tensor mine = input(DType::F32, {2, 3}, 300, world().rank());
  const Tensor all = world().all_gather(mine);
  const Tensor ints = world().all_gather(input(DType::I64, {5}, 301, world().rank()));
  // A scalar from each rank gives [size].
  const Tensor scalars = world().all_gather(Tensor::from_vector<int32_t>({10 * world().rank() + 3}, {}));
  const Tensor large = world().all_gather(input(DType::F32, {1000, 64}, 302, world().rank()));

  EXPECT_EQ(all.shape(), (Shape{2 * size, 3}));
  EXPECT_EQ(ints.shape(), (Shape{5 * size}));
  EXPECT_EQ(scalars.shape(), (Shape{size}));
  EXPECT_EQ(large.shape(), (Shape{1000 * size, 64}));
  EXPECT_FALSE(all.same_storage(mine));
  for (int r = 0; r < size; ++r) {
    EXPECT_EQ(all.rows(2 * r, 2 * r + 2).to_vector<float>(), input(DType::F32, {2, 3}, 300, r).to_vector<float>())
        << "rank " << r << "'s rows";
    EXPECT_EQ(ints.rows(5 * r, 5 * r + 5).to_vector<int64_t>(), input(DType::I64, {5}, 301, r).to_vector<int64_t>());
    EXPECT_EQ(scalars.to_vector<int32_t>()[r], 10 * r + 3);
    EXPECT_EQ(large.rows(1000 * r, 1000 * r + 1000).to_vector<float>(),
              input(DType::F32, {1000, 64}, 302, r).to_vector<float>());
  }
}

TEST(MpiCollectives, AllReduceAsync) {
  const Shape small = {1000}, large = {300000};
  Tensor a = input(DType::F32, small, 400, world().rank());
  Tensor b = input(DType::F32, large, 401, world().rank());
  auto pending_a = world().all_reduce_async(a, ReduceOp::Sum);
  auto pending_b = world().all_reduce_async(b, ReduceOp::Avg);
  // Host work between the start and the wait, as a backward pass would do.
  Generator gen(7);
  const float busy = uniform({100000}, gen).to_vector<float>()[0];
  pending_b->wait();
  pending_a->wait();
  pending_a->wait();  // a second wait does nothing

  // Destroyed without wait(), a reduction waits and finishes the same way (Avg divides).
  Tensor c = input(DType::F32, small, 402, world().rank());
  auto pending_c = world().all_reduce_async(c, ReduceOp::Avg);
  pending_c.reset();
  Tensor d = input(DType::F32, small, 403, world().rank());
  auto pending_d = world().all_reduce_async(d, ReduceOp::Max);
  pending_d->wait();

  EXPECT_GE(busy, 0.f);
  EXPECT_TRUE(reduced_as_expected(a, small, 400, ReduceOp::Sum));
  EXPECT_TRUE(reduced_as_expected(b, large, 401, ReduceOp::Avg));
  EXPECT_TRUE(reduced_as_expected(c, small, 402, ReduceOp::Avg));
  EXPECT_TRUE(reduced_as_expected(d, small, 403, ReduceOp::Max));
}

TEST(MpiCollectives, HostValues) {
  const int size = world().size();
  auto values_of = [](int rank) {
    Generator gen = stream_of(500, rank);
    std::vector<double> v;
    for (float x : uniform({6}, gen, Device::cpu(), -1e3f, 1e3f).to_vector<float>()) v.push_back(x * 1.0000001);
    return v;
  };
  std::vector<std::vector<double>> results;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) {
    std::vector<double> v = values_of(world().rank());
    world().all_reduce(v, op);
    results.push_back(v);
  }
  std::vector<double> broadcast = values_of(world().rank());
  world().broadcast(broadcast, size - 1);

  int k = 0;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) {
    std::vector<double> expected = values_of(0);
    for (int r = 1; r < size; ++r) {
      const std::vector<double> x = values_of(r);
      for (size_t i = 0; i < expected.size(); ++i) expected[i] = combine(expected[i], x[i], op);
    }
    if (op == ReduceOp::Avg)
      for (double& e : expected) e /= size;
    ASSERT_EQ(results[k].size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_NEAR(results[k][i], expected[i], 1e-9 * (1 + std::abs(expected[i])))
          << detail::to_string(op) << " element " << i;
    ++k;
  }
  EXPECT_EQ(broadcast, values_of(size - 1));
}

// Bytes that depend on the rank and the purpose, '\0' among them, of the given length.
std::string bytes_of(uint64_t purpose, int rank, size_t length) {
  Generator gen = stream_of(purpose, rank);
  const std::vector<int32_t> draws = randint({static_cast<int64_t>(length)}, 256, gen).to_vector<int32_t>();
  std::string s(length, '\0');
  for (size_t i = 0; i < length; ++i) s[i] = static_cast<char>(draws[i]);
  if (length > 1) s[length / 2] = '\0';
  return s;
}

TEST(MpiCollectives, StringBroadcastOfAnyLength) {
  const int root = world().size() - 1;
  // The receivers start longer and shorter than the root's string: they are resized.
  std::string text = bytes_of(600, world().rank(), world().rank() == root ? 1001 : 7 + 3000 * world().rank());
  world().broadcast(text, root);
  std::string big = world().rank() == 0 ? bytes_of(601, 0, 3 << 20) : std::string("stale");
  world().broadcast(big, 0);
  std::string empty = world().rank() == 0 ? std::string() : std::string("not empty");
  world().broadcast(empty, 0);

  EXPECT_EQ(text, bytes_of(600, root, 1001));
  EXPECT_EQ(big, bytes_of(601, 0, 3 << 20));
  EXPECT_TRUE(empty.empty());
}

TEST(MpiCollectives, GatherOfVariableBytes) {
  const int size = world().size(), rank = world().rank();
  const int last = size - 1;
  auto length_of = [](int r) { return static_cast<size_t>(5 * r + 1); };
  const std::vector<std::string> at_last = world().gather(bytes_of(700, rank, length_of(rank)), last);
  // Rank 1 sends nothing; rank 0 gathers.
  const std::vector<std::string> at_first = world().gather(rank == 1 ? std::string() : bytes_of(701, rank, 20000), 0);

  if (rank == last) {
    ASSERT_EQ(at_last.size(), static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) EXPECT_EQ(at_last[r], bytes_of(700, r, length_of(r))) << "rank " << r << "'s bytes";
  } else {
    EXPECT_TRUE(at_last.empty());
  }
  if (rank == 0) {
    ASSERT_EQ(at_first.size(), static_cast<size_t>(size));
    for (int r = 0; r < size; ++r)
      EXPECT_EQ(at_first[r], r == 1 ? std::string() : bytes_of(701, r, 20000)) << "rank " << r << "'s bytes";
  } else {
    EXPECT_TRUE(at_first.empty());
  }
}

// Rank 0 cannot leave a barrier before the last rank, which arrives half a second late, has reached it.
TEST(MpiCollectives, BarrierWaitsForEveryRank) {
  using Clock = std::chrono::steady_clock;
  world().barrier();
  const auto start = Clock::now();
  if (world().rank() == world().size() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  world().barrier();
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  if (world().rank() == 0) EXPECT_GE(waited, 0.25);
}

// Refusals happen on every rank alike, before any message: the ranks stay in step, as the collective after them
// shows.
TEST(MpiCollectives, RefusalsLeaveTheRanksInStep) {
  Tensor i64 = input(DType::I64, {4}, 800, world().rank());
  Tensor i32 = input(DType::I32, {4}, 801, world().rank());
  EXPECT_TRUE(throws_error([&] { world().all_reduce(i64, ReduceOp::Avg); },
                           {"all_reduce: ReduceOp::Avg needs a float32 tensor", "int64[4] on cpu"}));
  EXPECT_TRUE(throws_error([&] { world().all_reduce(i32, ReduceOp::Avg); }, "ReduceOp::Avg needs a float32 tensor"));
  EXPECT_TRUE(throws_error([&] { world().all_reduce_async(i32, ReduceOp::Sum); },
                           "all_reduce_async: expected a float32 tensor"));
  Tensor bytes = Tensor::full({3}, 1.0, DType::U8);
  EXPECT_TRUE(throws_error([&] { world().broadcast(bytes, 0); }, "expected a float32, int32 or int64 tensor"));
  Tensor f = input(DType::F32, {4}, 802, world().rank());
  EXPECT_TRUE(throws_error([&] { world().broadcast(f, world().size()); }, "is not a rank of this run"));
  EXPECT_TRUE(throws_error([&] { world().gather("x", -1); }, "gather: root -1"));

  world().all_reduce(i64, ReduceOp::Sum);
  EXPECT_TRUE(reduced_as_expected(i64, {4}, 800, ReduceOp::Sum));
}

// A GPU tensor is refused by the MPI backend (it needs a GPU to make one).
TEST(MpiCollectives, RefusesGpuTensors) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU to make a CUDA tensor; the int64 Avg refusal is tested above";
  Tensor t = input(DType::F32, {4}, 900, world().rank()).to(Device::cuda(0));
  EXPECT_TRUE(throws_error([&] { world().all_reduce(t, ReduceOp::Sum); },
                           {"the MPI backend moves CPU tensors; GPU training uses NCCL", "on cuda:0"}));
}

}  // namespace
}  // namespace sieve
